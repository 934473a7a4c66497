"""Detail pages have tabs (overview, related objects, findings, requests, history); counts on the tabs
say what needs attention, and each tab shows only what the user may see."""

import pytest
from django.urls import reverse

from governance.audit import Actor
from governance.models.approvals import ApprovalAction
from governance.models.checks import FindingState
from tests.factories_checks import FindingFactory, load_catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalogue(db):
    load_catalogue()


def _tabs(response) -> dict[str, int | None]:
    return {t["key"]: t.get("count") for t in response.context["tabs"]}


@pytest.mark.embedded
def test_a_workflow_page_shows_the_findings_and_requests_of_its_credentials(client, personas, estate):
    from governance.services import approvals
    from tests.factories_approvals import make_policy, payload_for

    workflow, credential = estate["workflow"], estate["credential"]
    on_credential = FindingFactory.for_object(credential, code="rotation-age")
    resolved = FindingFactory.for_object(workflow, code="owner-active")
    resolved.state, resolved.resolved_at = FindingState.RESOLVED, resolved.last_seen_at
    resolved.save()
    elsewhere = FindingFactory.for_object(estate["other_credential"], code="rotation-age")
    make_policy(groups=[personas.other_team.group])
    target, payload = payload_for(ApprovalAction.PRIVILEGED_SCOPE_CHANGE, estate, personas)
    request = approvals.approval_request_file(actor=Actor.for_user(personas.owner),
                                              action=ApprovalAction.PRIVILEGED_SCOPE_CHANGE, target=target,
                                              payload=payload, justification="Needs to manage releases.")
    client.force_login(personas.owner)
    url = reverse("workflow-detail", args=[workflow.pk])

    overview = client.get(url)
    assert _tabs(overview) == {"overview": None, "related": None, "findings": 1, "requests": 1, "history": None}
    assert 'aria-current="page">Overview' in overview.content.decode()

    findings = client.get(url, {"tab": "findings"})
    assert [f.pk for f in findings.context["findings"]] == [on_credential.pk, resolved.pk]  # unresolved first
    assert elsewhere.pk not in [f.pk for f in findings.context["findings"]]
    assert reverse("finding-detail", args=[on_credential.pk]) in findings.content.decode()

    requests = client.get(url, {"tab": "requests"})
    assert [r.pk for r in requests.context["requests"]] == [request.pk]
    assert f"#{request.pk}" in requests.content.decode()

    related = client.get(url, {"tab": "related"})
    assert credential.name in related.content.decode() and "Governance record" not in related.content.decode()

    assert client.get(url, {"tab": "nonsense"}).context["tab"] == "overview"


def test_tabs_show_only_what_the_user_may_see(client, personas, estate):
    """An outsider cannot open the workflow; the approver of another team sees the credential's page
    but only findings they may see."""
    workflow, credential = estate["workflow"], estate["credential"]
    FindingFactory.for_object(credential, code="rotation-age")
    client.force_login(personas.outsider)
    assert client.get(reverse("workflow-detail", args=[workflow.pk]), {"tab": "findings"}).status_code == 404
    client.force_login(personas.auditor)
    response = client.get(reverse("credential-detail", args=[credential.pk]), {"tab": "findings"})
    assert response.status_code == 200 and len(response.context["findings"]) == 1
    assert _tabs(response)["findings"] == 1


def test_a_credential_page_lists_its_workflows_on_its_own_tab(client, personas, estate):
    credential = estate["credential"]
    client.force_login(personas.owner)
    response = client.get(reverse("credential-detail", args=[credential.pk]), {"tab": "related"})
    body = response.content.decode()
    assert "Workflows using this credential" in body and estate["workflow"].name in body
    labels = [t["label"] for t in response.context["tabs"]]
    assert labels == ["Overview", "Workflows", "Findings", "Requests", "History"]
