"""`python manage.py seed_demo`: the deterministic demo estate (governance.demo), never in production."""

import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance import demo
from governance.models import Person

DEFAULT_DEMO_PASSWORD = "steward-demo"
SUMMARY_LINES = (
    ("people", "people", "people_departed", "departed"),
    ("teams", "teams", "", ""),
    ("systems", "systems", "systems_retired", "retired"),
    ("secret stores", "secret_stores", "secret_stores_unmanaged", "unmanaged"),
    ("workflows", "workflows", "workflows_orphaned", "orphaned"),
    ("credentials", "credentials", "credentials_orphaned", "orphaned"),
    ("bindings", "bindings", "", ""),
    ("audit events", "audit_events", "", ""),
)


class Command(BaseCommand):
    help = (
        "Seed a realistic demo estate with seeded governance problems. Refused under "
        "STEWARD_ENV=production; does nothing when the demo estate is already present."
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true",
                            help="Seed only when the database holds no people at all (used by `make run`).")

    def handle(self, *args, if_empty=False, **options):
        if settings.STEWARD_ENV == "production":
            raise CommandError(
                "seed_demo is refused under STEWARD_ENV=production: demo accounts share a published password."
            )
        if if_empty and Person.objects.exists():
            self.stdout.write("The database is not empty: the demo estate is not loaded.")
            return
        if demo.demo_estate_present():
            self.stdout.write("demo estate already present")
            return
        password = settings.STEWARD_DEMO_PASSWORD
        if not password:
            raise CommandError("Set STEWARD_DEMO_PASSWORD: the demo accounts need a password.")
        started = time.monotonic()
        try:
            counts = demo.build_demo_estate(password=password)
        except demo.DemoEstatePresent:
            self.stdout.write("demo estate already present")
            return
        except ValidationError as error:
            raise CommandError(f"The demo estate could not be built (nothing was saved): {error}") from error
        extras = demo.seed_demo_capabilities()
        elapsed = time.monotonic() - started

        out = self.stdout
        out.write(self.style.SUCCESS(f"Seeded the demo estate in {elapsed:.1f} s (audit: task seed_demo)."))
        for label, key, detail_key, detail in SUMMARY_LINES:
            extra = f" ({counts[detail_key]} {detail})" if detail_key else ""
            out.write(f"  {label:<15} {counts[key]}{extra}")
        for line in extras:
            out.write(f"  {line}")
        out.write(f"Sign in as {', '.join(demo.SIGN_IN_PERSONAS)}, or as any active person (maria.gonzalez).")
        if password == DEFAULT_DEMO_PASSWORD:
            out.write(f"Password: {DEFAULT_DEMO_PASSWORD} (the default; STEWARD_DEMO_PASSWORD changes it).")
        else:
            out.write("Password: the value of STEWARD_DEMO_PASSWORD (settings.STEWARD_DEMO_PASSWORD).")
