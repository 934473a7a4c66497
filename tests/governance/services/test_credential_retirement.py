"""Retiring a credential (an attestation "revoke" answer, or a request from its page) revokes it with proof."""

import pytest

from governance.audit import Actor
from governance.models.approvals import ApprovalPolicy
from governance.models.lifecycle import CredentialRevocation
from governance.services import approvals

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def policy(personas):
    policy = ApprovalPolicy.objects.create(name="Retirements", default_for_actions=["retirement"])
    policy.approver_groups.add(personas.other_team.group)
    return policy


def test_an_approved_credential_retirement_starts_its_revocation(personas, estate, policy,
                                                                 django_capture_on_commit_callbacks):
    credential = estate["credential"]
    request = approvals.approval_request_file(
        actor=Actor.for_user(personas.owner), action="retirement", target=credential, payload={},
        justification="The pipeline moved to OIDC; this key is no longer needed.")
    with django_capture_on_commit_callbacks():
        approvals.approval_request_approve(actor=Actor.for_user(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == "executed", request.failure_reason
    revocation = CredentialRevocation.objects.get(credential=credential)
    assert revocation.reason == "manual"


def test_a_revoked_credential_cannot_be_retired_again(personas, estate, policy):
    from django.core.exceptions import ValidationError

    type(estate["credential"]).objects.filter(pk=estate["credential"].pk).update(status="revoked")
    estate["credential"].refresh_from_db()
    with pytest.raises(ValidationError, match="already revoked"):
        approvals.approval_request_file(actor=Actor.for_user(personas.owner), action="retirement",
                                        target=estate["credential"], payload={}, justification="again")
