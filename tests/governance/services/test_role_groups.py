"""Role groups (Auditors, Security admins): membership through an audited service; the admin cannot
rename or delete them (issue 14: "role groups renamed or deleted in Django admin change who is an
auditor with no audit event")."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from governance import roles
from governance.audit import Actor, verify_chain
from governance.models import AuditEvent, Person
from governance.services import people
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_superuser(personas):
    return PersonFactory(username="root.admin", is_staff=True, is_superuser=True)


def fresh(person) -> Person:
    return Person.objects.get(pk=person.pk)


def test_role_group_renamed_in_admin_changed_who_is_an_auditor(client, personas, staff_superuser):
    auditors = Group.objects.get(name=roles.AUDITORS)
    client.force_login(staff_superuser)
    before = AuditEvent.objects.count()
    response = client.post(reverse("admin:auth_group_change", args=[auditors.pk]), {"name": "Readers"})
    assert response.status_code == 403
    assert Group.objects.get(pk=auditors.pk).name == roles.AUDITORS
    assert roles.is_auditor(fresh(personas.auditor))
    assert AuditEvent.objects.count() == before
    # shown, read-only
    assert client.get(reverse("admin:auth_group_change", args=[auditors.pk])).status_code == 200


def test_role_group_deleted_in_admin_changed_who_is_a_security_admin(client, personas, staff_superuser):
    admins = Group.objects.get(name=roles.SECURITY_ADMINS)
    client.force_login(staff_superuser)
    url = reverse("admin:auth_group_delete", args=[admins.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Group.objects.filter(pk=admins.pk).exists()
    assert roles.is_security_admin(fresh(personas.secadmin))
    # nor can a group be added here
    assert client.post(reverse("admin:auth_group_add"), {"name": "Auditors 2"}).status_code == 403


def test_role_membership_change_writes_an_audit_event(personas):
    admin = Actor.for_user(personas.secadmin)
    assert people.role_member_add(actor=admin, person=personas.approver, role=roles.AUDITORS)
    added = AuditEvent.objects.get(action="role.member_add")
    assert (added.object_type, added.object_id, added.actor_id) == (
        "governance.person", str(personas.approver.pk), personas.secadmin.pk)
    assert added.changes == {"role": {"before": None, "after": roles.AUDITORS}}
    assert roles.is_auditor(fresh(personas.approver))
    # again: nothing changes, nothing is recorded
    assert not people.role_member_add(actor=admin, person=personas.approver, role=roles.AUDITORS)
    assert AuditEvent.objects.filter(action="role.member_add").count() == 1
    assert people.role_member_remove(actor=admin, person=personas.approver, role=roles.AUDITORS)
    removed = AuditEvent.objects.get(action="role.member_remove")
    assert removed.changes == {"role": {"before": roles.AUDITORS, "after": None}}
    assert not roles.is_auditor(fresh(personas.approver))
    assert verify_chain().intact


def test_only_security_admins_change_roles_and_the_last_one_stays(personas):
    with pytest.raises(PermissionDenied):
        people.role_member_add(actor=Actor.for_user(personas.owner), person=personas.owner,
                               role=roles.SECURITY_ADMINS)
    with pytest.raises(PermissionDenied):
        people.role_member_remove(actor=Actor.for_user(personas.auditor), person=personas.secadmin,
                                  role=roles.SECURITY_ADMINS)
    with pytest.raises(ValidationError, match="Unknown role"):
        people.role_member_add(actor=Actor.for_user(personas.secadmin), person=personas.owner, role="Root")
    with pytest.raises(ValidationError, match="last active security admin"):
        people.role_member_remove(actor=Actor.for_user(personas.secadmin), person=personas.secadmin,
                                  role=roles.SECURITY_ADMINS)
    assert roles.is_security_admin(fresh(personas.secadmin))
    assert not AuditEvent.objects.filter(action__startswith="role.").exists()


def test_a_role_is_not_given_around_the_service_through_teams(personas):
    """The security admins' team is their role group: joining it, or naming a team after a role, is a role change."""
    admin = Actor.for_user(personas.secadmin)
    team = people.security_admins_team(actor=admin)
    assert team.group.name == roles.SECURITY_ADMINS
    people.team_member_add(actor=admin, team=team, person=personas.approver)
    assert AuditEvent.objects.filter(action="role.member_add", object_id=str(personas.approver.pk)).exists()
    created = people.person_create(actor=admin, username="new.admin", teams=[team, personas.team])
    assert roles.is_security_admin(fresh(created))
    assert AuditEvent.objects.filter(action="role.member_add", object_id=str(created.pk)).exists()
    with pytest.raises(ValidationError, match="is a role"):
        people.team_create(actor=admin, name=roles.AUDITORS)


def test_role_groups_are_created_through_the_audited_service(personas):
    Group.objects.filter(name=roles.AUDITORS).update(name="legacy")  # as if it never existed
    groups = people.role_groups_ensure(actor=Actor.system(task_id="test"))
    assert [g.name for g in groups] == list(roles.ROLE_GROUPS)
    event = AuditEvent.objects.get(action="role_group.create")
    assert event.changes == {"name": {"before": None, "after": roles.AUDITORS}}
    people.role_groups_ensure(actor=Actor.system(task_id="test"))
    assert AuditEvent.objects.filter(action="role_group.create").count() == 1


def test_role_command_goes_through_the_service(personas):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("role", "add", "auditor", personas.approver.username, stdout=out)
    assert "is now in Auditors" in out.getvalue() and roles.is_auditor(fresh(personas.approver))
    event = AuditEvent.objects.get(action="role.member_add")
    assert (event.actor_kind, event.task_id) == ("system", "role")
    call_command("role", "remove", "auditor", personas.approver.username, stdout=out)
    assert not roles.is_auditor(fresh(personas.approver))
    assert AuditEvent.objects.filter(action="role.member_remove").count() == 1
