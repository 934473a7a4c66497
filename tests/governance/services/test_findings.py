"""Acknowledging findings and accepting risks: who may, which states, audit events, visibility."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance.audit import Actor
from governance.checks.base import ESTATE_OBJECT_ID, ESTATE_OBJECT_TYPE
from governance.models import AuditEvent
from governance.models.checks import Finding, FindingState
from governance.permissions import CHANGE, VIEW, restrict
from governance.services.findings import finding_accept_risk, finding_acknowledge
from tests.factories_checks import FindingFactory, load_catalogue

pytestmark = pytest.mark.django_db

APPROVED = SimpleNamespace(pk=12, action="risk_acceptance", status="approved")


@pytest.fixture
def own(estate):
    load_catalogue()
    return FindingFactory.for_object(estate["credential"])


@pytest.fixture
def other(estate):
    return FindingFactory.for_object(estate["other_credential"])


@pytest.mark.embedded
def test_owner_acknowledges_open_findings_of_their_objects(personas, own):
    count = finding_acknowledge(actor=Actor.for_user(personas.owner), finding_ids=[own.pk],
                                comment="rotating on Friday")
    own.refresh_from_db()
    assert count == 1 and own.state == FindingState.ACKNOWLEDGED
    assert own.acknowledged_by == personas.owner and own.acknowledged_comment == "rotating on Friday"
    event = AuditEvent.objects.get(action="finding.acknowledge")
    assert event.object_id == str(own.pk) and event.changes["state"] == {"before": "open", "after": "acknowledged"}


def test_team_member_may_acknowledge_and_repeats_change_nothing(personas, own):
    assert finding_acknowledge(actor=Actor.for_user(personas.backup_owner), finding_ids=[own.pk]) == 1
    assert finding_acknowledge(actor=Actor.for_user(personas.owner), finding_ids=[own.pk]) == 0
    assert AuditEvent.objects.filter(action="finding.acknowledge").count() == 1


@pytest.mark.parametrize("persona", ["approver", "outsider", "auditor"])
def test_others_may_not_acknowledge_and_nothing_changes(personas, own, other, persona):
    with pytest.raises(PermissionDenied):
        finding_acknowledge(actor=Actor.for_user(getattr(personas, persona)), finding_ids=[own.pk])
    own.refresh_from_db()
    assert own.state == FindingState.OPEN


def test_a_selection_with_a_forbidden_finding_changes_nothing(personas, own, other):
    with pytest.raises(PermissionDenied):
        finding_acknowledge(actor=Actor.for_user(personas.owner), finding_ids=[own.pk, other.pk])
    assert not Finding.objects.filter(state=FindingState.ACKNOWLEDGED).exists()


def test_security_admin_acknowledges_anything_and_secrets_are_refused(personas, own, other):
    with pytest.raises(ValidationError):
        finding_acknowledge(actor=Actor.for_user(personas.secadmin), finding_ids=[own.pk],
                            comment="the key is AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert finding_acknowledge(actor=Actor.for_user(personas.secadmin), finding_ids=[own.pk, other.pk]) == 2


@pytest.mark.embedded
def test_risk_acceptance_through_an_approved_request(own):
    until = timezone.now() + dt.timedelta(days=90)
    finding = finding_accept_risk(actor=Actor.system(task_id="approvals"), finding_id=own.pk,
                                  approval_request=APPROVED, expires_at=until)
    assert finding.state == FindingState.RISK_ACCEPTED
    assert finding.risk_accepted_until == until and finding.risk_acceptance_request_id == 12
    event = AuditEvent.objects.get(action="finding.accept_risk")
    assert event.changes["state"] == {"before": "open", "after": "risk_accepted"}
    assert event.changes["risk_acceptance_request_id"]["after"] == 12


@pytest.mark.parametrize("request_, expires, message", [
    (SimpleNamespace(pk=1, action="privileged_scope_change", status="approved"), 5, "approval_request"),
    (SimpleNamespace(pk=1, action="risk_acceptance", status="pending"), 5, "approval_request"),
    (SimpleNamespace(pk=1, action="risk_acceptance", status="rejected"), 5, "approval_request"),
    (APPROVED, -1, "expires_at"),
])
def test_risk_acceptance_needs_an_approved_request_and_a_future_expiry(own, request_, expires, message):
    with pytest.raises(ValidationError) as caught:
        finding_accept_risk(actor=Actor.system(), finding_id=own.pk, approval_request=request_,
                            expires_at=timezone.now() + dt.timedelta(days=expires))
    assert message in caught.value.message_dict
    own.refresh_from_db()
    assert own.state == FindingState.OPEN


def test_a_resolved_finding_cannot_be_risk_accepted(own):
    Finding.objects.filter(pk=own.pk).update(state=FindingState.RESOLVED, resolved_at=timezone.now())
    with pytest.raises(ValidationError):
        finding_accept_risk(actor=Actor.system(), finding_id=own.pk, approval_request=APPROVED,
                            expires_at=timezone.now() + dt.timedelta(days=1))


def test_findings_are_visible_to_whoever_may_view_the_object(personas, own, other):
    estate_finding = FindingFactory(object_type=ESTATE_OBJECT_TYPE, object_id=ESTATE_OBJECT_ID)

    def visible(user, action=VIEW):
        return set(restrict(Finding.objects.all(), user, action).values_list("pk", flat=True))

    assert visible(personas.owner) == {own.pk} == visible(personas.backup_owner)
    assert visible(personas.approver) == {other.pk}
    assert visible(personas.outsider) == set()
    assert visible(personas.auditor) == {own.pk, other.pk, estate_finding.pk} == visible(personas.secadmin)
    assert visible(personas.auditor, CHANGE) == set()
    assert visible(personas.owner, CHANGE) == {own.pk}
