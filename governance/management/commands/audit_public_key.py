"""Export the public key that verifies the audit checkpoints, for an auditor to verify them offline."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance.audit_keys import public_key_id, public_key_pem


class Command(BaseCommand):
    help = "Print (or write to --output) the PEM Ed25519 public key that verifies the audit checkpoints."

    def add_arguments(self, parser):
        parser.add_argument("--output", metavar="FILE", help="Write the PEM to FILE instead of printing it.")

    def handle(self, *args, **options):
        pem = public_key_pem()
        if not options["output"]:
            self.stdout.write(pem, ending="")
            return
        try:
            Path(options["output"]).write_text(pem)
        except OSError as error:
            raise CommandError(f"--output: {error}") from None
        self.stdout.write(f"Wrote the audit checkpoint public key (signer {public_key_id()}) to {options['output']}")
