"""The approver context panel (#19, 7) on every approval request page, in a constant number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.connectors.scopes import destructive_reason
from governance.models import Binding
from governance.models.checks import Check
from governance.services import approvals
from tests.conftest import actor
from tests.factories import CredentialFactory
from tests.factories_approvals import A, file_request, make_policy
from tests.factories_checks import FindingFactory, load_catalogue

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def policy(personas):
    load_catalogue()
    return make_policy(groups=[personas.other_team.group])


def _scope_change(personas, estate, scopes):
    credential = estate["credential"]
    credential.scopes = ["deploy:read", "SELECT ON TABLE app.orders"]
    credential.save(update_fields=["scopes"])
    return approvals.approval_request_file(
        actor=actor(personas.owner), action=A.PRIVILEGED_SCOPE_CHANGE, target=credential,
        payload={"scopes": scopes, "privilege_level": "admin"}, justification="Cleanup job")


def test_panel_shows_criticality_findings_blast_radius_scopes_and_recent_requests(client, personas, estate,
                                                                                  policy):
    credential = estate["credential"]
    FindingFactory.for_object(credential, code="rotation-age")
    FindingFactory.for_object(credential, code="secret-in-vault")
    earlier = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    request = _scope_change(personas, estate, ["deploy:read", "DELETE ON TABLE app.orders", "+@all"])
    client.force_login(personas.approver)
    page = client.get(reverse("approval-detail", args=[request.pk])).content.decode()
    body = page[page.index("Before you decide"):page.index("Proposed change")]  # the panel
    assert credential.system.get_criticality_display().lower() in body
    for code in ("rotation-age", "secret-in-vault"):
        assert f"1 {Check.objects.get(code=code).severity}" in body
    assert "is used by 1 workflow" in body
    assert "DELETE ON TABLE app.orders" in body and "2 destructive scopes" in body
    assert "<s>removed</s>" in body  # SELECT ON TABLE app.orders goes
    assert f"#{earlier.pk}" in body  # the requester's recent requests


def test_destructive_scopes_are_flagged_and_ordinary_ones_are_not():
    for scope in ("DROP ON TABLE x", "TRUNCATE ON TABLE app.orders", "ALTER", "SUPERUSER", "+@all", "~*",
                  "allkeys", "+flushall", "iam:*", "s3:DeleteObject"):
        assert destructive_reason(scope), scope
    for scope in ("SELECT ON TABLE app.orders", "+get", "~orders:*", "repo:read", "deploy:write", "+config|get"):
        assert not destructive_reason(scope), scope


def test_workflow_request_panel_has_a_constant_number_of_queries(client, personas, estate, policy,
                                                                 django_assert_max_num_queries):
    request = file_request(actor(personas.owner), A.PROVISION_CREDENTIAL, estate, personas)
    client.force_login(personas.approver)
    url = reverse("approval-detail", args=[request.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    workflow = estate["workflow"]
    for n in range(8):  # many more bindings, findings and requests: the same number of queries
        credential = CredentialFactory(name=f"more-{n}", system=estate["system"], owner=personas.owner,
                                       team=personas.team)
        Binding.objects.create(workflow=workflow, credential=credential, purpose="deploy")
        FindingFactory.for_object(credential, code="rotation-age")
    file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get(url).content.decode()
    severity = Check.objects.get(code="rotation-age").severity
    panel = body[body.index("Before you decide"):body.index("Proposed change")]
    assert "touches 9 credentials" in panel and f"8 {severity}" in panel, panel
