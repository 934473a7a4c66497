"""The sweep: opens, refreshes and resolves findings in bulk; idempotent, concurrent-safe, audited."""

import datetime as dt
import threading
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.audit import Actor, verify_chain
from governance.checks import NotEvaluated, get
from governance.choices import CredentialStatus
from governance.models import AuditEvent, Credential
from governance.models.checks import Check, CheckStatus, Finding, FindingState, PostureSnapshot, SweepRun
from governance.services.findings import finding_accept_risk
from governance.services.posture import posture_snapshot_take
from governance.services.sweep import sweep_run
from tests.factories import CredentialFactory, PersonFactory, TeamFactory
from tests.factories_checks import FindingFactory, load_catalogue

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
ROTATION = ["rotation-age"]


def overdue(**kwargs):
    return CredentialFactory(last_rotated_at=timezone.now() - 400 * DAY, **kwargs)


def findings(code="rotation-age", **filters):
    return Finding.objects.filter(failed_check__code=code, **filters)


def events(action):
    return AuditEvent.objects.filter(action=action)


@pytest.mark.embedded
def test_sweep_opens_one_finding_per_failing_object_with_evidence_and_an_audit_event():
    team = TeamFactory(name="Payments")
    owner = PersonFactory()
    bad = overdue(owner=owner, team=team)
    CredentialFactory()  # rotated recently: passes
    run = sweep_run(checks=ROTATION, trigger="test")
    assert run.status == "succeeded" and run.errors == {}
    counts = run.counts["rotation-age"]
    assert (counts["evaluated"], counts["failed"], counts["opened"]) == (2, 1, 1)
    finding = findings().get()
    assert (finding.object_type, finding.object_id, finding.object_repr) == ("governance.credential", bad.pk, bad.name)
    assert finding.state == FindingState.OPEN and finding.owner == owner and finding.team == team
    assert finding.evidence["max_age_days"] == 90
    event = events("finding.open").get()
    assert event.object_id == str(finding.pk) and event.actor_kind == "system" and event.task_id == f"sweep-{run.pk}"
    check = Check.objects.get(code="rotation-age")
    assert (check.last_status, check.last_evaluated_count, check.last_failed_count) == ("evaluated", 2, 1)


@pytest.mark.embedded
def test_a_second_sweep_changes_nothing():
    overdue(), overdue(human_use_detected=True)
    sweep_run(trigger="test")
    before = (Finding.objects.count(), AuditEvent.objects.count(),
              list(Finding.objects.order_by("pk").values_list("pk", "state", "evidence", "first_seen_at")))
    run = sweep_run(trigger="test")
    after = (Finding.objects.count(), AuditEvent.objects.count(),
             list(Finding.objects.order_by("pk").values_list("pk", "state", "evidence", "first_seen_at")))
    assert before == after
    assert all(c.get("opened", 0) == c.get("resolved", 0) == c.get("refreshed", 0) == 0 for c in run.counts.values())
    assert SweepRun.objects.count() == 2


def test_resolution_then_reopening_keeps_one_finding_and_its_history():
    credential = overdue()
    sweep_run(checks=ROTATION, trigger="test")
    finding = findings().get()
    Credential.objects.filter(pk=credential.pk).update(last_rotated_at=timezone.now())
    run = sweep_run(checks=ROTATION, trigger="test")
    finding.refresh_from_db()
    assert run.counts["rotation-age"]["resolved"] == 1
    assert finding.state == FindingState.RESOLVED and finding.resolved_at is not None
    assert events("finding.resolve").get().changes["reason"]["after"] == "passes"
    Credential.objects.filter(pk=credential.pk).update(last_rotated_at=timezone.now() - 200 * DAY)
    run = sweep_run(checks=ROTATION, trigger="test")
    finding.refresh_from_db()
    assert run.counts["rotation-age"]["reopened"] == 1 and findings().count() == 1
    assert finding.state == FindingState.OPEN and finding.resolved_at is None and finding.reopened_count == 1
    history = list(AuditEvent.objects.filter(object_type="governance.finding", object_id=str(finding.pk))
                   .order_by("sequence").values_list("action", flat=True))
    assert history == ["finding.open", "finding.resolve", "finding.reopen"]


def test_an_object_leaving_the_checks_scope_resolves_its_finding():
    credential = overdue()
    sweep_run(checks=ROTATION, trigger="test")
    Credential.objects.filter(pk=credential.pk).update(status=CredentialStatus.REVOKED)
    sweep_run(checks=ROTATION, trigger="test")
    assert findings().get().state == FindingState.RESOLVED
    assert events("finding.resolve").get().changes["reason"]["after"] == "is no longer subject to the check"


def test_evidence_owner_and_team_are_refreshed_without_a_state_change():
    credential = overdue(rotation_max_age_days=100)
    sweep_run(checks=ROTATION, trigger="test")
    new_owner, new_team = PersonFactory(), TeamFactory(name="New team")
    Credential.objects.filter(pk=credential.pk).update(rotation_max_age_days=120, owner=new_owner, team=new_team)
    before = AuditEvent.objects.count()
    run = sweep_run(checks=ROTATION, trigger="test")
    finding = findings().get()
    assert run.counts["rotation-age"]["refreshed"] == 1
    assert finding.evidence["max_age_days"] == 120 and finding.owner == new_owner and finding.team == new_team
    assert AuditEvent.objects.count() == before


@pytest.mark.embedded
def test_risk_acceptance_holds_until_its_expiry_then_the_sweep_reopens():
    overdue()
    sweep_run(checks=ROTATION, trigger="test")
    finding = findings().get()
    request = SimpleNamespace(pk=41, action="risk_acceptance", status="approved")
    finding_accept_risk(actor=Actor.system(task_id="approvals"), finding_id=finding.pk, approval_request=request,
                        expires_at=timezone.now() + 30 * DAY)
    sweep_run(checks=ROTATION, trigger="test")
    finding.refresh_from_db()
    assert finding.state == FindingState.RISK_ACCEPTED
    Finding.objects.filter(pk=finding.pk).update(risk_accepted_until=timezone.now() - dt.timedelta(seconds=1))
    run = sweep_run(checks=ROTATION, trigger="test")
    finding.refresh_from_db()
    assert run.counts["rotation-age"]["risk_acceptances_expired"] == 1
    assert finding.state == FindingState.OPEN and finding.risk_acceptance_request_id == 41
    assert events("finding.risk_acceptance_expire").count() == 1


def test_a_risk_accepted_finding_resolves_when_the_object_passes():
    credential = overdue()
    sweep_run(checks=ROTATION, trigger="test")
    finding = findings().get()
    finding_accept_risk(actor=Actor.system(), finding_id=finding.pk, expires_at=timezone.now() + DAY,
                        approval_request=SimpleNamespace(pk=7, action="risk_acceptance", status="executed"))
    Credential.objects.filter(pk=credential.pk).update(last_rotated_at=timezone.now())
    sweep_run(checks=ROTATION, trigger="test")
    finding.refresh_from_db()
    assert finding.state == FindingState.RESOLVED


def test_the_database_allows_one_unresolved_finding_per_check_and_object():
    load_catalogue()
    FindingFactory(object_id=5, state=FindingState.RESOLVED, resolved_at=timezone.now())
    FindingFactory(object_id=5, state=FindingState.RESOLVED, resolved_at=timezone.now())
    FindingFactory(object_id=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        FindingFactory(object_id=5, state=FindingState.ACKNOWLEDGED)


def test_only_the_named_check_runs_and_unknown_codes_are_refused(capsys):
    overdue(human_use_detected=True)
    run = sweep_run(checks=["human-use"], trigger="test")
    assert list(run.counts) == ["human-use"] and not findings().exists()
    with pytest.raises(ValidationError):
        sweep_run(checks=["no-such-check"], trigger="test")
    call_command("sweep", "--check", "rotation-age")
    assert "rotation-age" in capsys.readouterr().out and findings().count() == 1
    with pytest.raises(CommandError):
        call_command("sweep", "--check", "bogus")


def test_a_check_that_cannot_run_leaves_its_findings_and_says_so(monkeypatch):
    overdue()
    sweep_run(checks=ROTATION, trigger="test")

    def cannot(ctx):
        raise NotEvaluated("the data it needs is missing")

    monkeypatch.setattr(get("rotation-age"), "evaluate", cannot)
    Credential.objects.update(last_rotated_at=timezone.now())
    run = sweep_run(checks=ROTATION, trigger="test")
    assert run.counts["rotation-age"]["status"] == "not_evaluated"
    assert findings().get().state == FindingState.OPEN  # not resolved by a check that did not look
    assert Check.objects.get(code="rotation-age").last_status == CheckStatus.NOT_EVALUATED


def test_one_failing_check_is_recorded_and_the_others_still_run(monkeypatch):
    overdue(human_use_detected=True)

    def broken(ctx):
        raise RuntimeError("bug")

    monkeypatch.setattr(get("rotation-age"), "evaluate", broken)
    run = sweep_run(checks=["rotation-age", "human-use"], trigger="test")
    assert run.status == "partial" and "RuntimeError: bug" in run.errors["rotation-age"]
    assert findings("human-use").count() == 1 and not findings().exists()


def test_steady_state_sweep_queries_do_not_grow_with_the_estate():
    def queries():
        sweep_run(trigger="test")  # open what fails
        with CaptureQueriesContext(connection) as captured:
            sweep_run(trigger="test")
        return len(captured.captured_queries)

    overdue()
    small = queries()
    for _ in range(15):
        overdue(human_use_detected=True, store=None, store_path="")
    assert queries() == small


@pytest.mark.embedded
def test_the_audit_chain_stays_intact_through_sweeps():
    overdue()
    sweep_run(trigger="test")
    Credential.objects.update(last_rotated_at=timezone.now())
    sweep_run(trigger="test")
    assert verify_chain().intact


def test_posture_snapshot_is_one_row_per_day_scope_and_check():
    team = TeamFactory(name="Payments")
    overdue(team=team)
    CredentialFactory(team=team)
    sweep_run(trigger="test")
    first = posture_snapshot_take()
    assert posture_snapshot_take() == first
    estate = PostureSnapshot.objects.get(scope_type="estate", check_code="rotation-age")
    assert (estate.passed, estate.failed, estate.accepted) == (1, 1, 0)
    team_row = PostureSnapshot.objects.get(scope_type="team", scope_key=str(team.pk), check_code="rotation-age")
    assert (team_row.passed, team_row.failed) == (1, 1)
    assert PostureSnapshot.objects.count() == first


def test_the_sweep_task_and_beat_entries():
    from governance.tasks.checks import posture_snapshot_task, sweep_task
    from portal.celery import app

    overdue()
    result = sweep_task.apply(kwargs={"checks": ROTATION, "trigger": "test"}).get()
    assert result["status"] == "succeeded" and findings().count() == 1
    assert posture_snapshot_task.apply().get()["rows"] > 0
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"governance.checks.sweep", "governance.checks.posture_snapshot"} <= tasks


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_never_duplicate_and_the_second_changes_nothing():
    load_catalogue()
    for _ in range(20):
        overdue(human_use_detected=True)
    barrier, runs, errors = threading.Barrier(2), [], []

    def sweep():
        try:
            barrier.wait()
            runs.append(sweep_run(trigger="concurrent"))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and all(run.errors == {} for run in runs)
    total = Finding.objects.count()
    # rotation-age, human-use, and owner-named for each credential and its system (factories leave no owner)
    assert total == 20 * 4
    assert Finding.objects.values("failed_check", "object_type", "object_id").distinct().count() == total
    opened = [sum(c.get("opened", 0) for c in run.counts.values()) for run in runs]
    assert sorted(opened) == [0, total]  # one run opened everything, the other found nothing to do
    assert events("finding.open").count() == total
    assert verify_chain().intact
