"""Server request ids with the client's kept apart; idempotency leases; one pending request per fingerprint."""

import datetime as dt
import hashlib
import json

from django.db import migrations, models

IDEMPOTENCY_LEASE = dt.timedelta(minutes=2)


def fingerprint(target_type: str, payload: dict) -> str:
    """Frozen copy of governance.services.approvals_registry.payload_fingerprint (as of this migration)."""
    canonical = json.dumps({"target_type": target_type, "payload": payload}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def backfill(apps, schema_editor):
    """Fingerprint the pending requests (a duplicate filed earlier keeps none: it stays pending, unmatched),
    and give in-progress idempotency keys a lease so that they become retryable."""
    ApprovalRequest = apps.get_model("governance", "ApprovalRequest")
    ContentType = apps.get_model("contenttypes", "ContentType")
    IdempotencyRecord = apps.get_model("governance", "IdempotencyRecord")
    types = {ct.pk: f"{ct.app_label}.{ct.model}" for ct in ContentType.objects.all()}
    seen = set()
    for request in ApprovalRequest.objects.filter(status="pending").order_by("created_at", "pk"):
        value = fingerprint(types.get(request.target_content_type_id, ""), request.payload)
        key = (request.action, request.target_object_id, value)
        if key in seen:
            continue
        seen.add(key)
        ApprovalRequest.objects.filter(pk=request.pk).update(payload_fingerprint=value)
    for record in IdempotencyRecord.objects.filter(response_status__isnull=True):
        IdempotencyRecord.objects.filter(pk=record.pk).update(lease_expires_at=record.created_at + IDEMPOTENCY_LEASE)


SQLITE_APPEND_ONLY = """CREATE TRIGGER IF NOT EXISTS governance_auditevent_no_update BEFORE UPDATE ON governance_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END;"""


def restore_sqlite_append_only(apps, schema_editor):
    """SQLite adds a NOT NULL column by rebuilding the table, which drops its triggers: put 0002's back."""
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_APPEND_ONLY)


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('governance', '0004_anchor'),
    ]

    operations = [
        migrations.AddField(
            model_name='approvalrequest',
            name='payload_fingerprint',
            field=models.CharField(blank=True, default='', help_text="Hash of the target's type and the proposed change: one pending request per action, target and fingerprint (empty on requests filed before it existed).", max_length=64),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='client_request_id',
            field=models.CharField(blank=True, default='', help_text="The client's X-Request-ID, as sent (evidence, not an identity).", max_length=128),
        ),
        migrations.RunPython(restore_sqlite_append_only, migrations.RunPython.noop),
        migrations.AddField(
            model_name='idempotencyrecord',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, help_text='While in progress: after this, the key may be retried.', null=True),
        ),
        migrations.AddField(
            model_name='idempotencyrecord',
            name='lease_token',
            field=models.CharField(blank=True, help_text='The request that holds the key.', max_length=32),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='request_id',
            field=models.CharField(blank=True, help_text="The server's own id of the request.", max_length=64),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='approvalrequest',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'pending'), models.Q(('payload_fingerprint', ''), _negated=True)), fields=('action', 'target_object_id', 'payload_fingerprint'), name='approvalrequest_one_pending_per_fingerprint', violation_error_message='The same request is already pending for this object.'),
        ),
        migrations.AddConstraint(
            model_name='idempotencyrecord',
            constraint=models.CheckConstraint(condition=models.Q(('response_status__isnull', False), ('lease_expires_at__isnull', False), _connector='OR'), name='idempotency_in_progress_has_lease'),
        ),
    ]
