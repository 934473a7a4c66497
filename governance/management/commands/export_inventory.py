"""Export the inventory as CSV or JSON in the format import_inventory reads back."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance.models import Person
from governance.services.exchange import OBJECT_TYPES, export_document, export_inventory
from governance.services.exchange_schema import base_queryset


class Command(BaseCommand):
    help = (
        "Export one object type (CSV or JSON) or every type (--type all, JSON) in the import format "
        "(docs/import-format.md). The command line sees everything unless --as names a person."
    )

    def add_arguments(self, parser):
        parser.add_argument("--type", required=True, choices=("all", *OBJECT_TYPES), dest="object_type")
        parser.add_argument("--format", required=True, choices=("csv", "json"), dest="fmt")
        parser.add_argument("--output", help="Write to this file instead of standard output.")
        parser.add_argument("--as", dest="username", help="Export only what this person may see.")

    def handle(self, *args, object_type, fmt, output=None, username=None, **options):
        try:
            if username is None:
                text, _ = export_document(object_type=object_type, fmt=fmt, queryset_for=base_queryset)
            else:
                person = Person.objects.filter(username=username).first()
                if person is None or not person.is_active:
                    raise CommandError(f"No active person {username!r}.")
                text, _ = export_inventory(user=person, object_type=object_type, fmt=fmt)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
        self.stderr.write(f"Wrote {output}.")
