"""Verify the audit trail: its keyed hash chain, and the chain against every signed checkpoint.

With --checkpoint FILE --public-key FILE it verifies checkpoints offline instead (an auditor's
copy: no database, no chain key). Exit status 0 when everything verifies, 1 naming what did not.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance.audit_anchor import audit_trail_verify, checkpoints_verify_offline
from governance.audit_keys import load_public_key, public_key_id


class Command(BaseCommand):
    help = ("Verify the audit trail's keyed hash chain and compare it with the signed checkpoints written "
            "outside the database; or, with --checkpoint and --public-key, verify checkpoints offline.")

    def add_arguments(self, parser):
        parser.add_argument("--checkpoints", action="append", default=[], metavar="FILE",
                            help="Also compare with the checkpoints in FILE (JSON lines or a syslog export).")
        parser.add_argument("--checkpoint", metavar="FILE",
                            help="Verify the checkpoint(s) in FILE offline (needs --public-key).")
        parser.add_argument("--public-key", metavar="FILE",
                            help="The PEM public key exported with `manage.py audit_public_key`.")

    def handle(self, *args, **options):
        key = self._public_key(options["public_key"]) if options["public_key"] else None
        if options["checkpoint"]:
            if key is None:
                raise CommandError("--checkpoint needs --public-key FILE (from `manage.py audit_public_key`).")
            return self._offline(Path(options["checkpoint"]), key)
        result = audit_trail_verify(extra_files=options["checkpoints"], key=key)
        for warning in result.warnings:
            self.stderr.write(f"Warning: {warning}")
        if not result.intact:
            raise CommandError("Audit trail NOT verified:\n" + "\n".join(f"- {p}" for p in result.problems))
        latest = (f"; latest checkpoint {result.latest.created_at} at #{result.latest.sequence}"
                  if result.latest else "")
        self.stdout.write(f"Audit chain intact: {result.chain.events} events, head hash {result.chain.head_hash}; "
                          f"consistent with {result.checkpoints} signed checkpoints{latest}")

    def _public_key(self, path: str):
        try:
            return load_public_key(Path(path).read_bytes(), source=path)
        except (OSError, ValueError) as error:
            raise CommandError(f"--public-key: {error}") from None

    def _offline(self, path: Path, key) -> None:
        try:
            valid, problems = checkpoints_verify_offline(path, key)
        except OSError as error:
            raise CommandError(f"--checkpoint: {error}") from None
        for checkpoint in valid:
            self.stdout.write(
                f"Checkpoint VALID (signer {public_key_id(key)}): event #{checkpoint.sequence}, head hash "
                f"{checkpoint.head_hash}, {checkpoint.event_count} events, written {checkpoint.created_at} "
                f"({checkpoint.reason}), chain key {checkpoint.key_id}")
        if problems:
            raise CommandError("Checkpoint NOT verified:\n" + "\n".join(f"- {p}" for p in problems))
        if not valid:
            raise CommandError(f"--checkpoint: {path} holds no checkpoint.")
