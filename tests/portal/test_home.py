"""The home page shows each role what to look at first."""

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.django_db]


def test_owner_sees_the_governance_status_of_their_workflows(client, personas, estate):
    client.force_login(personas.owner)
    body = client.get(reverse("home")).content.decode()
    assert "My workflows" in body and "payments-deploy" in body
    assert "Open findings" in body and "Attestations due" in body
    assert "Waiting for your decision" not in body and "Estate" not in body


def test_auditor_sees_posture_and_reports_not_owner_sections(client, personas, estate):
    client.force_login(personas.auditor)
    body = client.get(reverse("home")).content.decode()
    assert "Posture per framework" in body and "Evidence reports" in body
    assert "My workflows" not in body


def test_security_admin_sees_the_estate_and_the_kill_switch(client, personas, estate):
    client.force_login(personas.secadmin)
    body = client.get(reverse("home")).content.decode()
    assert "Estate" in body and "kill switch" in body.lower()


def test_approver_sees_the_queue_with_the_oldest_wait(client, personas, estate):
    from governance.audit import Actor
    from governance.models.approvals import ApprovalPolicy
    from governance.services.approvals import approval_request_file

    policy = ApprovalPolicy.objects.create(name="infra", required_approvals=1, expiry_hours=72,
                                           actions=["privileged_scope_change"],
                                           default_for_actions=["privileged_scope_change"])
    policy.approver_groups.add(personas.other_team.group)
    approval_request_file(actor=Actor.for_user(personas.owner), action="privileged_scope_change",
                          target=estate["credential"], payload={"scopes": ["repo:read"], "privilege_level": "read"},
                          justification="least privilege")
    client.force_login(personas.approver)
    body = client.get(reverse("home")).content.decode()
    assert "Waiting for your decision" in body and "Oldest has waited" in body


def test_the_queue_on_the_home_page_leaves_out_requests_the_person_filed(client, personas, estate):
    from governance.audit import Actor
    from governance.models.approvals import ApprovalPolicy
    from governance.services.approvals import approval_request_file

    policy = ApprovalPolicy.objects.create(name="payments", required_approvals=1, expiry_hours=72,
                                           default_for_actions=["privileged_scope_change"])
    policy.approver_groups.add(personas.team.group)
    approval_request_file(actor=Actor.for_user(personas.owner), action="privileged_scope_change",
                          target=estate["credential"], payload={"scopes": ["repo:read"], "privilege_level": "read"},
                          justification="least privilege")
    client.force_login(personas.owner)
    body = client.get(reverse("home")).content.decode()
    assert "Your queue is empty" in body and "Oldest has waited" not in body


def test_owner_home_counts_unmanaged_credentials_and_names_the_first_three(client, personas, estate):
    """The home's record comes from counts (no binding rows): the same words as the workflow's own page."""
    from governance.choices import SecretStoreKind
    from governance.models import Binding
    from tests.factories import CredentialFactory, SecretStoreFactory

    ci = SecretStoreFactory(kind=SecretStoreKind.CICD_VARIABLE)
    for name in ("delta-token", "alpha-token", "charlie-token", "bravo-token"):
        Binding.objects.create(workflow=estate["workflow"], purpose="deploy", credential=CredentialFactory(
            name=name, store=ci, owner=personas.owner, team=personas.team))
    expected = "4 credential(s) outside a managed store: alpha-token, bravo-token, charlie-token."
    client.force_login(personas.owner)
    body = client.get(reverse("home")).content.decode()
    assert expected in body and "delta-token" not in body[body.index("My workflows"):body.index(expected)]
    assert expected in client.get(reverse("workflow-detail", args=[estate["workflow"].pk])).content.decode()


def test_owner_home_counts_only_the_findings_the_owner_may_see(client, personas, estate):
    """A finding still recorded with me as owner, whose object went to another team, is neither listed nor
    counted: the count rides on the visible rows."""
    from tests.factories import CredentialFactory
    from tests.factories_checks import FindingFactory, load_catalogue

    load_catalogue()
    FindingFactory.for_object(estate["credential"])
    FindingFactory.for_object(CredentialFactory(owner=personas.owner, team=personas.team))
    stale = FindingFactory.for_object(estate["other_credential"])
    stale.owner = personas.owner
    stale.save()
    client.force_login(personas.owner)
    response = client.get(reverse("home"))
    owner = response.context["owner"]
    assert owner["finding_count"] == 2
    assert stale.pk not in {f.pk for f in owner["findings"]}
