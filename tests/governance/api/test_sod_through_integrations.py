"""Issue 14's reproduction of separation of duties through integrations, over the API, as it was found."""

import io

import pytest
from django.core.management import call_command

from governance.models.approvals import ApprovalRequest
from governance.models.integrations import Integration
from governance.services.approvals import approval_request_file
from tests.conftest import actor
from tests.factories import PersonFactory
from tests.factories_approvals import make_policy
from tests.factories_integrations import bearer, delegate

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_create_integration_owner_scopes_decide_requests_two_team_mates_do_not_execute_the_owners_request(
        api, personas, estate):
    """`create_integration X --owner demo-owner --scopes read,decide_requests` and two approve calls with
    X-On-Behalf-Of naming two team mates took demo-owner's own two-approval request to executed."""
    make_policy(name="Two from Payments", groups=[personas.team.group], required=2)
    mates = [PersonFactory(username=name, teams=[personas.team]) for name in ("carl.teammate", "dora.teammate")]
    request = approval_request_file(actor=actor(personas.owner), action="retirement", target=estate["workflow"],
                                    payload={}, justification="Replaced by the batch platform")
    out = io.StringIO()
    call_command("create_integration", "X", owner=personas.owner.username, scopes="read,decide_requests",
                 stdout=out, stderr=io.StringIO())
    token = out.getvalue().strip()
    url = f"/api/v1/approval-requests/{request.pk}/approve/"

    # team membership alone is not consent: the header is refused
    for mate in mates:
        response = api.post(url, {}, format="json", **bearer(token, mate.username))
        assert response.status_code == 403 and "delegated" in response.json()["message"]
    # even with their consent, a decision through the owner's integration counts as the owner's
    for mate in mates:
        delegate(mate, Integration.objects.get(name="X"))
        response = api.post(url, {}, format="json", **bearer(token, mate.username))
        assert response.status_code == 403 and "integration's owner" in response.json()["message"]
    request.refresh_from_db()
    assert request.status == "pending" and not request.decisions.exists()

    # the team mates themselves may approve it
    for mate in mates:
        api.force_login(mate)
        assert api.post(url, {}, format="json").status_code == 200
    assert ApprovalRequest.objects.get(pk=request.pk).status == "executed"


def test_a_request_filed_through_an_integration_is_not_approved_by_its_owner(api, personas, estate):
    """The owner of the filing integration counts as a requester: she cannot approve it, directly or through
    another integration of hers."""
    make_policy(name="Platform", groups=[personas.other_team.group, personas.team.group])
    carl = PersonFactory(username="carl.teammate", teams=[personas.team])
    out = io.StringIO()
    call_command("create_integration", "jira", owner=personas.approver.username,
                 scopes="read,file_requests", stdout=out, stderr=io.StringIO())
    delegate(carl, Integration.objects.get(name="jira"))
    filed = api.post("/api/v1/approval-requests/", {
        "action": "retirement", "target_type": "governance.workflow", "target_id": estate["workflow"].pk,
        "justification": "Carl asks from the ticket"}, format="json", **bearer(out.getvalue().strip(), carl.username))
    assert filed.status_code == 201, filed.json()
    request = ApprovalRequest.objects.get(pk=filed.json()["id"])
    assert request.requested_by == carl and request.filed_by_integration_owner == personas.approver
    api.force_login(personas.approver)
    response = api.post(f"/api/v1/approval-requests/{request.pk}/approve/", {}, format="json")
    assert response.status_code == 403 and "filed this request" in response.json()["message"]
