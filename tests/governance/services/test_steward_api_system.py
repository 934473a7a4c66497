"""The "Steward API" system that mirrors integrations is the security admins', not the first owner's (issue 14)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from governance import permissions, roles
from governance.audit import Actor, verify_chain
from governance.models import AuditEvent, System
from governance.services import integrations as services
from tests.factories import SystemFactory
from tests.factories_checks import failing
from tests.factories_integrations import make_integration

pytestmark = pytest.mark.django_db


def steward_api() -> System:
    return System.objects.get(name=services.STEWARD_API_SYSTEM)


def test_steward_api_system_was_created_owned_by_the_first_integrations_owner(personas):
    make_integration(owner=personas.owner, scopes=["read"], name="first", team=personas.team)
    system = steward_api()
    assert system.owner is None
    assert system.team.group.name == roles.SECURITY_ADMINS
    # created on first use, with its audit event (and the security admins' team's)
    created = AuditEvent.objects.get(action="system.create", object_id=str(system.pk))
    assert created.changes["team"] == {"before": None, "after": system.team_id}
    assert AuditEvent.objects.filter(action="team.create", object_id=str(system.team_id)).count() == 1
    assert verify_chain().intact
    # a second integration reuses it: no second system, no second event
    make_integration(owner=personas.approver, scopes=["read"], name="second")
    assert System.objects.filter(name=services.STEWARD_API_SYSTEM).count() == 1
    assert AuditEvent.objects.filter(action="system.create", object_id=str(system.pk)).count() == 1


def test_integration_owner_could_edit_the_steward_api_system_through_the_api(personas):
    make_integration(owner=personas.owner, scopes=["read"], name="first", team=personas.team)
    system = steward_api()
    client = APIClient()
    client.force_login(personas.owner)
    response = client.patch(f"/api/v1/systems/{system.pk}/", {"description": "mine now"}, format="json")
    assert response.status_code == 404
    assert steward_api().description != "mine now"
    assert not permissions.can(personas.owner, permissions.CHANGE, system)
    assert not permissions.can(personas.backup_owner, permissions.CHANGE, system)
    # the security admins change it (through the same audited service as any system)
    admin = APIClient()
    admin.force_login(personas.secadmin)
    assert admin.patch(f"/api/v1/systems/{system.pk}/", {"description": "Steward's API"},
                       format="json").status_code == 200


def test_integration_owner_could_edit_the_steward_api_system_in_the_portal(client, personas):
    make_integration(owner=personas.owner, scopes=["read"], name="first", team=personas.team)
    system = steward_api()
    client.force_login(personas.owner)
    url = reverse("system-edit", args=[system.pk])
    assert client.get(url).status_code == 404
    response = client.post(url, {"name": "Steward API", "description": "mine now", "lifecycle": "active",
                                 "environment": "prod", "criticality": "high", "owner": personas.owner.pk,
                                 "team": personas.team.pk})
    assert response.status_code == 404
    system.refresh_from_db()
    assert system.owner is None and system.description != "mine now"


def test_steward_api_system_left_owned_by_a_person_is_handed_back_to_the_security_admins(personas):
    """An estate from before this rule: the system named its first owner; the next registration fixes it."""
    SystemFactory(name=services.STEWARD_API_SYSTEM, owner=personas.owner, team=personas.team)
    make_integration(owner=personas.owner, scopes=["read"], name="next")
    system = steward_api()
    assert system.owner is None and system.team.group.name == roles.SECURITY_ADMINS
    transfer = AuditEvent.objects.get(action="system.transfer", object_id=str(system.pk))
    assert transfer.changes["owner"] == {"before": personas.owner.pk, "after": None}
    assert not permissions.can(personas.owner, permissions.CHANGE, system)
    assert not permissions.can(personas.backup_owner, permissions.CHANGE, system)


def test_steward_api_system_is_owned_not_orphaned_for_the_owner_named_check(personas):
    make_integration(owner=personas.owner, scopes=["read"], name="first")
    orphan = SystemFactory(owner=None)
    failing_ids = failing("owner-named", System)
    assert steward_api().pk not in failing_ids and orphan.pk in failing_ids


def test_only_security_admins_make_the_steward_api_system(personas):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.steward_api_system(actor=Actor.for_user(personas.owner))
    assert not System.objects.filter(name=services.STEWARD_API_SYSTEM).exists()
    assert services.steward_api_system(actor=Actor.for_user(personas.secadmin)).owner is None
