from django.core.management.base import BaseCommand, CommandError

from governance.audit import verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain: exit 0 when intact, non-zero naming the first bad event."

    def handle(self, *args, **options):
        result = verify_chain()
        if not result.intact:
            raise CommandError(
                f"Audit chain BROKEN at event #{result.first_bad_sequence}: {result.reason} "
                f"({result.events} events verified before it)."
            )
        self.stdout.write(f"Audit chain intact: {result.events} events, head hash {result.head_hash}")
