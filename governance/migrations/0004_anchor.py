"""Anchor the audit trail: PostgreSQL refuses TRUNCATE, and existing events are re-linked with the keyed hash.

TRUNCATE is a statement that row triggers never see, so a statement trigger refuses it. The one
sanctioned exception is `manage.py flush` (governance/management/commands/flush.py: development
and test tear-down), which opts in for its own session with `SET steward.audit_truncate = 'allow'`.
Production keeps TRUNCATE away from the application role by privileges as well (docs/architecture.md,
"Audit anchoring"). SQLite has no TRUNCATE.

The re-link verifies the old (plain SHA-256) chain as it goes and refuses to launder a broken one:
investigate first (`manage.py verify_audit_chain` on the old release names the first bad event).
It needs the chain key of the new release (STEWARD_AUDIT_CHAIN_KEY, or the OpenBao path) at
migration time. Run it with the writers stopped, as any migration.
"""

import hashlib

from django.db import migrations

from governance.audit import GENESIS_HASH, content_digest, link_hash
from governance.audit_keys import chain_key
from governance.models import AuditEvent as CurrentAuditEvent

BATCH = 1000

PG_FORWARD = """
CREATE OR REPLACE FUNCTION steward_audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('steward.audit_truncate', true) = 'allow' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (TRUNCATE refused)' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER governance_auditevent_no_truncate
    BEFORE TRUNCATE ON governance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION steward_audit_refuse_truncate();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS governance_auditevent_no_truncate ON governance_auditevent;
DROP FUNCTION IF EXISTS steward_audit_refuse_truncate();
"""
SQLITE_NO_UPDATE = """CREATE TRIGGER governance_auditevent_no_update BEFORE UPDATE ON governance_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END;"""


def truncate_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def truncate_guard_backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)


def plain_link(sequence: int, prev_hash: str, digest: str) -> str:
    """The link of the chain before this migration (unkeyed SHA-256)."""
    return hashlib.sha256(f"{sequence}|{prev_hash}|{digest}".encode()).hexdigest()


def keyed_link(sequence: int, prev_hash: str, digest: str) -> str:
    return link_hash(sequence, prev_hash, digest, key=chain_key())


def _digest(event) -> str:
    """The content digest as the current code computes it: fields added by later migrations take their defaults."""
    return content_digest(CurrentAuditEvent(**{f.attname: getattr(event, f.attname)
                                               for f in event._meta.concrete_fields}))


def relink(apps, schema_editor, *, old_link, new_link) -> None:
    """Verify every event with old_link and rewrite its links with new_link, in batches of BATCH."""
    AuditEvent = apps.get_model("governance", "AuditEvent")
    if not AuditEvent.objects.exists():
        return
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("ALTER TABLE governance_auditevent DISABLE TRIGGER governance_auditevent_append_only")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS governance_auditevent_no_update")
        old_prev = new_prev = GENESIS_HASH
        expected = 1
        while True:
            batch = list(AuditEvent.objects.filter(sequence__gte=expected).order_by("sequence")[:BATCH])
            if not batch:
                break
            updates = []
            for event in batch:
                digest = _digest(event)
                if (event.sequence != expected or event.prev_hash != old_prev
                        or old_link(event.sequence, old_prev, digest) != event.hash):
                    raise RuntimeError(
                        f"The audit chain is broken at event #{event.sequence} (expected #{expected}); it is not "
                        "re-linked, so that the break stays visible. Investigate before upgrading.")
                new_hash = new_link(event.sequence, new_prev, digest)
                updates.append((new_prev, new_hash, event.pk))
                old_prev, new_prev = event.hash, new_hash
                expected += 1
            cursor.executemany("UPDATE governance_auditevent SET prev_hash = %s, hash = %s WHERE id = %s", updates)
        if vendor == "postgresql":
            cursor.execute("ALTER TABLE governance_auditevent ENABLE TRIGGER governance_auditevent_append_only")
        else:
            cursor.execute(SQLITE_NO_UPDATE)


def relink_keyed(apps, schema_editor):
    relink(apps, schema_editor, old_link=plain_link, new_link=keyed_link)


def relink_plain(apps, schema_editor):
    relink(apps, schema_editor, old_link=keyed_link, new_link=plain_link)


class Migration(migrations.Migration):
    dependencies = [("governance", "0003_capabilities")]
    operations = [
        migrations.RunPython(truncate_guard, truncate_guard_backward),
        migrations.RunPython(relink_keyed, relink_plain),
    ]
