from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance.audit import Actor
from governance.services.catalogue import DEFAULT_PATH, catalogue_load


class Command(BaseCommand):
    help = "Load or upgrade the control catalogue (frameworks, controls, checks, mapping). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--path", default=str(DEFAULT_PATH), help="The catalogue file (YAML).")

    def handle(self, *args, path, **options):
        try:
            result = catalogue_load(
                actor=Actor.system(task_id="load_catalogue", label="load_catalogue"), path=path
            )
        except ValidationError as exc:
            raise CommandError("The catalogue is invalid:\n- " + "\n- ".join(exc.messages)) from exc
        totals = result.version.summary.get("totals", {})
        if result.changed:
            changes = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "file changed"
            self.stdout.write(
                f"Catalogue {result.version.version} loaded: {totals.get('frameworks')} frameworks, "
                f"{totals.get('controls')} controls, {totals.get('checks')} checks, "
                f"{totals.get('mappings')} mappings ({changes})."
            )
        else:
            self.stdout.write(f"Catalogue {result.version.version} already loaded; nothing changed.")
