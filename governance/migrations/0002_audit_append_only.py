"""Make the audit events table append-only in the database itself.

PostgreSQL: a trigger refuses UPDATE and DELETE (TRUNCATE, used by test tear-down, is a
table-level operation that row triggers do not see). SQLite: a trigger refuses UPDATE; DELETE
is left to the code (which has no delete path) because Django's flush empties tables with
DELETE on SQLite.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION steward_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER governance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION steward_audit_refuse_change();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS governance_auditevent_append_only ON governance_auditevent;
DROP FUNCTION IF EXISTS steward_audit_refuse_change();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER governance_auditevent_no_update BEFORE UPDATE ON governance_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS governance_auditevent_no_update;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
