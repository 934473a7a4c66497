"""Write a signed checkpoint of the audit chain now (the beat task does it every few minutes)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from governance.audit_anchor import CheckpointError, checkpoint_write


class Command(BaseCommand):
    help = "Sign the audit chain's head and write the checkpoint to the configured sinks."

    def handle(self, *args, **options):
        try:
            checkpoint = checkpoint_write(reason="manage.py audit_checkpoint")
        except CheckpointError as error:
            raise CommandError(str(error)) from None
        sinks = ", ".join(settings.STEWARD_AUDIT_CHECKPOINT_SINKS)
        self.stdout.write(f"Checkpoint written to {sinks}: event #{checkpoint.sequence}, "
                          f"head hash {checkpoint.head_hash}, {checkpoint.event_count} events")
