"""Writes about people and teams, ownership transfer, and the departed-owner rule."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from governance import permissions, roles
from governance.audit import Actor, audit_append
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
        teams = list(teams)
        for team in teams:
            if team.group.name not in roles.ROLE_GROUPS:
                person.groups.add(team.group)
        record(actor=actor, action="person.create", instance=person, summary=f"Added person {person}",
               before={}, after={**snapshot(person, PERSON_FIELDS), "teams": sorted(t.name for t in teams)})
        for team in teams:
            if team.group.name in roles.ROLE_GROUPS:  # a role is given through its own audited path
                role_member_add(actor=actor, person=person, role=team.group.name)
    return person


def team_create(
    *, actor: Actor, name: str, manager: Person | None = None, members: Iterable[Person] = (),
    description: str = "",
) -> Team:
    ensure_security_admin(actor)
    reject_secret_values({"name": name, "description": description})
    if name in roles.ROLE_GROUPS:
        raise ValidationError({"name": f"{name!r} is a role, not a team name."})
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
    if team.group.name in roles.ROLE_GROUPS:  # the security admins' team is their role group
        role_member_add(actor=actor, person=person, role=team.group.name)
        return
    with transaction.atomic():
        person.groups.add(team.group)
        roles.forget_roles(person)
        record(actor=actor, action="team.member_add", instance=team, summary=f"{person} joined {team}",
               before={}, after={"member": person.username})


# Role groups: who is an auditor or a security admin. Their names are the roles, so the groups are
# never renamed or deleted (the admin is read-only for them), and every membership change is an
# audited call here.


def role_groups_ensure(*, actor: Actor) -> list[Group]:
    """Create the missing role groups, each with an audit event. Returns the role groups."""
    ensure_security_admin(actor)
    groups = []
    with transaction.atomic():
        for name in roles.ROLE_GROUPS:
            group, created = Group.objects.get_or_create(name=name)
            if created:
                audit_append(actor=actor, action="role_group.create", target=group,
                             summary=f"Created the role group {name}", changes={"name": {"before": None,
                                                                                         "after": name}})
            groups.append(group)
    return groups


def _role_group(role: str) -> Group:
    if role not in roles.ROLE_GROUPS:
        raise ValidationError({"role": f"Unknown role {role!r}: one of {', '.join(roles.ROLE_GROUPS)}."})
    group = Group.objects.select_for_update().filter(name=role).first()
    if group is None:
        raise ValidationError({"role": f"The role group {role!r} does not exist yet."})
    return group


def role_member_add(*, actor: Actor, person: Person, role: str) -> bool:
    """Make a person an auditor or a security admin. Returns False when they already were."""
    ensure_security_admin(actor)
    with transaction.atomic():
        group = _role_group(role)
        if person.is_departed or not person.is_active:
            raise ValidationError({"person": f"{person} is not an active person and cannot hold a role."})
        if group.user_set.filter(pk=person.pk).exists():
            return False
        person.groups.add(group)
        roles.forget_roles(person)
        audit_append(actor=actor, action="role.member_add", target=person, summary=f"{person} is now in {role}",
                     changes={"role": {"before": None, "after": role}})
    return True


def role_member_remove(*, actor: Actor, person: Person, role: str) -> bool:
    """Take a role away. The last active security admin cannot be removed (nobody could grant it again)."""
    ensure_security_admin(actor)
    with transaction.atomic():
        group = _role_group(role)  # locked: two concurrent removals cannot both pass the last-admin rule
        if not group.user_set.filter(pk=person.pk).exists():
            return False
        if role == roles.SECURITY_ADMINS and not group.user_set.filter(is_active=True).exclude(pk=person.pk).exists():
            raise ValidationError({"person": f"{person} is the last active security admin; add another first."})
        person.groups.remove(group)
        roles.forget_roles(person)
        audit_append(actor=actor, action="role.member_remove", target=person,
                     summary=f"{person} is no longer in {role}", changes={"role": {"before": role, "after": None}})
    return True


def security_admins_team(*, actor: Actor) -> Team:
    """The team whose group is the security admins' role group: backup team of what they own together."""
    with transaction.atomic():
        group = role_groups_ensure(actor=actor)[roles.ROLE_GROUPS.index(roles.SECURITY_ADMINS)]
        team = Team.objects.filter(group=group).first()
        if team is not None:
            return team
        name = roles.SECURITY_ADMINS if not Team.objects.filter(name=roles.SECURITY_ADMINS).exists() \
            else f"{roles.SECURITY_ADMINS} (role)"
        try:
            with transaction.atomic():
                team = Team.objects.create(group=group, name=name, slug=slugify(name),
                                           description="The security admins, together (their role group).")
        except IntegrityError:  # a concurrent first use created it
            return Team.objects.get(group=group)
        record(actor=actor, action="team.create", instance=team, summary=f"Created team {team} (the role group)",
               before={}, after={"name": name, "manager": None, "members": "the security admins"})
    return team


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
