"""Import an inventory file (CSV or JSON) from the command line: all rows or none, audited."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance.audit import Actor
from governance.models import Person
from governance.services.exchange import OBJECT_TYPES, ImportRejected, import_inventory


class Command(BaseCommand):
    help = (
        "Import teams, people, systems, secret stores, credentials, workflows and bindings from a CSV or "
        "JSON file (docs/import-format.md). Every row is checked first; on any error nothing is imported, "
        "every bad row is listed and the command exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .csv or .json file.")
        parser.add_argument("--type", choices=OBJECT_TYPES, dest="object_type",
                            help="The object type a CSV file (or a JSON list) holds; guessed from the file "
                                 "name when it is a type name, e.g. credentials.csv.")
        parser.add_argument("--as", dest="username", help="Act as this person (their permissions apply) "
                                                          "instead of as the system.")
        parser.add_argument("--dry-run", action="store_true", help="Check and count; save nothing.")

    def handle(self, *args, file, object_type=None, username=None, dry_run=False, **options):
        path = Path(file)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        actor = self._actor(username, path.name)
        try:
            result = import_inventory(actor=actor, content=content, filename=path.name,
                                      object_type=object_type, dry_run=dry_run)
        except ImportRejected as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            raise CommandError(f"{len(exc.errors)} error(s) in {path.name}; nothing was imported.") from exc
        if dry_run:
            self.stdout.write("Dry run: nothing was saved.")
        counted = [name for name in OBJECT_TYPES
                   if result.created[name] or result.updated[name] or result.unchanged[name]]
        for name in counted:
            self.stdout.write(f"{name}: {result.created[name]} created, {result.updated[name]} updated, "
                              f"{result.unchanged[name]} unchanged")
        if not counted:
            self.stdout.write("Nothing to import: the file holds no rows.")

    @staticmethod
    def _actor(username: str | None, filename: str) -> Actor:
        if username is None:
            return Actor.system(task_id=f"import_inventory:{filename}"[:100])
        person = Person.objects.filter(username=username).first()
        if person is None or not person.is_active:
            raise CommandError(f"No active person {username!r}.")
        return Actor.for_user(person)
