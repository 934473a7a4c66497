"""The portal's delegation pages: a person delegates to an integration and revokes it, for themself only."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from governance.models import AuditEvent
from governance.models.integrations import Delegation
from tests.factories_integrations import delegate, make_integration

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def chatops(personas):
    return make_integration(owner=personas.owner, name="chatops", scopes=["read", "decide_requests"])[0]


def _form(integration, *, days=30, reason="I approve from chat"):
    until = timezone.now() + dt.timedelta(days=days)
    return {"integration": integration.pk, "expires_at": until.strftime("%Y-%m-%dT%H:%M"), "reason": reason}


def test_a_person_delegates_from_the_page_and_it_is_audited(client, personas, chatops):
    client.force_login(personas.approver)
    page = client.get(reverse("delegation-list") + f"?integration={chatops.pk}")
    assert page.status_code == 200 and f'value="{chatops.pk}" selected' in page.content.decode()
    response = client.post(reverse("delegation-list"), _form(chatops))
    assert response.status_code == 302
    delegation = Delegation.objects.get(person=personas.approver, integration=chatops)
    assert delegation.reason == "I approve from chat" and delegation.revoked_at is None
    event = AuditEvent.objects.get(action="delegation.grant")
    assert event.actor_id == personas.approver.pk and event.object_id == str(delegation.pk)
    listing = client.get(reverse("delegation-list")).content.decode()
    assert "chatops" in listing and "in force" in listing


def test_bad_input_is_a_form_error_naming_the_field(client, personas, chatops):
    client.force_login(personas.approver)
    too_long = client.post(reverse("delegation-list"), _form(chatops, days=120))
    assert too_long.status_code == 200 and "at most 90 days" in too_long.content.decode()
    no_reason = client.post(reverse("delegation-list"), _form(chatops, reason=""))
    assert no_reason.status_code == 200 and "This field is required" in no_reason.content.decode()
    delegate(personas.approver, chatops)
    duplicate = client.post(reverse("delegation-list"), _form(chatops))
    assert duplicate.status_code == 200 and "already delegated" in duplicate.content.decode()
    assert Delegation.objects.count() == 1


def test_the_owner_cannot_pick_her_own_integration(client, personas, chatops):
    client.force_login(personas.owner)
    response = client.post(reverse("delegation-list"), _form(chatops))
    assert response.status_code == 200 and not Delegation.objects.exists()


def test_revoke_from_the_page(client, personas, chatops):
    delegation = delegate(personas.approver, chatops)
    client.force_login(personas.approver)
    response = client.post(reverse("delegation-revoke", args=[delegation.pk]))
    assert response.status_code == 302
    delegation.refresh_from_db()
    assert delegation.state_at(timezone.now()) == "revoked"
    assert AuditEvent.objects.filter(action="delegation.revoke", actor_id=personas.approver.pk).exists()
    assert any("no longer acts for you" in str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.parametrize("who", ["secadmin", "owner", "outsider"])
def test_revoking_someone_elses_delegation_is_refused(client, personas, chatops, who):
    delegation = delegate(personas.approver, chatops)
    client.force_login(getattr(personas, who))
    assert client.post(reverse("delegation-revoke", args=[delegation.pk])).status_code == 404
    delegation.refresh_from_db()
    assert delegation.revoked_at is None
    assert not AuditEvent.objects.filter(action="delegation.revoke").exists()


def test_nobody_delegates_for_someone_else_from_the_page(client, personas, chatops):
    """The form has no person field: a posted one is ignored, the delegation is the signed-in person's own."""
    client.force_login(personas.secadmin)
    client.post(reverse("delegation-list"), {**_form(chatops), "person": personas.approver.pk})
    assert not Delegation.objects.filter(person=personas.approver).exists()
    assert Delegation.objects.get().person == personas.secadmin


def test_the_integration_page_shows_who_delegated_and_links_to_delegate(client, personas, chatops):
    delegate(personas.backup_owner, chatops)
    client.force_login(personas.backup_owner)
    page = client.get(reverse("integration-detail", args=[chatops.pk])).content.decode()
    assert "Delegated to it now" in page and reverse("person-detail", args=[personas.backup_owner.pk]) in page
    assert reverse("delegation-list") + f"?integration={chatops.pk}" in page
    own = client.get(reverse("person-detail", args=[personas.backup_owner.pk])).content.decode()
    assert reverse("delegation-list") in own
    other = client.get(reverse("person-detail", args=[personas.owner.pk])).content.decode()
    assert reverse("delegation-list") not in other
