"""End-to-end flows through the API: a ticketing integration files a request for a person,
separation of duties applies to that person, the decision goes out as a signed webhook; tickets;
tokens and secrets shown once."""

import pytest
from standardwebhooks.webhooks import Webhook

from governance.models import AuditEvent, Credential
from governance.models.approvals import ApprovalRequest
from governance.models.integrations import IntegrationToken, WebhookEndpoint
from governance.services import webhooks as webhook_services
from tests.factories_approvals import make_policy
from tests.factories_integrations import bearer, make_endpoint, make_integration
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(personas):
    return make_policy(name="Standard", groups=[personas.other_team.group, personas.team.group])


def file_transfer(api, token, estate, personas, on_behalf_of=None, key="t-1"):
    return api.post("/api/v1/approval-requests/", {
        "action": "ownership_transfer", "target_type": "governance.credential", "target_id": estate["credential"].pk,
        "payload": {"new_owner": personas.backup_owner.pk}, "justification": "Olivia moves to Platform",
        "ticket": {"system": "jira", "key": "SEC-42", "url": "https://jira.example.test/browse/SEC-42"},
    }, format="json", HTTP_IDEMPOTENCY_KEY=key, **bearer(token, on_behalf_of))


@pytest.mark.embedded
def test_integration_files_for_a_person_and_separation_of_duties_applies_to_that_person(api, personas, estate,
                                                                                        policy):
    jira, token = make_integration(owner=personas.owner, scopes=["read", "file_requests", "decide_requests"],
                                   name="jira", delegated_by=[personas.approver])
    filed = file_transfer(api, token, estate, personas)
    assert filed.status_code == 201, filed.json()
    body = filed.json()
    request = ApprovalRequest.objects.get(pk=body["id"])
    # both the integration and the person it acts for are recorded
    assert request.requested_by == personas.owner and request.filed_by_integration_id == jira.pk
    assert body["filed_by_label"] == "integration:jira" and body["ticket_key"] == "SEC-42"
    event = AuditEvent.objects.filter(action="approval.file").get()
    assert (event.actor_kind, event.actor_id, event.on_behalf_of_id) == ("integration", jira.pk, personas.owner.pk)
    # the integration acting for the requester may not approve: the requester never approves her own
    own = api.post(f"/api/v1/approval-requests/{request.pk}/approve/", {}, format="json", **bearer(token))
    assert own.status_code == 403
    # the integration that filed it does not decide it either, whoever it acts for
    same = api.post(f"/api/v1/approval-requests/{request.pk}/approve/", {}, format="json",
                    **bearer(token, personas.approver.username))
    assert same.status_code == 403
    # another integration, acting for a person in the approvers' queue, may
    chatops, chatops_token = make_integration(owner=personas.approver, scopes=["read", "decide_requests"],
                                              name="chatops")
    other = api.post(f"/api/v1/approval-requests/{request.pk}/approve/", {"comment": "ok"}, format="json",
                     **bearer(chatops_token))
    assert other.status_code == 200, other.json()
    decision = other.json()["decisions"][0]
    assert decision["approver"] == personas.approver.pk and decision["on_behalf_integration_id"] == chatops.pk
    assert other.json()["status"] in ("approved", "executed")


def test_scopes_bound_what_an_integration_may_do(api, personas, estate, policy):
    _, reader = make_integration(owner=personas.owner, scopes=["read"], name="reader")
    refused = file_transfer(api, reader, estate, personas)
    assert refused.status_code == 403 and "file_requests" in refused.json()["message"]
    _, filer = make_integration(owner=personas.owner, scopes=["read", "file_requests"], name="filer")
    request_id = file_transfer(api, filer, estate, personas).json()["id"]
    cannot_decide = api.post(f"/api/v1/approval-requests/{request_id}/reject/", {"reason": "no"}, format="json",
                             **bearer(filer))
    assert cannot_decide.status_code == 403
    cancelled = api.post(f"/api/v1/approval-requests/{request_id}/cancel/", {}, format="json", **bearer(filer))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_ticket_references_are_set_through_the_api(api, personas, estate, policy):
    _, token = make_integration(owner=personas.owner, scopes=["read", "file_requests"], name="snow")
    request_id = file_transfer(api, token, estate, personas).json()["id"]
    response = api.post(f"/api/v1/approval-requests/{request_id}/ticket/",
                        {"system": "servicenow", "key": "CHG0031337", "url": "https://snow.example.test/CHG0031337"},
                        format="json", **bearer(token))
    assert response.status_code == 200 and response.json()["ticket_key"] == "CHG0031337"
    assert AuditEvent.objects.filter(action="ticket.link").exists()
    bad = api.post(f"/api/v1/approval-requests/{request_id}/ticket/", {"system": "jira", "key": "X", "url": "nope"},
                   format="json", **bearer(token))
    assert bad.status_code == 400 and "url" in bad.json()["fields"]


def test_decision_goes_out_as_a_signed_webhook_that_updates_the_ticket(api, personas, estate, policy, settings):
    """The documented Jira flow (docs/integrations.md), with the receiver standing in for Jira."""
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    _, token = make_integration(owner=personas.owner, scopes=["read", "file_requests"], name="jira-flow")
    with Receiver() as receiver:
        _, secret = make_endpoint(owner=personas.owner, url=receiver.url, event_types=["approval_request.decided"])
        request_id = file_transfer(api, token, estate, personas).json()["id"]
        # the approvals capability emits this when a request is decided; emitted here as it would be
        deliveries = webhook_services.webhook_event_emit(
            event_type="approval_request.decided",
            payload={"id": request_id, "status": "approved", "ticket": {"system": "jira", "key": "SEC-42"}})
        webhook_services.webhook_delivery_attempt(delivery_id=deliveries[0].pk)
    (got,) = receiver.received
    event = Webhook(secret).verify(got.body, got.headers)
    assert event["data"]["ticket"]["key"] == "SEC-42" and event["type"] == "approval_request.decided"


def test_integration_and_webhook_secrets_are_shown_once(api, personas, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    api.force_login(personas.secadmin)
    created = api.post("/api/v1/integrations/", {"name": "gitlab", "owner": personas.owner.pk,
                                                 "scopes": ["read"]}, format="json")
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith(created.json()["token_prefix"])
    shown = api.get(f"/api/v1/integrations/{created.json()['id']}/").json()
    assert "token" not in shown and token not in str(shown)
    assert Credential.objects.filter(identifier=created.json()["token_prefix"]).exists()
    assert IntegrationToken.objects.get(prefix=created.json()["token_prefix"]).token_hash != token

    endpoint = api.post("/api/v1/webhook-endpoints/", {"name": "siem", "url": "http://127.0.0.1:9/siem",
                                                       "event_types": ["kill_switch.activated"],
                                                       "owner": personas.owner.pk}, format="json")
    assert endpoint.status_code == 201 and endpoint.json()["secret"].startswith("whsec_")
    again = api.get(f"/api/v1/webhook-endpoints/{endpoint.json()['id']}/").json()
    assert "secret" not in again
    refused = api.post("/api/v1/webhook-endpoints/", {"name": "evil", "url": "http://169.254.169.254/",
                                                      "event_types": ["finding.opened"],
                                                      "owner": personas.owner.pk}, format="json")
    assert refused.status_code == 400 and "url" in refused.json()["fields"]
    assert not WebhookEndpoint.objects.filter(name="evil").exists()


def test_deliveries_and_attempts_are_visible_with_their_responses(api, personas, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with Receiver(statuses=[500]) as receiver:
        make_endpoint(owner=personas.owner, team=personas.team, url=receiver.url, event_types=["finding.opened"])
        (delivery,) = webhook_services.webhook_event_emit(event_type="finding.opened", payload={"finding": 1})
        webhook_services.webhook_delivery_attempt(delivery_id=delivery.pk)
    api.force_login(personas.backup_owner)  # the endpoint's team may look
    body = api.get(f"/api/v1/webhook-deliveries/{delivery.pk}/").json()
    assert body["status"] == "pending" and body["attempts"][0]["response_status"] == 500
    assert body["attempts"][0]["outcome"] == "retry" and body["attempts"][0]["response_body"] == "answer 500"
    api.force_login(personas.outsider)
    assert api.get(f"/api/v1/webhook-deliveries/{delivery.pk}/").status_code == 404
