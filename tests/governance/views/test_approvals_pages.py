"""The approval pages: the queue, the requester's view, decisions by POST, new-request forms, policies."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.models import AuditEvent, Credential, System
from governance.models.approvals import ApprovalPolicy, ApprovalRequest, ApprovalStatus
from governance.services import approvals
from tests.conftest import actor
from tests.factories import PersonFactory, SecretStoreFactory, WorkflowFactory
from tests.factories_approvals import A, file_request, make_policy

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def policy(personas):
    return make_policy(groups=[personas.other_team.group])


@pytest.fixture
def provision(personas, estate, policy):
    return approvals.approval_request_file(
        actor=actor(personas.owner), action=A.PROVISION_CREDENTIAL, target=estate["workflow"],
        payload=_provision_payload(estate), justification="The deploy job needs its own key",
        ticket={"system": "Jira", "key": "SEC-88", "url": "https://jira.example.com/browse/SEC-88"})


def _provision_payload(estate, n: int = 1):
    store = SecretStoreFactory(name=f"openbao-pages-{n}")
    return {"name": f"deploy-key-{n}", "kind": "api_key", "system": estate["system"].pk, "identifier": f"AKID-{n}",
            "store": store.pk, "store_path": f"secret/data/payments/deploy-{n}", "scopes": ["deploy:write"],
            "privilege_level": "write", "purpose": "deploy"}


def messages_of(response):
    return [str(m) for m in response.wsgi_request._messages]


def test_queue_lists_what_waits_for_me_oldest_first(client, personas, estate, policy):
    older = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    newer = file_request(actor(personas.owner), A.OWNERSHIP_TRANSFER, estate, personas)
    client.force_login(personas.approver)
    response = client.get(reverse("approval-queue"))
    assert response.status_code == 200
    assert [row.pk for row, reason in response.context["rows"]] == [older.pk, newer.pk]
    assert all(reason is None for _, reason in response.context["rows"])
    assert b"Review and decide" in response.content
    filtered = client.get(reverse("approval-queue"), {"action": A.OWNERSHIP_TRANSFER})
    assert [row.pk for row, _ in filtered.context["rows"]] == [newer.pk]
    client.force_login(personas.owner)  # the requester is in no approver group: her queue is empty
    assert client.get(reverse("approval-queue")).context["rows"] == []
    mine = client.get(reverse("approval-mine"))
    assert {row.pk for row, _ in mine.context["rows"]} == {older.pk, newer.pk}


def test_queue_explains_why_i_cannot_act(client, personas, estate, policy):
    personas.backup_owner.groups.add(personas.other_team.group)
    request = file_request(actor(personas.backup_owner), A.RETIREMENT, estate, personas)
    client.force_login(personas.backup_owner)
    rows = client.get(reverse("approval-queue")).context["rows"]
    assert [(row.pk, reason) for row, reason in rows] == [(request.pk, "You filed this request: someone else "
                                                                       "must decide it.")]


def test_queue_queries_do_not_grow_with_rows(client, personas, estate, policy):
    client.force_login(personas.approver)
    for _ in range(2):
        file_request(actor(personas.owner), A.PROVISION_CREDENTIAL, estate, personas)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("approval-queue"))
    for _ in range(4):
        file_request(actor(personas.owner), A.PROVISION_CREDENTIAL, estate, personas)
    with CaptureQueriesContext(connection) as more:
        assert len(client.get(reverse("approval-queue")).context["rows"]) == 6
    assert len(more.captured_queries) == len(few.captured_queries)


def test_detail_shows_diff_ticket_and_why_the_requester_cannot_act(client, personas, provision):
    client.force_login(personas.owner)
    response = client.get(reverse("approval-detail", args=[provision.pk]))
    assert response.status_code == 200
    labels = {row.label: row for row in response.context["diff"]}
    assert labels["Identifier"].before is None and labels["Identifier"].after == "AKID-1"
    assert labels["System"].after == "payments-db" and labels["Kind"].after == "API key"
    body = response.content.decode()
    assert "https://jira.example.com/browse/SEC-88" in body and "The deploy job needs its own key" in body
    assert "You filed this request" in body and "Cancel my request" in body
    assert reverse("approval-approve", args=[provision.pk]) not in body


def test_approver_approves_and_the_change_is_applied(client, personas, estate, provision):
    client.force_login(personas.approver)
    page = client.get(reverse("approval-detail", args=[provision.pk]))
    assert reverse("approval-approve", args=[provision.pk]) in page.content.decode()
    response = client.post(reverse("approval-approve", args=[provision.pk]), {"comment": "fine"})
    assert response.status_code == 302 and "it is executed" in messages_of(response)[0]
    provision.refresh_from_db()
    assert provision.status == ApprovalStatus.EXECUTED
    assert Credential.objects.filter(identifier="AKID-1").exists()
    client.force_login(personas.owner)
    history = client.get(reverse("workflow-detail", args=[estate["workflow"].pk]), {"tab": "history"})
    assert "approval.approve" in history.content.decode() and "approval.execute" in history.content.decode()


def test_a_late_decision_answers_already_decided(client, personas, provision):
    colleague = PersonFactory(username="carl.colleague", teams=[personas.other_team])
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=provision.pk)
    client.force_login(colleague)
    response = client.post(reverse("approval-reject", args=[provision.pk]), {"reason": "too late"})
    assert response.status_code == 302
    assert "already decided" in messages_of(response)[0]
    provision.refresh_from_db()
    assert provision.status == ApprovalStatus.EXECUTED


def test_reject_needs_a_reason_and_cancel_is_the_requesters(client, personas, provision):
    client.force_login(personas.approver)
    response = client.post(reverse("approval-reject", args=[provision.pk]), {"reason": ""})
    assert response.status_code == 302 and "Say why you reject" in messages_of(response)[-1]
    provision.refresh_from_db()
    assert provision.status == ApprovalStatus.PENDING
    response = client.post(reverse("approval-cancel", args=[provision.pk]))
    assert "Only the requester" in messages_of(response)[-1]
    client.force_login(personas.owner)
    client.post(reverse("approval-cancel", args=[provision.pk]))
    provision.refresh_from_db()
    assert provision.status == ApprovalStatus.CANCELLED


def test_decide_posts_from_outsiders_find_nothing(client, personas, provision):
    client.force_login(personas.outsider)
    assert client.post(reverse("approval-approve", args=[provision.pk])).status_code == 404
    assert client.get(reverse("approval-detail", args=[provision.pk])).status_code == 404


def test_request_a_new_credential_from_the_workflow(client, personas, estate, policy):
    url = reverse("approval-new", args=[A.PROVISION_CREDENTIAL]) + f"?workflow={estate['workflow'].pk}"
    client.force_login(personas.owner)
    page = client.get(url)
    assert page.status_code == 200 and page.context["policy"] == policy
    data = {**_provision_payload(estate, 5), "scopes": "deploy:write, deploy:read", "justification": ""}
    invalid = client.post(url, data)
    assert invalid.status_code == 200 and invalid.context["meta_form"].errors["justification"]
    response = client.post(url, {**data, "justification": "Separate key per job", "ticket_key": "SEC-9"})
    request = ApprovalRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("approval-detail", args=[request.pk])
    assert request.payload["scopes"] == ["deploy:write", "deploy:read"] and request.ticket_key == "SEC-9"
    assert request.requested_by == personas.owner and request.target == estate["workflow"]
    duplicate = client.post(url, {**data, "justification": "again"})
    assert duplicate.status_code == 200 and ApprovalRequest.objects.count() == 1


def test_new_request_forms_check_the_object(client, personas, estate, policy):
    client.force_login(personas.outsider)
    base = reverse("approval-new", args=[A.PROVISION_CREDENTIAL])
    assert client.get(f"{base}?workflow={estate['workflow'].pk}").status_code == 404
    client.force_login(personas.owner)
    assert client.get(base).status_code == 404
    assert client.get(reverse("approval-new", args=["launch"])).status_code == 404
    transfer = reverse("approval-new", args=[A.OWNERSHIP_TRANSFER]) + f"?object=system:{estate['system'].pk}"
    response = client.post(transfer, {"new_owner": personas.backup_owner.pk, "justification": "Moving teams"})
    assert response.status_code == 302
    assert ApprovalRequest.objects.get().target == System.objects.get(pk=estate["system"].pk)


def test_register_a_workflow(client, personas, estate, policy):
    client.force_login(personas.owner)
    url = reverse("approval-new", args=[A.REGISTER_WORKFLOW])
    response = client.post(url, {"name": "refund-batch", "kind": "scheduled_job", "platform": "Airflow",
                                 "criticality": "high", "systems": [estate["system"].pk], "can_provision": "on",
                                 "team": personas.team.pk, "justification": "Nightly refunds"})
    assert response.status_code == 302
    request = ApprovalRequest.objects.get()
    assert request.payload["can_provision"] is True and request.payload["systems"] == [estate["system"].pk]
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == ApprovalStatus.EXECUTED and request.result.name == "refund-batch"
    client.force_login(personas.approver)
    assert "refund-batch" in client.get(reverse("approval-detail", args=[request.pk])).content.decode()


def test_security_admins_manage_policies(client, personas):
    client.force_login(personas.secadmin)
    data = {"name": "Production", "approver_groups": [personas.other_team.group.pk], "required_approvals": 2,
            "expiry_hours": 48, "reminder_before_hours": 12, "actions": [A.RETIREMENT],
            "default_for_actions": [A.RETIREMENT]}
    assert client.post(reverse("approval-policy-create"), data).status_code == 302
    policy = ApprovalPolicy.objects.get()
    response = client.post(reverse("approval-policy-edit", args=[policy.pk]), {**data, "required_approvals": 3})
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.required_approvals == 3
    invalid = client.post(reverse("approval-policy-create"), {**data, "name": "Other"})
    assert invalid.status_code == 200 and invalid.context["form"].errors["default_for_actions"]
    page = client.get(reverse("approval-policy-list"))
    assert "Production" in page.content.decode()
    assert AuditEvent.objects.filter(object_type="governance.approvalpolicy").count() == 2


def test_request_links_for_object_pages_render(personas, estate):
    from django.template.loader import render_to_string

    suspended = WorkflowFactory(name="paused", status="suspended", owner=personas.owner)
    html = render_to_string("governance/approvals/object_actions.html", {"object": suspended, "kind": "workflow"})
    assert f"provision_credential/?workflow={suspended.pk}" in html and "reactivation" in html
    html = render_to_string("governance/approvals/object_actions.html",
                            {"object": estate["credential"], "kind": "credential"})
    assert "privileged_scope_change" in html and "retirement/?object=credential" in html  # revocation
