"""The approval engine: transitions, separation of duties, N of M, execution and re-validation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import permissions
from governance.audit import Actor, verify_chain
from governance.choices import CredentialStatus, WorkflowStatus
from governance.models import AuditEvent, Binding, Credential, Workflow
from governance.models.approvals import (
    TRANSITIONS,
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStatus,
    may_transition,
)
from governance.models.integrations import Delegation
from governance.services import approvals, approvals_sweep, delegations, inventory
from tests.conftest import actor
from tests.factories import PersonFactory, WorkflowFactory
from tests.factories_approvals import (
    A,
    file_request,
    integration_actor,
    make_policy,
    payload_for,
    risk_acceptance_available,
    risk_finding,
)

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
S = ApprovalStatus
TARGETED = [a for a in (A.PROVISION_CREDENTIAL, A.PRIVILEGED_SCOPE_CHANGE, A.OWNERSHIP_TRANSFER, A.REACTIVATION,
                        A.RETIREMENT)]
ACTIONS = [*TARGETED, A.REGISTER_WORKFLOW]
SOD_ACTIONS = [*ACTIONS, *([A.RISK_ACCEPTANCE] if risk_acceptance_available() else [])]


@pytest.fixture
def policy(personas):
    return make_policy(groups=[personas.other_team.group])


def approval_events(request):
    return AuditEvent.objects.filter(changes__approval_request__after=request.pk).order_by("sequence")


# The state machine


def test_transition_table_is_complete_and_terminal_states_are_final():
    assert set(TRANSITIONS) == set(S.values)
    assert TRANSITIONS[S.PENDING] == {S.APPROVED, S.REJECTED, S.EXPIRED, S.CANCELLED}
    assert TRANSITIONS[S.APPROVED] == {S.EXECUTED, S.FAILED}
    for final in (S.REJECTED, S.EXPIRED, S.CANCELLED, S.EXECUTED, S.FAILED):
        assert TRANSITIONS[final] == frozenset()
    assert not may_transition(S.PENDING, S.EXECUTED) and not may_transition(S.EXECUTED, S.PENDING)


def test_undeclared_transition_is_refused(personas, estate, policy):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    with pytest.raises(RuntimeError):
        approvals.transition(request, S.PENDING, S.EXECUTED, executed_at=request.created_at)
    request.refresh_from_db()
    assert request.status == S.PENDING


def test_pending_approved_executed(personas, estate, policy, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = file_request(actor(personas.owner), A.PROVISION_CREDENTIAL, estate, personas)
    assert request.status == S.PENDING and request.policy == policy
    assert [m.to for m in mail.outbox] == [[personas.approver.email]]  # only who may decide is told
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk, comment="ok")
    request.refresh_from_db()
    assert request.status == S.EXECUTED and request.decided_at and request.executed_at
    credential = request.result
    assert isinstance(credential, Credential) and credential.identifier == request.payload["identifier"]
    # active only once its connector has created and proven it (services.provisioning, its own tests)
    assert credential.status == CredentialStatus.PROVISIONING and credential.owner == personas.owner
    assert credential.provisioning.status == "pending" and credential.provisioning.approval_request == request
    assert Binding.objects.filter(workflow=estate["workflow"], credential=credential, purpose="deploy to production")
    actions = list(approval_events(request).values_list("action", flat=True))
    assert actions == ["approval.file", "approval.approve", "approval.execute"]
    workflow_history = AuditEvent.objects.filter(object_type="governance.workflow",
                                                 object_id=str(estate["workflow"].pk))
    assert set(actions) <= set(workflow_history.values_list("action", flat=True))
    assert AuditEvent.objects.filter(action="credential.create", task_id=f"approval-{request.pk}").count() == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [personas.owner.email]
    assert "carried out" in mail.outbox[0].subject
    assert verify_chain().intact


def test_pending_rejected_needs_a_reason(personas, estate, policy, django_capture_on_commit_callbacks):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    with pytest.raises(ValidationError):
        approvals.approval_request_reject(actor=actor(personas.approver), request_id=request.pk, reason=" ")
    with django_capture_on_commit_callbacks(execute=True):
        approvals.approval_request_reject(actor=actor(personas.approver), request_id=request.pk,
                                          reason="Still used by the nightly batch")
    request.refresh_from_db()
    estate["workflow"].refresh_from_db()
    assert request.status == S.REJECTED and request.decided_at and estate["workflow"].status == WorkflowStatus.ACTIVE
    assert mail.outbox[-1].to == [personas.owner.email] and "nightly batch" in mail.outbox[-1].body
    event = approval_events(request).get(action="approval.reject")
    assert event.object_type == "governance.workflow" and event.changes["status"]["after"] == S.REJECTED


def test_pending_cancelled_by_the_requester_only(personas, estate, policy):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    with pytest.raises(PermissionDenied):
        approvals.approval_request_cancel(actor=actor(personas.approver), request_id=request.pk)
    approvals.approval_request_cancel(actor=actor(personas.owner), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == S.CANCELLED and approval_events(request).filter(action="approval.cancel").exists()


def test_integration_can_cancel_for_its_person(personas, estate, policy):
    request = file_request(integration_actor(personas.owner), A.RETIREMENT, estate, personas)
    approvals.approval_request_cancel(actor=integration_actor(personas.owner), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == S.CANCELLED


@pytest.mark.parametrize("final", [S.REJECTED, S.CANCELLED, S.EXECUTED, S.EXPIRED])
def test_decisions_on_a_decided_request_answer_already_decided(personas, estate, policy, final):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    if final == S.REJECTED:
        approvals.approval_request_reject(actor=actor(personas.approver), request_id=request.pk, reason="no")
    elif final == S.CANCELLED:
        approvals.approval_request_cancel(actor=actor(personas.owner), request_id=request.pk)
    elif final == S.EXECUTED:
        approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    else:
        approvals_sweep.approval_requests_sweep(now=request.expires_at)
    late = PersonFactory(username="late.approver", teams=[personas.other_team])
    for call in (lambda: approvals.approval_request_approve(actor=actor(late), request_id=request.pk),
                 lambda: approvals.approval_request_reject(actor=actor(late), request_id=request.pk, reason="x"),
                 lambda: approvals.approval_request_cancel(actor=actor(personas.owner), request_id=request.pk)):
        with pytest.raises(approvals.ApprovalAlreadyDecided, match="already decided"):
            call()
    request.refresh_from_db()
    assert request.status == final
    assert not ApprovalDecision.objects.filter(approver=late).exists()


def test_approving_after_the_deadline_expires_the_request(personas, estate, policy):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    ApprovalRequest.objects.filter(pk=request.pk).update(created_at=request.created_at - dt.timedelta(hours=80),
                                                         expires_at=request.created_at - dt.timedelta(hours=8))
    with pytest.raises(approvals.ApprovalAlreadyDecided, match="expired"):
        approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == S.EXPIRED and not request.decisions.exists()
    assert approval_events(request).filter(action="approval.expire").count() == 1


def test_approved_failed_records_the_reason(personas, estate, policy, django_capture_on_commit_callbacks):
    request = file_request(actor(personas.owner), A.PROVISION_CREDENTIAL, estate, personas)
    # Someone registers the same identifier on the system after the request was filed.
    inventory.credential_create(actor=actor(personas.owner), data={
        "name": "manual", "kind": "api_key", "system": estate["system"], "identifier": request.payload["identifier"]})
    with django_capture_on_commit_callbacks(execute=True):
        approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == S.FAILED and "already has a credential" in request.failure_reason
    assert request.executed_at and not request.result_object_id
    assert Credential.objects.filter(identifier=request.payload["identifier"]).count() == 1
    assert not Binding.objects.filter(credential__identifier=request.payload["identifier"]).exists()
    assert approval_events(request).filter(action="approval.fail").count() == 1
    assert "could not be carried out" in mail.outbox[-1].subject and mail.outbox[-1].to == [personas.owner.email]


# Re-validation at execution


def test_stale_target_fails_cleanly(personas, estate, policy):
    request = file_request(actor(personas.owner), A.PRIVILEGED_SCOPE_CHANGE, estate, personas)
    # A second scope change of the same credential is approved and executed first (a plain edit cannot do it).
    narrower = approvals.approval_request_file(
        actor=actor(personas.owner), action=A.PRIVILEGED_SCOPE_CHANGE, target=estate["credential"],
        payload={"scopes": ["deploy:read"], "privilege_level": "read"}, justification="Read is enough")
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=narrower.pk)
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    estate["credential"].refresh_from_db()
    assert request.status == S.FAILED and "changed since this request was filed" in request.failure_reason
    assert estate["credential"].scopes == ["deploy:read"] and estate["credential"].privilege_level == "read"


def test_target_that_no_longer_applies_fails(personas, estate, policy):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    inventory.workflow_retire(actor=actor(personas.secadmin), workflow=estate["workflow"], reason="done by hand")
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == S.FAILED and request.failure_reason


def test_register_workflow_revalidates_the_name(personas, estate, policy):
    request = file_request(actor(personas.owner), A.REGISTER_WORKFLOW, estate, personas)
    WorkflowFactory(name=request.payload["name"])
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == S.FAILED and "exists already" in request.failure_reason


def test_unchanged_target_executes_each_action(personas, estate, policy):
    for action in ACTIONS:
        request = file_request(actor(personas.owner), action, estate, personas)
        approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
        request.refresh_from_db()
        assert request.status == S.EXECUTED, (action, request.failure_reason)
    estate["system"].refresh_from_db()
    estate["workflow"].refresh_from_db()
    assert estate["system"].owner == personas.backup_owner
    assert estate["workflow"].status == WorkflowStatus.RETIRED
    new = Workflow.objects.get(name__startswith="payments-batch-")
    assert new.owner == personas.owner and new.status == WorkflowStatus.ACTIVE and new.can_provision


# Separation of duties: every action x requester, owner, approver, superuser, integration-on-behalf


def _superuser(personas, *, in_group: bool):
    root = PersonFactory(username="root.superuser", is_superuser=True, is_staff=True)
    if in_group:
        root.groups.add(personas.other_team.group)
    return root


def _with_group(person, personas):
    person.groups.add(personas.other_team.group)
    return person


def _team_mate(p):
    """Carl: in the owner's team (a team mate, neither owner nor manager) and in the approvers' group."""
    carl = PersonFactory(username="carl.teammate", teams=[p.team])
    return _with_group(carl, p)


def _ended_delegation(p, *, how: str) -> Actor:
    """The approver once delegated to the outsider's integration; the delegation expired or was revoked."""
    through = integration_actor(p.approver, name="ended-bot", owner=p.outsider)
    delegation = Delegation.objects.get(person=p.approver, integration_id=through.id)
    if how == "revoked":
        delegations.delegation_revoke(actor=actor(p.approver), delegation=delegation)
    else:
        past = timezone.now() - dt.timedelta(minutes=1)
        Delegation.objects.filter(pk=delegation.pk).update(created_at=past - dt.timedelta(days=30), expires_at=past)
    return through


SOD_CASES = {
    # case: (filer, decider, owner_may_approve, *approvers before the decider) built from personas; the policy
    # needs one approval more than the approvers before. Expected outcome per action below.
    "requester": (lambda p: actor(p.owner), lambda p: actor(_with_group(p.owner, p)), False),
    "owner": (lambda p: actor(p.backup_owner), lambda p: actor(_with_group(p.owner, p)), False),
    "owner-allowed-by-policy": (lambda p: actor(p.backup_owner), lambda p: actor(_with_group(p.owner, p)), True),
    "approver": (lambda p: actor(p.owner), lambda p: actor(p.approver), False),
    "superuser-requester": (lambda p: actor(_superuser(p, in_group=True)),
                            lambda p: actor(p.approver.__class__.objects.get(username="root.superuser")), False),
    "superuser-outside-groups": (lambda p: actor(p.owner), lambda p: actor(_superuser(p, in_group=False)), False),
    "superuser-approver": (lambda p: actor(p.owner), lambda p: actor(_superuser(p, in_group=True)), False),
    "integration-person": (lambda p: integration_actor(p.owner), lambda p: actor(_with_group(p.owner, p)), False),
    "integration-itself": (lambda p: integration_actor(p.owner),
                           lambda p: integration_actor(_with_group(p.owner, p)), False),
    "same-integration-other-person": (lambda p: integration_actor(p.owner),
                                      lambda p: integration_actor(p.approver), False),
    "approver-after-integration": (lambda p: integration_actor(p.owner), lambda p: actor(p.approver), False),
    "approver-through-another-integration": (lambda p: integration_actor(p.owner),
                                             lambda p: integration_actor(p.approver, name="cab"), False),
    # integrations count for their owner too
    "team-mate-directly": (lambda p: actor(p.owner), lambda p: actor(_team_mate(p)), False),
    "own-integration-on-behalf-of-team-mate": (
        lambda p: actor(p.owner), lambda p: integration_actor(_team_mate(p), name="owner-bot", owner=p.owner), False),
    "owners-integration-for-team-mate-on-a-team-mates-request": (
        lambda p: actor(p.backup_owner), lambda p: integration_actor(_team_mate(p), name="owner-bot", owner=p.owner),
        False),
    "integration-owner-filed-through-it-for-someone": (
        lambda p: integration_actor(_team_mate(p), name="owner-bot", owner=p.owner),
        lambda p: actor(_with_group(p.owner, p)), True),
    "second-integration-of-the-same-person": (
        lambda p: actor(p.owner), lambda p: integration_actor(p.approver, name="cab-2"), False,
        lambda p: integration_actor(_team_mate(p), name="cab", owner=p.approver)),
    "same-person-directly-after-their-integration": (
        lambda p: actor(p.owner), lambda p: actor(p.approver), False,
        lambda p: integration_actor(_team_mate(p), name="cab", owner=p.approver)),
    "two-people-through-two-integrations": (
        lambda p: actor(p.owner), lambda p: integration_actor(p.approver, name="cab-2"), False,
        lambda p: integration_actor(_team_mate(p), name="carls-bot")),
    "integration-owned-by-a-security-admin-for-the-approver": (
        lambda p: actor(p.owner), lambda p: integration_actor(p.approver, name="sec-bot", owner=p.secadmin), False),
    "security-admins-integration-on-their-own-request": (
        lambda p: actor(p.secadmin), lambda p: integration_actor(p.approver, name="sec-bot", owner=p.secadmin), False),
    "delegation-expired": (lambda p: actor(p.owner), lambda p: _ended_delegation(p, how="expired"), False),
    "delegation-revoked": (lambda p: actor(p.owner), lambda p: _ended_delegation(p, how="revoked"), False),
}
ALLOWED = {"owner-allowed-by-policy", "approver", "superuser-approver", "approver-after-integration",
           "approver-through-another-integration", "team-mate-directly", "two-people-through-two-integrations",
           "integration-owned-by-a-security-admin-for-the-approver"}


def expected(case: str, action: str) -> bool:
    if case == "owner" and action == A.REGISTER_WORKFLOW:
        return True  # a new workflow has no owner yet but its requester
    if case == "owners-integration-for-team-mate-on-a-team-mates-request" and action == A.REGISTER_WORKFLOW:
        return True  # the same: no owner, and the integration's owner is not the requester
    return case in ALLOWED


class Undo(Exception):
    """Rolls one case of the matrix back, so every case starts from the same estate."""


def _sod_case(personas, estate, case, action) -> str | None:
    filer, decider, owner_may_approve, *before = SOD_CASES[case]
    make_policy(groups=[personas.other_team.group], owner_may_approve=owner_may_approve, required=len(before) + 1)
    request = file_request(filer(personas), action, estate, personas)
    for earlier in before:
        approvals.approval_request_approve(actor=earlier(personas), request_id=request.pk)
    decide_as = decider(personas)
    reason = approvals.decision_blocker(person=decide_as.person, request=request, actor=decide_as)
    if expected(case, action):
        if reason is not None:
            return f"blocked: {reason}"
        approvals.approval_request_approve(actor=decide_as, request_id=request.pk)
        request.refresh_from_db()
        return None if request.status == S.EXECUTED else f"not executed: {request.failure_reason}"
    if not reason:
        return "no reason given for a forbidden decision"
    for call in (lambda: approvals.approval_request_approve(actor=decide_as, request_id=request.pk),
                 lambda: approvals.approval_request_reject(actor=decide_as, request_id=request.pk, reason="no")):
        try:
            call()
        except PermissionDenied:
            pass
        else:
            return "the service let a forbidden decision through"
    request.refresh_from_db()
    return None if request.status == S.PENDING and request.decisions.count() == len(before) else "the request changed"


@pytest.mark.parametrize("action", SOD_ACTIONS)
def test_separation_of_duties_matrix(personas, estate, action):
    """Every case runs in a savepoint that is rolled back; the failures name their case."""
    failures = {}
    if action == A.RISK_ACCEPTANCE:
        risk_finding(estate)  # the catalogue and the finding, once, outside the rolled-back cases
    for case in sorted(SOD_CASES):
        try:
            with transaction.atomic():
                for obj in estate.values():
                    obj.refresh_from_db()
                failure = _sod_case(personas, estate, case, action)
                if failure:
                    failures[case] = failure
                raise Undo
        except Undo:
            pass
    assert failures == {}


def test_system_tasks_and_auditors_decide_nothing(personas, estate, policy):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    with pytest.raises(PermissionDenied):
        approvals.approval_request_approve(actor=Actor.system(task_id="t"), request_id=request.pk)
    _with_group(personas.auditor, personas)
    with pytest.raises(PermissionDenied):
        approvals.approval_request_approve(actor=actor(personas.auditor), request_id=request.pk)


def test_people_who_cannot_see_the_request_find_nothing(personas, estate, policy):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    with pytest.raises(ApprovalRequest.DoesNotExist):
        approvals.approval_request_approve(actor=actor(personas.outsider), request_id=request.pk)


# N of M


def test_n_of_m_counts_distinct_people_once(personas, estate):
    make_policy(groups=[personas.other_team.group, personas.team.group], required=2)
    # in both approver groups (not the backup owner: as the backup team's manager she may not approve now)
    second_group_member = _with_group(PersonFactory(username="dora.both", teams=[personas.team]), personas)
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    approvals.approval_request_approve(actor=actor(second_group_member), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == S.PENDING and request.decisions.count() == 1
    with pytest.raises(PermissionDenied, match="one person counts once"):
        approvals.approval_request_approve(actor=actor(second_group_member), request_id=request.pk)
    event = approval_events(request).get(action="approval.approve")
    assert event.changes["approvals"] == {"before": 0, "after": 1} and "status" not in event.changes
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == S.EXECUTED and request.decisions.count() == 2


def test_one_rejection_ends_an_n_of_m_request(personas, estate):
    make_policy(groups=[personas.other_team.group], required=2)
    colleague = PersonFactory(username="carl.colleague", teams=[personas.other_team])
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    approvals.approval_request_reject(actor=actor(colleague), request_id=request.pk, reason="not yet")
    request.refresh_from_db()
    assert request.status == S.REJECTED


# Filing


def test_filing_validates_target_payload_and_text(personas, estate, policy):
    owner = actor(personas.owner)
    with pytest.raises(ValidationError):  # a target the action does not take
        approvals.approval_request_file(actor=owner, action=A.REACTIVATION, target=estate["credential"], payload={},
                                        justification="x")
    with pytest.raises(ValidationError):
        approvals.approval_request_file(actor=owner, action=A.RETIREMENT, target=estate["workflow"], payload={},
                                        justification="  ")
    with pytest.raises(ValidationError, match="secret"):
        approvals.approval_request_file(actor=owner, action=A.RETIREMENT, target=estate["workflow"], payload={},
                                        justification="token=ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    with pytest.raises(ValidationError) as error:
        approvals.approval_request_file(actor=owner, action=A.PRIVILEGED_SCOPE_CHANGE, target=estate["credential"],
                                        payload={"privilege_level": "root", "extra": 1}, justification="x")
    assert {"privilege_level", "extra"} <= set(error.value.message_dict)
    with pytest.raises(ValidationError, match="ticket"):
        approvals.approval_request_file(actor=owner, action=A.RETIREMENT, target=estate["workflow"], payload={},
                                        justification="x", ticket={"url": "javascript:alert(1)"})
    assert not ApprovalRequest.objects.exists()


def test_filing_records_requester_integration_and_ticket(personas, estate, policy):
    target, payload = payload_for(A.RETIREMENT, estate, personas)
    through = integration_actor(personas.owner)
    request = approvals.approval_request_file(
        actor=through, action=A.RETIREMENT, target=target, payload=payload,
        justification="Decommissioned in CHG-1042",
        ticket={"system": "Jira", "key": "CHG-1042", "url": "https://jira.example.com/browse/CHG-1042"})
    assert request.requested_by == personas.owner and request.filed_by_integration_id == through.id
    assert request.filed_by_integration_owner == personas.owner
    # the owner and the backup team's manager at filing are recorded: they count while it is pending
    assert request.owners_at_filing == sorted([personas.owner.pk, personas.backup_owner.pk])
    assert request.filed_by_label == "integration:ci-bot" and request.ticket_key == "CHG-1042"
    assert request.target == estate["workflow"] and request.target_fingerprint
    with pytest.raises(ValidationError, match="already pending"):
        approvals.approval_request_file(actor=actor(personas.owner), action=A.RETIREMENT, target=target, payload={},
                                        justification="again")


def test_only_people_who_may_change_the_target_may_ask(personas, estate, policy):
    for person in (personas.outsider, personas.approver, personas.auditor):
        with pytest.raises(PermissionDenied):
            file_request(actor(person), A.RETIREMENT, estate, personas)
    with pytest.raises(PermissionDenied):
        file_request(Actor.system(task_id="t"), A.RETIREMENT, estate, personas)


# Policies per action


def test_policy_for_prefers_the_workflow_path_then_the_default(personas, estate, policy):
    strict = make_policy(name="Payments production", groups=[personas.other_team.group], required=2,
                         actions=[A.PROVISION_CREDENTIAL, A.PRIVILEGED_SCOPE_CHANGE], defaults=[])
    Workflow.objects.filter(pk=estate["workflow"].pk).update(approval_policy=strict)
    estate["workflow"].refresh_from_db()
    assert approvals.policy_for(action=A.PROVISION_CREDENTIAL, target=estate["workflow"]) == strict
    assert approvals.policy_for(action=A.RETIREMENT, target=estate["workflow"]) == policy  # not gated: default
    assert approvals.policy_for(action=A.PRIVILEGED_SCOPE_CHANGE, target=estate["credential"]) == strict
    assert approvals.policy_for(action=A.PRIVILEGED_SCOPE_CHANGE, target=estate["other_credential"]) == policy


def test_no_policy_means_no_request(personas, estate):
    with pytest.raises(ValidationError, match="No approval policy"):
        file_request(actor(personas.owner), A.RETIREMENT, estate, personas)


# Visibility


def test_visibility_of_requests_and_their_targets(personas, estate, policy):
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)

    def sees(person):
        return permissions.can(person, permissions.VIEW, request)

    assert sees(personas.owner) and sees(personas.backup_owner) and sees(personas.approver)
    assert sees(personas.auditor) and sees(personas.secadmin) and not sees(personas.outsider)
    # The approver sees the workflow while it waits in their queue, not before, not after.
    assert permissions.can(personas.approver, permissions.VIEW, estate["workflow"])
    assert not permissions.can(personas.approver, permissions.VIEW, estate["credential"])
    approvals.approval_request_reject(actor=actor(personas.approver), request_id=request.pk, reason="no")
    assert not permissions.can(personas.approver, permissions.VIEW, estate["workflow"])
    assert sees(personas.approver)  # they decided it: it stays in their history
