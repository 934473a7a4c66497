"""`manage.py flush`, allowed to empty the audit table: the one sanctioned TRUNCATE of it.

The PostgreSQL trigger governance_auditevent_no_truncate (migration 0004) refuses TRUNCATE unless
the session opted in; Django's flush (development resets, and the test suite's tear-down of
transactional tests) empties every table with TRUNCATE, so this command opts in for the duration
of the flush only. Emptying the audit table leaves the checkpoints outside the database behind,
and verify_audit_chain will report it: move var/audit-checkpoints.jsonl aside after a deliberate reset.
"""

from django.core.management.commands import flush
from django.db import connections


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(**options)
        with connection.cursor() as cursor:
            cursor.execute("SET steward.audit_truncate = 'allow'")
        try:
            return super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET steward.audit_truncate")
