"""kill-switch, retired-app-offboarded, audit-trail: pass, fail and edges."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor, audit_append
from governance.checks import Context, get
from governance.checks.base import ESTATE_OBJECT_ID, ESTATE_OBJECT_TYPE
from governance.choices import CredentialStatus, SystemLifecycle, WorkflowStatus
from governance.models import AuditEvent
from tests.audit_tamper import tamper_summary
from tests.factories import CredentialFactory, SystemFactory, WorkflowFactory
from tests.factories_checks import evaluated, evidence, failing

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY = dt.timedelta(days=1)


def drilled(**kwargs):
    values = {"shutdown_procedure": "Disable the pipeline in GitHub.", "kill_switch_steps": "Suspend deploy-key.",
              "last_drilled_at": NOW - 10 * DAY, "last_drill_result": "passed"}
    return WorkflowFactory(**{**values, **kwargs})


@pytest.mark.embedded
def test_kill_switch_needs_a_documented_procedure_and_a_recent_passed_drill(settings):
    ctx = Context.current(NOW)
    max_age = settings.STEWARD_THRESHOLDS["drill_max_age_days"]
    good = drilled()
    at_limit = drilled(last_drilled_at=NOW - max_age * DAY)
    stale = drilled(last_drilled_at=NOW - max_age * DAY - dt.timedelta(minutes=1))
    failed = drilled(last_drill_result="failed")
    never = drilled(last_drilled_at=None, last_drill_result="")
    no_runbook = drilled(shutdown_procedure="   ")
    no_steps = drilled(kill_switch_steps="")
    retired = drilled(shutdown_procedure="", status=WorkflowStatus.RETIRED, retired_at=NOW)
    assert failing("kill-switch", ctx=ctx) == {stale.pk, failed.pk, never.pk, no_runbook.pk, no_steps.pk}
    assert {good.pk, at_limit.pk} <= evaluated("kill-switch", ctx=ctx)
    assert retired.pk not in evaluated("kill-switch", ctx=ctx)
    facts = evidence("kill-switch", no_runbook)
    assert facts["procedure_documented"] is False and facts["kill_switch_documented"] is True
    assert facts["last_drill_result"] == "passed" and facts["drill_max_age_days"] == max_age


def test_drill_age_is_configurable(settings):
    workflow = drilled(last_drilled_at=NOW - 40 * DAY)
    settings.STEWARD_THRESHOLDS = {**settings.STEWARD_THRESHOLDS, "drill_max_age_days": 30}
    assert failing("kill-switch") == {workflow.pk}


@pytest.mark.embedded
def test_retired_system_with_active_credentials_fails():
    retired = SystemFactory(lifecycle=SystemLifecycle.RETIRED, retired_at=NOW - DAY)
    clean = SystemFactory(lifecycle=SystemLifecycle.RETIRED, retired_at=NOW - DAY)
    live = SystemFactory()
    for name in ("b-key", "a-key"):
        CredentialFactory(system=retired, name=name)
    CredentialFactory(system=retired, status=CredentialStatus.REVOKED)
    CredentialFactory(system=clean, status=CredentialStatus.REVOKED)
    CredentialFactory(system=live)
    assert failing("retired-app-offboarded") == {retired.pk}
    assert clean.pk in evaluated("retired-app-offboarded")
    assert live.pk not in evaluated("retired-app-offboarded")
    facts = evidence("retired-app-offboarded", retired)
    assert facts["active_credentials"] == 2 and facts["retired_at"]


def _audit_outcome():
    return get("audit-trail").evaluate(Context.current())


@pytest.mark.embedded
def test_audit_trail_intact_passes_and_one_estate_subject_is_evaluated():
    with transaction.atomic():
        for n in range(3):
            audit_append(actor=Actor.system(), action="test.event", object_type="test", object_id=n, summary="x")
    outcome = _audit_outcome()
    assert outcome.evaluated == 1 and outcome.failures == {}


def test_audit_trail_edited_event_fails_with_the_first_bad_sequence():
    with transaction.atomic():
        for n in range(3):
            audit_append(actor=Actor.system(), action="test.event", object_type="test", object_id=n, summary="x")
    second = AuditEvent.objects.order_by("sequence")[1]
    tamper_summary(pk=second.pk, summary="tampered")
    outcome = _audit_outcome()
    failure = outcome.failures[(ESTATE_OBJECT_TYPE, ESTATE_OBJECT_ID)]
    assert failure.evidence["first_bad_sequence"] == second.sequence
    assert "edited" in failure.evidence["reason"]
    assert failure.owner_id is None and failure.team_id is None


def _append(n):
    with transaction.atomic():
        for i in range(n):
            audit_append(actor=Actor.system(), action="test.event", object_type="test", object_id=i, summary="x")


def test_audit_trail_verifies_incrementally_between_full_verifications(settings):
    _append(3)
    check = get("audit-trail")
    first = check.evaluate(Context.current())
    assert first.failures == {} and first.state["sequence"] == 3 and "full_verified_at" in first.state
    _append(2)
    second = check.evaluate(Context.current(state=first.state))
    assert second.failures == {} and second.state["sequence"] == 5
    assert second.state["full_verified_at"] == first.state["full_verified_at"]  # incremental
    newest = AuditEvent.objects.get(sequence=5)
    tamper_summary(pk=newest.pk, summary="tampered after the checkpoint")
    broken = check.evaluate(Context.current(state=first.state))
    assert broken.failures[(ESTATE_OBJECT_TYPE, ESTATE_OBJECT_ID)].evidence["first_bad_sequence"] == 5
    assert broken.state == {}  # the next run verifies the whole chain


def test_audit_trail_full_verification_catches_edits_before_the_checkpoint(settings):
    _append(4)
    check = get("audit-trail")
    state = check.evaluate(Context.current()).state
    tamper_summary(pk=AuditEvent.objects.get(sequence=2).pk, summary="tampered long ago")
    assert check.evaluate(Context.current(state=state)).failures == {}  # incremental: not looked at again
    settings.STEWARD_AUDIT_FULL_VERIFY_SECONDS = 0
    failure = check.evaluate(Context.current(state=state)).failures[(ESTATE_OBJECT_TYPE, ESTATE_OBJECT_ID)]
    assert failure.evidence["first_bad_sequence"] == 2 and failure.evidence["verification"] == "full"
