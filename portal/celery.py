"""The Celery application; the beat schedule is declared here, in one place."""

import os

from celery import Celery

from portal.env import env_float

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("steward")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Owner attestation: opens scheduled campaigns, reminds, escalates, applies consequences.
    "attestation-sweep": {"task": "governance.tasks.attestation.attestation_sweep", "schedule": 3600.0},
    # Approval requests: reminders before expiry, escalation after the policy's delay, expiry.
    "approval-requests-sweep": {"task": "governance.approvals.sweep", "schedule": 900.0},
    # Lifecycle: rotation jobs for due credentials and certificate renewals; observed truth from the stores.
    "lifecycle-rotation-schedule": {"task": "governance.lifecycle.rotation_schedule", "schedule": 3600.0},
    "lifecycle-reconcile": {"task": "governance.lifecycle.reconcile", "schedule": 6 * 3600.0},
    # Renewal: revoke the certificates renewals replaced once their overlap (STEWARD_CERT_REVOKE_OVERLAP_HOURS) ended.
    "lifecycle-superseded-revoke": {"task": "governance.lifecycle.superseded_revoke", "schedule": 900.0},
    # Checks: the posture sweep (one message per run); the posture snapshot, idempotent per day (the
    # day's last run wins), hourly so that a day is never missed when beat restarts.
    "checks-sweep": {"task": "governance.checks.sweep",
                     "schedule": env_float("STEWARD_SWEEP_INTERVAL_SECONDS", 900, minimum=10)},
    "checks-posture-snapshot": {"task": "governance.checks.posture_snapshot", "schedule": 3600.0},
    # Integrations: re-send due webhook deliveries whose message was lost, revoke tokens whose rotation
    # overlap ended, forget ended webhook-secret overlaps and expired idempotency records.
    "integrations-sweep": {"task": "governance.integrations.sweep", "schedule": 300.0},
    # Audit anchoring: a signed checkpoint of the chain's head, written outside the database.
    "audit-checkpoint": {"task": "governance.audit.checkpoint",
                         "schedule": env_float("STEWARD_AUDIT_CHECKPOINT_INTERVAL_SECONDS", 300, minimum=10)},
    # Leases: resume, or fail with the reason, running work whose worker was lost (governance.leases).
    "leases-recover": {"task": "governance.leases.recover",
                       "schedule": env_float("STEWARD_LEASE_RECOVERY_SECONDS", 60, minimum=5)},
    # Mail: send again the pending deliveries whose message was lost (the outbox publishes the rest).
    "mail-sweep": {"task": "governance.mail.sweep", "schedule": 300.0},
    # Inbox: delete notifications older than STEWARD_NOTIFICATION_RETENTION_DAYS.
    "notifications-purge": {"task": "governance.notifications.purge", "schedule": 24 * 3600.0},
    # Discovery: request a run of every source whose own schedule (DiscoverySource.schedule_seconds) is due.
    "discovery-schedule": {"task": "governance.discovery.schedule", "schedule": 60.0},
}
