"""Delegations: a person's own consent that an integration acts for them, given and ended only by them."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.audit import Actor
from governance.models import AuditEvent
from governance.models.integrations import Delegation
from governance.services import delegations
from governance.services import integrations as integration_services
from tests.conftest import actor
from tests.factories_integrations import delegate, make_integration

pytestmark = pytest.mark.django_db


def _grant(person, integration, *, by=None, days=30, reason="chat approvals"):
    return delegations.delegation_grant(actor=actor(by or person), person=person, integration=integration,
                                        expires_at=timezone.now() + dt.timedelta(days=days), reason=reason)


@pytest.fixture
def chatops(personas):
    return make_integration(owner=personas.owner, name="chatops", scopes=["read", "decide_requests"])[0]


def test_grant_is_audited_and_in_force(personas, chatops):
    delegation = _grant(personas.approver, chatops)
    assert delegation.in_force_at(timezone.now())
    event = AuditEvent.objects.get(action="delegation.grant")
    assert (event.actor_kind, event.actor_id) == ("person", personas.approver.pk)
    assert event.object_type == "governance.delegation" and event.object_id == str(delegation.pk)
    assert event.changes["integration"]["after"] == chatops.pk and event.changes["person"]["after"] == \
        personas.approver.pk


@pytest.mark.parametrize("days, field", [(0, "expires_at"), (-1, "expires_at"), (91, "expires_at")])
def test_expiry_must_be_in_the_future_and_at_most_90_days(personas, chatops, days, field):
    with pytest.raises(ValidationError) as error:
        _grant(personas.approver, chatops, days=days)
    assert field in error.value.message_dict
    assert not Delegation.objects.exists() and not AuditEvent.objects.filter(action="delegation.grant").exists()


def test_reason_is_required_and_free_of_secrets(personas, chatops):
    with pytest.raises(ValidationError) as error:
        _grant(personas.approver, chatops, reason="  ")
    assert "reason" in error.value.message_dict
    with pytest.raises(ValidationError):
        _grant(personas.approver, chatops, reason="token ghp_" + "a" * 36)
    assert not Delegation.objects.exists()


def test_no_duplicate_active_delegation(personas, chatops):
    _grant(personas.approver, chatops)
    with pytest.raises(ValidationError, match="already delegated"):
        _grant(personas.approver, chatops)
    assert Delegation.objects.count() == 1
    # and the database holds it too
    with pytest.raises(IntegrityError), transaction.atomic():
        now = timezone.now()
        Delegation.objects.create(person=personas.approver, integration=chatops, reason="x", created_at=now,
                                  expires_at=now + dt.timedelta(days=1))


def test_an_expired_delegation_is_closed_when_the_person_delegates_again(personas, chatops):
    old = _grant(personas.approver, chatops)
    past = timezone.now() - dt.timedelta(minutes=1)
    Delegation.objects.filter(pk=old.pk).update(created_at=past - dt.timedelta(days=2), expires_at=past)
    new = _grant(personas.approver, chatops)
    old.refresh_from_db()
    assert old.revoked_at == old.expires_at and old.state_at(timezone.now()) == "expired"
    assert new.in_force_at(timezone.now())
    assert AuditEvent.objects.filter(action="delegation.close", object_id=str(old.pk)).exists()


@pytest.mark.parametrize("who", ["secadmin", "owner", "backup_owner"])
def test_nobody_delegates_for_someone_else_security_admins_included(personas, chatops, who):
    with pytest.raises(PermissionDenied, match="someone else"):
        _grant(personas.approver, chatops, by=getattr(personas, who))
    delegation = _grant(personas.approver, chatops)
    with pytest.raises(PermissionDenied, match="someone else"):
        delegations.delegation_revoke(actor=actor(getattr(personas, who)), delegation=delegation)
    delegation.refresh_from_db()
    assert delegation.revoked_at is None


def test_integrations_and_tasks_do_not_delegate(personas, chatops):
    for acting in (Actor.system(task_id="t"), Actor.for_integration(chatops, on_behalf_of=personas.approver)):
        with pytest.raises(PermissionDenied):
            delegations.delegation_grant(actor=acting, person=personas.approver, integration=chatops,
                                         expires_at=timezone.now() + dt.timedelta(days=1), reason="x")


def test_the_owner_and_disabled_integrations(personas, chatops):
    with pytest.raises(ValidationError, match="already acts for you"):
        _grant(personas.owner, chatops)
    integration_services.integration_disable(actor=actor(personas.secadmin), integration=chatops, reason="gone")
    with pytest.raises(ValidationError, match="disabled"):
        _grant(personas.approver, chatops)


def test_revoke_is_audited_and_ends_it_at_once(personas, chatops):
    delegation = _grant(personas.approver, chatops)
    delegations.delegation_revoke(actor=actor(personas.approver), delegation=delegation)
    delegation.refresh_from_db()
    assert delegation.state_at(timezone.now()) == "revoked"
    event = AuditEvent.objects.get(action="delegation.revoke")
    assert event.actor_id == personas.approver.pk and event.changes["revoked_at"]["before"] is None
    with pytest.raises(ValidationError, match="already ended"):
        delegations.delegation_revoke(actor=actor(personas.approver), delegation=delegation)


def test_a_new_owner_ends_the_delegations(personas, chatops):
    """Consent was given to the integration its previous owner ran."""
    delegation = delegate(personas.approver, chatops)
    integration_services.integration_update(actor=actor(personas.secadmin), integration=chatops,
                                            data={"owner": personas.backup_owner})
    delegation.refresh_from_db()
    assert delegation.revoked_at is not None
    assert AuditEvent.objects.filter(action="delegation.revoke", object_id=str(delegation.pk),
                                     actor_id=personas.secadmin.pk).exists()
