"""The approval sweep (reminders, escalation, expiry: idempotent) and the approval policy services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from governance import permissions
from governance.models import AuditEvent
from governance.models.approvals import ApprovalPolicy, ApprovalStatus
from governance.services import approval_policies, approvals, approvals_sweep
from governance.tasks.approvals import approval_requests_sweep_task
from tests.conftest import actor
from tests.factories import PersonFactory
from tests.factories_approvals import A, file_request, make_policy

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
H = dt.timedelta(hours=1)


@pytest.fixture
def cab(db):
    group = Group.objects.create(name="Change advisory board")
    return PersonFactory(username="eve.escalation", teams=()), group


@pytest.fixture
def filed(personas, estate, cab, django_capture_on_commit_callbacks):
    person, group = cab
    person.groups.add(group)
    make_policy(groups=[personas.other_team.group], expiry_hours=72, reminder_before_hours=24,
                escalation_group=group, escalation_after_hours=12)
    request = file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    mail.outbox.clear()
    return request


def sweep(at, capture):
    with capture(execute=True):
        return approval_requests_sweep_task() if at is None else approvals_sweep.approval_requests_sweep(now=at)


def events(request, action):
    return AuditEvent.objects.filter(changes__approval_request__after=request.pk, action=action).count()


def test_escalation_reminder_and_expiry_happen_once_each(personas, cab, filed, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    t0 = filed.created_at
    assert sweep(t0 + 11 * H, capture) == {"expired": 0, "escalated": 0, "reminded": 0}
    assert mail.outbox == []

    assert sweep(t0 + 13 * H, capture) == {"expired": 0, "escalated": 1, "reminded": 0}
    assert sweep(t0 + 14 * H, capture) == {"expired": 0, "escalated": 0, "reminded": 0}
    assert [m.to for m in mail.outbox] == [[cab[0].email]] and "Escalated" in mail.outbox[0].subject
    filed.refresh_from_db()
    assert filed.escalated_at == t0 + 13 * H and events(filed, "approval.escalate") == 1
    assert approvals.decision_blocker(person=cab[0], request=filed) is None  # the escalation group may decide now
    assert permissions.can(cab[0], permissions.VIEW, filed)

    mail.outbox.clear()
    assert sweep(t0 + 49 * H, capture) == {"expired": 0, "escalated": 0, "reminded": 1}
    assert sweep(t0 + 50 * H, capture)["reminded"] == 0
    assert len(mail.outbox) == 1 and "Reminder" in mail.outbox[0].subject
    assert set(mail.outbox[0].to) == {personas.approver.email, cab[0].email}  # not the requester
    assert events(filed, "approval.remind") == 1

    mail.outbox.clear()
    assert sweep(t0 + 72 * H, capture) == {"expired": 1, "escalated": 0, "reminded": 0}
    assert sweep(t0 + 73 * H, capture) == {"expired": 0, "escalated": 0, "reminded": 0}
    filed.refresh_from_db()
    assert filed.status == ApprovalStatus.EXPIRED and filed.decided_at == t0 + 72 * H
    assert [m.to for m in mail.outbox] == [[personas.owner.email]] and "expired" in mail.outbox[0].subject
    assert events(filed, "approval.expire") == 1


def test_a_late_sweep_expires_without_reminding_or_escalating(filed, django_capture_on_commit_callbacks):
    counts = sweep(filed.expires_at + H, django_capture_on_commit_callbacks)
    assert counts == {"expired": 1, "escalated": 0, "reminded": 0}
    assert len(mail.outbox) == 1


def test_decided_requests_are_left_alone(personas, filed, django_capture_on_commit_callbacks):
    approvals.approval_request_reject(actor=actor(personas.approver), request_id=filed.pk, reason="no")
    mail.outbox.clear()
    assert sweep(filed.expires_at + H, django_capture_on_commit_callbacks) == {
        "expired": 0, "escalated": 0, "reminded": 0}
    filed.refresh_from_db()
    assert filed.status == ApprovalStatus.REJECTED and mail.outbox == []


def test_the_task_sweeps_with_the_current_time(filed, django_capture_on_commit_callbacks):
    assert sweep(None, django_capture_on_commit_callbacks) == {"expired": 0, "escalated": 0, "reminded": 0}


# Approval policies


def policy_data(personas, **extra):
    return {"name": "Production changes", "approver_groups": [personas.other_team.group],
            "required_approvals": 2, "expiry_hours": 48, "reminder_before_hours": 12,
            "actions": [A.PROVISION_CREDENTIAL, A.RETIREMENT], "default_for_actions": [A.RETIREMENT], **extra}


def test_security_admins_manage_policies_with_an_audit_trail(personas):
    with pytest.raises(PermissionDenied):
        approval_policies.approval_policy_create(actor=actor(personas.owner), data=policy_data(personas))
    policy = approval_policies.approval_policy_create(actor=actor(personas.secadmin), data=policy_data(personas))
    assert list(policy.approver_groups.all()) == [personas.other_team.group]
    approval_policies.approval_policy_update(actor=actor(personas.secadmin), policy=policy,
                                             data={"required_approvals": 3})
    policy.refresh_from_db()
    assert policy.required_approvals == 3
    actions = AuditEvent.objects.filter(object_type="governance.approvalpolicy", object_id=str(policy.pk))
    assert sorted(actions.values_list("action", flat=True)) == ["approvalpolicy.create", "approvalpolicy.update"]


@pytest.mark.parametrize("extra, field", [
    ({"default_for_actions": [A.REACTIVATION]}, "default_for_actions"),
    ({"actions": ["launch_missiles"]}, "actions"),
    ({"approver_groups": []}, "approver_groups"),
    ({"escalation_after_hours": 4}, "escalation_after_hours"),
    ({"reminder_before_hours": 48}, "reminder_before_hours"),
    ({"required_approvals": 0}, "required_approvals"),
])
def test_invalid_policies_are_refused(personas, extra, field):
    with pytest.raises(ValidationError) as error:
        approval_policies.approval_policy_create(actor=actor(personas.secadmin), data=policy_data(personas, **extra))
    assert field in error.value.message_dict
    assert not ApprovalPolicy.objects.exists()


def test_one_default_policy_per_action(personas):
    approval_policies.approval_policy_create(actor=actor(personas.secadmin), data=policy_data(personas))
    with pytest.raises(ValidationError, match="already the default"):
        approval_policies.approval_policy_create(actor=actor(personas.secadmin),
                                         data=policy_data(personas, name="Another"))
