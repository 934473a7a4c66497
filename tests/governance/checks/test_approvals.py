"""approval-sod: privileged credentials trace to an executed request approved by someone else, that
proposed exactly their current privilege level and scopes."""

import datetime as dt

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from governance.choices import PrivilegeLevel
from governance.models import Binding, Credential, System
from tests.factories import CredentialFactory, PersonFactory, WorkflowFactory
from tests.factories_checks import evaluated, evidence, failing

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _request(*, action, credential, requester, status="executed", approvers=(), decision="approve", payload=None,
             filed_by_integration_owner=None, integration_owner=None):
    """A request as the approvals engine stores it; by default it proposed the credential's current state."""
    ApprovalPolicy = apps.get_model("governance", "ApprovalPolicy")
    ApprovalRequest = apps.get_model("governance", "ApprovalRequest")
    ApprovalDecision = apps.get_model("governance", "ApprovalDecision")
    policy, _ = ApprovalPolicy.objects.get_or_create(name="default")
    credential_type = ContentType.objects.get_for_model(Credential)
    system_type = ContentType.objects.get_for_model(System)
    target = ((credential_type, str(credential.pk)) if action == "privileged_scope_change"
              else (system_type, str(credential.system_id)))
    request = ApprovalRequest.objects.create(
        action=action, status=status, policy=policy, target_content_type=target[0], target_object_id=target[1],
        result_content_type=credential_type if action == "provision_credential" else None,
        result_object_id=str(credential.pk) if action == "provision_credential" else "",
        payload=payload if payload is not None else {"privilege_level": credential.privilege_level,
                                                     "scopes": list(credential.scopes)},
        filed_by_integration_id=4242 if filed_by_integration_owner else None,
        filed_by_integration_owner=filed_by_integration_owner,
        requested_by=requester, justification="needed for deploys", created_at=NOW - dt.timedelta(days=2),
        expires_at=NOW + dt.timedelta(days=1), decided_at=None if status == "pending" else NOW,
        executed_at=NOW if status in ("executed", "failed") else None,
        failure_reason="boom" if status == "failed" else "")
    for approver in approvers:
        ApprovalDecision.objects.create(request=request, approver=approver, decision=decision, decided_at=NOW,
                                        comment="" if decision == "approve" else "no",
                                        on_behalf_integration_id=4243 if integration_owner else None,
                                        integration_owner=integration_owner)
    return request


@pytest.fixture
def people():
    return PersonFactory(username="requester"), PersonFactory(username="second-pair-of-eyes")


@pytest.mark.embedded
def test_admin_credential_without_an_approval_fails(people):
    admin = CredentialFactory(privilege_level=PrivilegeLevel.ADMIN)
    reader = CredentialFactory(privilege_level=PrivilegeLevel.READ)
    assert failing("approval-sod") == {admin.pk}
    assert reader.pk not in evaluated("approval-sod")
    assert evidence("approval-sod", admin) == {"privilege_level": "admin",
                                                "privileged_reason": "admin privilege level"}


@pytest.mark.embedded
def test_provisioning_approved_by_someone_else_passes(people):
    requester, approver = people
    admin = CredentialFactory(privilege_level=PrivilegeLevel.ADMIN)
    _request(action="provision_credential", credential=admin, requester=requester, approvers=[approver])
    assert admin.pk in evaluated("approval-sod") and failing("approval-sod") == set()


def test_privileged_scope_change_targeting_the_credential_passes(people):
    requester, approver = people
    admin = CredentialFactory(privilege_level=PrivilegeLevel.ADMIN)
    _request(action="privileged_scope_change", credential=admin, requester=requester, approvers=[approver])
    assert failing("approval-sod") == set()


@pytest.mark.parametrize("case", ["self-approved", "rejected", "not-executed", "no-decision", "other-credential"])
def test_requests_that_do_not_show_separation_of_duties_do_not_count(people, case):
    requester, approver = people
    admin = CredentialFactory(privilege_level=PrivilegeLevel.ADMIN)
    other = CredentialFactory(privilege_level=PrivilegeLevel.READ)
    kwargs = {"action": "provision_credential", "credential": admin, "requester": requester,
              "approvers": [approver]}
    if case == "self-approved":
        kwargs["approvers"] = [requester]
    elif case == "rejected":
        kwargs["decision"] = "reject"
    elif case == "not-executed":
        kwargs["status"] = "approved"
    elif case == "no-decision":
        kwargs["approvers"] = []
    else:
        kwargs["credential"] = other
    _request(**kwargs)
    assert admin.pk in failing("approval-sod")


@pytest.mark.embedded
def test_approval_sod_check_with_a_stale_old_request(people):
    """Reproduction: an old executed scope change (write, deploy:write) was approved; the owner later set
    admin and "*" directly. The old request no longer covers the credential's privilege."""
    requester, approver = people
    credential = CredentialFactory(privilege_level=PrivilegeLevel.WRITE, scopes=["deploy:write"])
    _request(action="privileged_scope_change", credential=credential, requester=requester, approvers=[approver])
    Credential.objects.filter(pk=credential.pk).update(privilege_level=PrivilegeLevel.ADMIN, scopes=["*"])
    assert credential.pk in failing("approval-sod")
    # the same scopes in the same privilege level as approved pass again
    Credential.objects.filter(pk=credential.pk).update(privilege_level=PrivilegeLevel.WRITE, scopes=["deploy:write"])
    Binding.objects.create(workflow=WorkflowFactory(can_rotate=True), credential=credential, purpose="rotate")
    assert credential.pk in evaluated("approval-sod") and credential.pk not in failing("approval-sod")


@pytest.mark.parametrize("field", ["privilege_level", "scopes"])
def test_a_request_for_another_privilege_or_other_scopes_does_not_count(people, field):
    requester, approver = people
    admin = CredentialFactory(privilege_level=PrivilegeLevel.ADMIN, scopes=["deploy:admin"])
    payload = {"privilege_level": "admin", "scopes": ["deploy:admin"]}
    payload[field] = "write" if field == "privilege_level" else ["deploy:admin", "billing:admin"]
    _request(action="provision_credential", credential=admin, requester=requester, approvers=[approver],
             payload=payload)
    assert admin.pk in failing("approval-sod")


@pytest.mark.parametrize("case", ["approved-through-the-requesters-integration",
                                  "approved-by-the-owner-of-the-filing-integration",
                                  "approved-through-the-filing-integration-owners-other-integration"])
def test_approvals_that_count_for_a_requester_through_an_integration_do_not_count(people, case):
    requester, approver = people
    integration_owner = PersonFactory(username="bot-owner")
    admin = CredentialFactory(privilege_level=PrivilegeLevel.ADMIN)
    if case == "approved-through-the-requesters-integration":
        _request(action="privileged_scope_change", credential=admin, requester=requester, approvers=[approver],
                 integration_owner=requester)
    elif case == "approved-by-the-owner-of-the-filing-integration":
        _request(action="privileged_scope_change", credential=admin, requester=requester,
                 approvers=[integration_owner], filed_by_integration_owner=integration_owner)
    else:
        _request(action="privileged_scope_change", credential=admin, requester=requester, approvers=[approver],
                 filed_by_integration_owner=integration_owner, integration_owner=integration_owner)
    assert admin.pk in failing("approval-sod")


def test_write_credentials_used_by_privileged_automation_are_evaluated(people):
    rotator = WorkflowFactory(can_rotate=True)
    plain = WorkflowFactory()
    privileged_write = CredentialFactory(privilege_level=PrivilegeLevel.WRITE)
    plain_write = CredentialFactory(privilege_level=PrivilegeLevel.WRITE)
    Binding.objects.create(workflow=rotator, credential=privileged_write, purpose="rotate")
    Binding.objects.create(workflow=plain, credential=plain_write, purpose="deploy")
    assert failing("approval-sod") == {privileged_write.pk}
    assert plain_write.pk not in evaluated("approval-sod")
    assert evidence("approval-sod", privileged_write)["privileged_reason"] == (
        "write privilege used by privileged automation")

