from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance.services.sweep import sweep_run


class Command(BaseCommand):
    help = "Evaluate the checks over the whole estate and open, refresh and resolve findings."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="append",
            dest="checks",
            metavar="CODE",
            help="Only this check (repeatable), e.g. --check owner-active.",
        )

    def handle(self, *args, checks=None, **options):
        try:
            run = sweep_run(checks=checks, trigger="command")
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        for code, counts in run.counts.items():
            if counts.get("status") == "evaluated":
                self.stdout.write(
                    f"{code:24} evaluated {counts['evaluated']:>8} failed {counts['failed']:>7}  opened "
                    f"{counts['opened']} reopened {counts['reopened']} resolved {counts['resolved']} "
                    f"({counts['seconds']:.2f} s)"
                )
            else:
                self.stdout.write(f"{code:24} not evaluated: {counts.get('detail', '')}")
        for code, error in run.errors.items():
            self.stderr.write(f"{code:24} ERROR {error}")
        self.stdout.write(f"Sweep #{run.pk} {run.status} in {run.duration_seconds:.2f} s.")
        if run.errors:
            raise CommandError(f"{len(run.errors)} check(s) failed; see sweep run #{run.pk}.")
