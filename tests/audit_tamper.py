"""Edit the audit table directly, as an attacker with database access would (the trigger disabled)."""

from django.db import connection


def tamper(sql: str, params) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE governance_auditevent DISABLE TRIGGER governance_auditevent_append_only")
            cursor.execute(sql, params)
            cursor.execute("ALTER TABLE governance_auditevent ENABLE TRIGGER governance_auditevent_append_only")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS governance_auditevent_no_update")
            cursor.execute(sql, params)


def tamper_summary(*, pk: int, summary: str) -> None:
    tamper("UPDATE governance_auditevent SET summary = %s WHERE id = %s", [summary, pk])
