"""Register an API integration from the command line and print its token, once."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from governance.audit import Actor
from governance.models import Person, Team
from governance.services import integrations as services


class Command(BaseCommand):
    help = ("Register an integration (an API client) with an owner and scopes, and print its bearer token. "
            "The token is shown once: Steward stores only its hash.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, help="Username of the accountable person.")
        parser.add_argument("--scopes", required=True,
                            help="Comma-separated: read, file_requests, decide_requests, admin.")
        parser.add_argument("--team", help="Team name (default: the owner's first team).")
        parser.add_argument("--expires-in-days", type=int, default=None,
                            help="Days until its access ends (default 180, at most 366).")
        parser.add_argument("--description", default="")

    def handle(self, *args, name, owner, scopes, team=None, expires_in_days=None, description="", **options):
        person = Person.objects.filter(username=owner).first()
        if person is None:
            raise CommandError(f"No person with username {owner!r}.")
        team_obj = None
        if team:
            team_obj = Team.objects.filter(name=team).first()
            if team_obj is None:
                raise CommandError(f"No team called {team!r}.")
        expires_at = timezone.now() + dt.timedelta(days=expires_in_days) if expires_in_days else None
        try:
            integration, token = services.integration_create(
                actor=Actor.system(task_id="create_integration", label="manage.py create_integration"),
                name=name, owner=person, scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                team=team_obj, expires_at=expires_at, description=description)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
                               if hasattr(exc, "error_dict") else " ".join(exc.messages)) from exc
        self.stderr.write(f"Registered integration {integration.name} (owner {person.username}, scopes "
                          f"{', '.join(integration.scopes)}, expires {integration.expires_at:%Y-%m-%d}). "
                          "Its token follows; it is shown once:")
        self.stdout.write(token)
