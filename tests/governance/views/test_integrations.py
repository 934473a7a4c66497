"""Portal pages of integrations and webhooks: tokens and secrets shown once, deliveries with attempts."""

import re

import pytest

from governance.models.integrations import Integration, IntegrationToken, WebhookDelivery, WebhookEndpoint
from governance.services import webhooks as webhook_services
from tests.factories_integrations import make_endpoint, make_integration
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


def shown_value(response) -> str:
    return re.search(r'id="shown-once-value"[^>]*value="([^"]+)"', response.content.decode()).group(1)


@pytest.mark.embedded
def test_registering_an_integration_shows_its_token_once(client, personas):
    client.force_login(personas.secadmin)
    response = client.post("/integrations/new/", {"name": "github-actions", "owner": personas.owner.pk,
                                                  "scopes": ["read", "file_requests"], "team": personas.team.pk})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    token = shown_value(response)
    integration = Integration.objects.get(name="github-actions")
    assert token.startswith(integration.tokens.get().prefix)
    detail = client.get(f"/integrations/{integration.pk}/").content.decode()
    assert integration.tokens.get().prefix in detail and token not in detail
    invalid = client.post("/integrations/new/", {"name": "x", "owner": personas.owner.pk, "scopes": ["read"],
                                                 "expires_at": "2001-01-01T00:00"})
    assert invalid.status_code == 200 and "The expiry must be in the future." in invalid.content.decode()


def test_owner_rotates_revokes_and_disables_from_the_portal(client, personas):
    integration, old = make_integration(owner=personas.owner, scopes=["read"], name="nightly")
    client.force_login(personas.owner)
    response = client.post(f"/integrations/{integration.pk}/rotate/", {"overlap_hours": 0})
    new = shown_value(response)
    assert new != old and not IntegrationToken.objects.get(prefix=old[:12]).is_usable_at(
        IntegrationToken.objects.get(prefix=new[:12]).created_at)
    token = IntegrationToken.objects.get(prefix=new[:12])
    response = client.post(f"/integrations/{integration.pk}/tokens/{token.pk}/revoke/", follow=True)
    assert "revoked" in response.content.decode()
    response = client.post(f"/integrations/{integration.pk}/disable/", {"reason": "replaced"}, follow=True)
    integration.refresh_from_db()
    assert integration.status == "disabled" and "disabled" in response.content.decode()


def test_security_admin_edits_scopes(client, personas):
    integration, _ = make_integration(owner=personas.owner, scopes=["read"], name="edited")
    client.force_login(personas.secadmin)
    page = client.get(f"/integrations/{integration.pk}/edit/")
    assert page.status_code == 200
    client.post(f"/integrations/{integration.pk}/edit/", {
        "owner": personas.owner.pk, "scopes": ["read", "decide_requests"], "team": personas.team.pk,
        "expires_at": integration.expires_at.strftime("%Y-%m-%dT%H:%M"), "description": "approvals bot"})
    integration.refresh_from_db()
    assert integration.scopes == ["read", "decide_requests"] and integration.description == "approvals bot"


def test_webhook_pages_show_the_secret_once_and_every_attempt(client, personas, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    client.force_login(personas.secadmin)
    with Receiver(statuses=[503]) as receiver:
        response = client.post("/webhooks/new/", {"name": "jira", "url": receiver.url,
                                                  "event_types": ["approval_request.decided"],
                                                  "owner": personas.owner.pk})
        secret = shown_value(response)
        assert secret.startswith("whsec_")
        endpoint = WebhookEndpoint.objects.get(name="jira")
        client.post(f"/webhooks/{endpoint.pk}/ping/")
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        webhook_services.webhook_delivery_attempt(delivery_id=delivery.pk)
    detail = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert delivery.message_id in detail and secret not in detail
    attempts = client.get(f"/webhooks/deliveries/{delivery.pk}/").content.decode()
    assert "answer 503" in attempts and "will retry" in attempts
    rotated = client.post(f"/webhooks/{endpoint.pk}/rotate-secret/", {"overlap_hours": 2})
    assert shown_value(rotated) not in (secret, "")
    assert "both signatures sent" in client.get(f"/webhooks/{endpoint.pk}/").content.decode()


def test_failed_delivery_can_be_sent_again(client, personas, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with Receiver(statuses=[410]) as receiver:
        make_endpoint(owner=personas.owner, url=receiver.url, event_types=["rotation.failed"])
        (delivery,) = webhook_services.webhook_event_emit(event_type="rotation.failed", payload={"credential": 1})
        webhook_services.webhook_delivery_attempt(delivery_id=delivery.pk)
    client.force_login(personas.secadmin)
    page = client.get(f"/webhooks/deliveries/{delivery.pk}/").content.decode()
    assert "Send again" in page
    client.post(f"/webhooks/deliveries/{delivery.pk}/retry/")
    delivery.refresh_from_db()
    assert delivery.status == "pending"
