"""The attestation inbox's risk signals (#19, 9): shown as columns; a risky item is confirmed only with a
reason (the service's rule); "confirm all" covers only items without signals and says how many it left out."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from governance.audit import Actor
from governance.models.attestation import AttestationItem
from governance.selectors import attestation as selectors
from governance.services import attestation as services
from tests.factories import CredentialFactory, SecretStoreFactory
from tests.factories_attestation import item_for, open_campaign

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def risky(personas, estate):
    """An admin key kept in source code, last used long ago, with nothing else wrong."""
    return CredentialFactory(name="loose-admin-key", owner=personas.owner, team=personas.team,
                             store=SecretStoreFactory(kind="source_code"), privilege_level="admin",
                             last_used_at=timezone.now() - dt.timedelta(days=200))


def test_risk_signals_are_columns_of_the_inbox(client, personas, estate, risky):
    open_campaign(personas)
    client.force_login(personas.owner)
    page = client.get(reverse("attestation-inbox")).content.decode()
    for column in ("Open findings", "Storage", "Privilege", "Last used"):
        assert f'<th scope="col">{column}</th>' in page
    assert "outside a managed store" in page and "admin privilege" in page and ">unused<" in page
    signals = selectors.item_risk_signals(AttestationItem.objects.all())
    credential_items = AttestationItem.objects.filter(object_type="governance.credential")
    by_object = {i.object_id: signals[i.pk] for i in credential_items}
    assert by_object[risky.pk].risky and not by_object[estate["credential"].pk].risky


def test_a_risky_item_is_confirmed_only_with_a_reason(client, personas, estate, risky):
    campaign = open_campaign(personas)
    item = item_for(campaign, risky)
    client.force_login(personas.owner)
    url = reverse("attestation-item", args=[item.pk])
    page = client.get(url).content.decode()
    assert "admin privilege" in page and "Confirming it unchanged needs a comment" in page
    response = client.post(url, {"answer": "confirm", "comment": ""})
    assert "has risk signals" in response.content.decode() and "say why you confirm it" in response.content.decode()
    item.refresh_from_db()
    assert item.state == "open" and item.answer == ""
    with pytest.raises(ValidationError) as error:
        services.attestation_item_answer(actor=Actor.for_user(personas.owner), item_id=item.pk, answer="confirm")
    assert "comment" in error.value.message_dict
    client.post(url, {"answer": "confirm", "comment": "Kept for the break-glass runbook, ticket SEC-9"})
    item.refresh_from_db()
    assert item.answer == "confirm" and item.comment.startswith("Kept for the break-glass")


def test_confirm_all_leaves_out_risky_items_and_says_how_many(client, personas, estate, risky):
    campaign = open_campaign(personas)
    client.force_login(personas.owner)
    page = client.get(reverse("attestation-inbox"))
    assert page.context["risky_count"] == 1
    assert "It leaves out 1 item with risk signals" in page.content.decode()
    response = client.post(reverse("attestation-confirm-seen"), {"item": page.context["rendered_ids"]}, follow=True)
    body = response.content.decode()
    assert "Left out 1 item(s) with risk signals" in body
    assert item_for(campaign, risky).answer == ""
    assert item_for(campaign, estate["credential"]).answer == "confirm"
