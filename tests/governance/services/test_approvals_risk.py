"""Risk acceptance of a finding through an approval (the findings service records the acceptance)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance import permissions
from governance.models.approvals import ApprovalStatus
from governance.services import approvals
from tests.conftest import actor
from tests.factories_approvals import A, make_policy

pytest.importorskip("governance.services.findings")
from governance.models.checks import Finding, FindingState  # noqa: E402
from tests.factories_checks import FindingFactory, load_catalogue  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def finding(personas, estate):
    load_catalogue()
    make_policy(groups=[personas.other_team.group])
    return FindingFactory.for_object(estate["credential"], code="rotation-age")


def accept(person, finding, days: float = 90):
    until = (timezone.now() + dt.timedelta(days=days)).replace(microsecond=0)
    return approvals.approval_request_file(actor=actor(person), action=A.RISK_ACCEPTANCE, target=finding,
                                           payload={"expires_at": until.isoformat()},
                                           justification="Rotation is scheduled with the Q3 migration"), until


def test_an_approved_risk_acceptance_marks_the_finding(personas, finding):
    request, until = accept(personas.owner, finding)
    assert permissions.can(personas.approver, permissions.VIEW, request)
    assert permissions.can(personas.backup_owner, permissions.VIEW, request)  # the finding's team
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    finding.refresh_from_db()
    assert request.status == ApprovalStatus.EXECUTED, request.failure_reason
    assert finding.state == FindingState.RISK_ACCEPTED and finding.risk_accepted_until == until
    assert finding.risk_acceptance_request_id == request.pk


def test_risk_acceptance_has_a_bounded_future_expiry(personas, finding):
    for days in (-1, 400):
        with pytest.raises(ValidationError, match="expires_at|year|future"):
            accept(personas.owner, finding, days=days)


def test_the_owner_of_the_finding_does_not_approve_it(personas, finding):
    request, _ = accept(personas.backup_owner, finding)
    personas.owner.groups.add(personas.other_team.group)
    with pytest.raises(PermissionDenied, match="own"):
        approvals.approval_request_approve(actor=actor(personas.owner), request_id=request.pk)
    with pytest.raises(PermissionDenied):
        accept(personas.outsider, finding)


def test_a_finding_resolved_meanwhile_fails_cleanly(personas, finding):
    request, _ = accept(personas.owner, finding)
    Finding.objects.filter(pk=finding.pk).update(state=FindingState.RESOLVED, resolved_at=timezone.now())
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == ApprovalStatus.FAILED and "changed since" in request.failure_reason
