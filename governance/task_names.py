"""The names of the Celery tasks that services hand work to, through the outbox.

Why here: a service enqueues work by the task's name, and the task module (which imports the services)
registers itself under the same constant. So services never import the tasks, and no import cycle has
to be hidden inside a function. Core infrastructure: imports nothing.
"""

CHECKS_SWEEP = "governance.checks.sweep"
KILL_SWITCH_RUN = "governance.lifecycle.kill_switch_run"
MAIL_DELIVER = "governance.mail.deliver"
REVOCATION_RUN = "governance.lifecycle.revocation_run"
REVOCATIONS_RUN = "governance.lifecycle.revocations_run"
ROTATION_BATCH_RUN = "governance.lifecycle.rotation_batch_run"
ROTATION_JOB_RUN = "governance.lifecycle.rotation_job_run"
SUPERSEDED_REVOKE = "governance.lifecycle.superseded_revoke"
WEBHOOK_DELIVER = "governance.webhooks.deliver"
PROVISIONING_RUN = "governance.lifecycle.provisioning_run"
SWEEP_NOW_RUN = "governance.checks.sweep_now_run"
DISCOVERY_RUN = "governance.discovery.run"
DISCOVERY_SCHEDULE = "governance.discovery.schedule"
