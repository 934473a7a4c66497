"""Writes about people and teams, ownership transfer, and the departed-owner rule."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from governance import permissions, roles
from governance.audit import Actor
from governance.choices import PersonStatus
from governance.models import Credential, Person, System, Team, Workflow
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_security_admin, record, snapshot

PERSON_FIELDS = ("username", "first_name", "last_name", "email", "job_title", "status", "is_active")
OWNED_MODELS = (System, Workflow, Credential)


def person_create(
    *, actor: Actor, username: str, first_name: str = "", last_name: str = "", email: str = "",
    job_title: str = "", teams: Iterable[Team] = (), password: str | None = None,
) -> Person:
    ensure_security_admin(actor)
    with transaction.atomic():
        person = Person(username=username, first_name=first_name, last_name=last_name, email=email,
                        job_title=job_title)
        if password:
            person.set_password(password)
        else:
            person.set_unusable_password()
        person.full_clean()
        person.save()
        for team in teams:
            person.groups.add(team.group)
        record(actor=actor, action="person.create", instance=person, summary=f"Added person {person}",
               before={}, after={**snapshot(person, PERSON_FIELDS), "teams": sorted(t.name for t in teams)})
    return person


def team_create(
    *, actor: Actor, name: str, manager: Person | None = None, members: Iterable[Person] = (),
    description: str = "",
) -> Team:
    ensure_security_admin(actor)
    reject_secret_values({"name": name, "description": description})
    with transaction.atomic():
        if Team.objects.filter(name=name).exists() or Group.objects.filter(name=name).exists():
            raise ValidationError({"name": f"A team or group named {name!r} exists already."})
        group = Group.objects.create(name=name)
        team = Team(group=group, name=name, slug=slugify(name), manager=manager, description=description)
        team.full_clean()
        team.save()
        members = list(members)
        for person in members:
            person.groups.add(group)
            roles.forget_roles(person)
        record(actor=actor, action="team.create", instance=team, summary=f"Created team {team}", before={},
               after={"name": name, "manager": manager, "members": sorted(p.username for p in members)})
    return team


def team_member_add(*, actor: Actor, team: Team, person: Person) -> None:
    ensure_security_admin(actor)
    with transaction.atomic():
        person.groups.add(team.group)
        roles.forget_roles(person)
        record(actor=actor, action="team.member_add", instance=team, summary=f"{person} joined {team}",
               before={}, after={"member": person.username})


def role_grant(*, actor: Actor, person: Person, role: str) -> None:
    """Make a person an auditor or security admin (a named group)."""
    ensure_security_admin(actor)
    if role not in roles.ROLE_GROUPS:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=role)
        person.groups.add(group)
        roles.forget_roles(person)
        record(actor=actor, action="person.role_grant", instance=person, summary=f"{person} is now in {role}",
               before={}, after={"role": role})


def ownership_transfer(*, actor: Actor, obj, new_owner: Person | None, new_team: Team | None = None,
                       reason: str) -> object:
    """Hand an object to another owner (and optionally team), with the reason recorded."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why ownership changes hands."})
    if new_owner is not None and new_owner.is_departed:
        raise ValidationError({"new_owner": f"{new_owner} has departed and cannot own anything."})
    with transaction.atomic():
        obj = type(obj).objects.select_for_update().get(pk=obj.pk)
        ensure_security_admin(actor)  # owners file an ownership-transfer request (approvals) instead
        before = snapshot(obj, ("owner", "team"))
        old_team = obj.team
        obj.owner = new_owner
        if new_team is not None:
            obj.team = new_team
        obj.save(update_fields=["owner", "team", "updated_at"])
        if obj.team_id != (old_team.pk if old_team else None):
            permissions.revoke_team(obj, old_team)
            permissions.grant_team(obj, obj.team)
        record(actor=actor, action=f"{obj._meta.model_name}.transfer", instance=obj,
               summary=f"Ownership of {obj} transferred to {new_owner or 'nobody'}: {reason}",
               before=before, after=snapshot(obj, ("owner", "team")))
    return obj


def successor_for(obj, departing: Person) -> Person | None:
    """The backup team's manager takes over, when there is an active one who is not the leaver."""
    manager = obj.team.manager if obj.team_id else None
    if manager is None or manager.pk == departing.pk or manager.is_departed:
        return None
    return manager


def person_mark_departed(*, actor: Actor, person: Person) -> dict[str, int]:
    """A departed person owns nothing: each object passes to its backup team's manager or is orphaned."""
    ensure_security_admin(actor)
    counts = {"reassigned": 0, "orphaned": 0}
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        if person.is_departed:
            raise ValidationError({"status": f"{person} is already marked departed."})
        before = snapshot(person, ("status", "departed_at", "is_active"))
        person.status = PersonStatus.DEPARTED
        person.departed_at = timezone.now()
        person.is_active = False
        person.save(update_fields=["status", "departed_at", "is_active"])
        record(actor=actor, action="person.depart", instance=person, summary=f"{person} departed",
               before=before, after=snapshot(person, ("status", "departed_at", "is_active")))
        for model in OWNED_MODELS:
            for obj in model.objects.filter(owner=person).select_related("team__manager").order_by("pk"):
                successor = successor_for(obj, person)
                obj.owner = successor
                obj.save(update_fields=["owner", "updated_at"])
                outcome = "reassigned" if successor else "orphaned"
                counts[outcome] += 1
                summary = (
                    f"{obj} passed from departed {person} to {successor} (backup team manager)"
                    if successor
                    else f"{obj} is orphaned: its owner {person} departed and no backup manager can take it"
                )
                record(actor=actor, action=f"{model._meta.model_name}.{outcome}", instance=obj, summary=summary,
                       before={"owner": person.pk}, after={"owner": successor.pk if successor else None})
        # Open attestation items follow their objects to the backup (or to the security admins).
        from governance.services.attestation import attestation_items_reassign_for_departure

        attestation_items_reassign_for_departure(actor=actor, person=person)
    return counts
