"""Give or take a site-wide role (auditor, security admin) from the command line, through the audited service."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance import roles
from governance.audit import Actor
from governance.models import Person
from governance.services import people

ROLE_NAMES = {"auditor": roles.AUDITORS, "security-admin": roles.SECURITY_ADMINS}


class Command(BaseCommand):
    help = "Add a person to a role group or remove them from it; each change is an audit event."

    def add_arguments(self, parser):
        parser.add_argument("change", choices=("add", "remove"))
        parser.add_argument("role", choices=sorted(ROLE_NAMES))
        parser.add_argument("username")

    def handle(self, *args, change, role, username, **options):
        person = Person.objects.filter(username=username).first()
        if person is None:
            raise CommandError(f"No person with username {username!r}.")
        actor = Actor.system(task_id="role", label="manage.py role")
        service = people.role_member_add if change == "add" else people.role_member_remove
        try:
            people.role_groups_ensure(actor=actor)
            changed = service(actor=actor, person=person, role=ROLE_NAMES[role])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        verb = ("is now in" if change == "add" else "is no longer in") if changed else (
            "was already in" if change == "add" else "was not in")
        self.stdout.write(f"{person.username} {verb} {ROLE_NAMES[role]}.")
