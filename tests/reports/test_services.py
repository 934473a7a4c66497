"""The job service: validation, who may ask for what, enqueue on commit, claims, the failure path."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance.audit import Actor
from governance.models import AuditEvent
from reports import rendering
from reports.models import ReportJob
from reports.services import report_job_create, report_job_run
from reports.tasks import run_report_job

pytestmark = pytest.mark.django_db


def _events(job, action):
    return AuditEvent.objects.filter(object_type="reports.reportjob", object_id=str(job.pk), action=action)


@pytest.mark.embedded
def test_create_stores_a_queued_job_audits_it_and_enqueues_after_commit(personas, estate,
                                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = report_job_create(actor=Actor.for_user(personas.owner), kind="inventory",
                                parameters={"scope": "team:Payments", "period_end": "2026-03-31"})
    assert len(callbacks) == 1
    assert job.status == "queued" and job.progress == 0 and job.requester == personas.owner
    assert job.parameters == {"scope": "team:Payments", "period_start": "2026-01-01", "period_end": "2026-03-31",
                              "as_of": "2026-03-31T23:59:59Z"}
    assert job.scope_team == personas.team and job.scope_system is None
    assert _events(job, "report.request").count() == 1


@pytest.mark.parametrize("persona, scope, allowed", [
    ("auditor", "estate", True), ("secadmin", "team:Platform", True),
    ("owner", "team:Payments", True), ("owner", "system:payments-db", True),
    ("owner", "estate", False), ("owner", "team:Platform", False), ("owner", "system:platform-k8s", False),
    ("outsider", "team:Payments", False), ("approver", "team:Platform", True),
])
def test_who_may_request_which_scope(personas, estate, persona, scope, allowed):
    actor = Actor.for_user(getattr(personas, persona))
    if allowed:
        job = report_job_create(actor=actor, kind="inventory", parameters={"scope": scope}, enqueue=False)
        assert job.pk
    else:
        with pytest.raises(PermissionDenied):
            report_job_create(actor=actor, kind="inventory", parameters={"scope": scope}, enqueue=False)
        assert not ReportJob.objects.exists()


@pytest.mark.parametrize("kind, parameters, field", [
    ("framework_pack", {"framework": "no_such_framework"}, "framework"),
    ("framework_pack", {}, "framework"),
    ("inventory", {"scope": "team:Nobody"}, "scope"),
    ("inventory", {"scope": "cluster:x"}, "scope"),
    ("inventory", {"period_start": "2026-05-01", "period_end": "2026-04-01"}, "period_start"),
    ("inventory", {"period_end": "31/03/2026"}, "period_end"),
    ("inventory", {"colour": "blue"}, "colour"),
    ("attestation_campaign", {}, "campaign"),
    ("no_such_kind", {}, "kind"),
])
def test_invalid_parameters_are_refused(personas, estate, catalogue, kind, parameters, field):
    with pytest.raises(ValidationError) as info:
        report_job_create(actor=Actor.for_user(personas.auditor), kind=kind, parameters=parameters, enqueue=False)
    assert field in info.value.message_dict


@pytest.mark.embedded
def test_a_failed_render_leaves_a_failed_row_with_the_reason_and_no_file(personas, estate, settings, monkeypatch):
    def broken_write_pdf(*, html, metadata, attachments, target):
        target.write_bytes(b"%PDF-1.7 half a report")
        raise RuntimeError("pango exploded")

    monkeypatch.setattr(rendering, "write_pdf", broken_write_pdf)
    job = report_job_create(actor=Actor.for_user(personas.auditor), kind="inventory", parameters={}, enqueue=False)
    report_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "RuntimeError: pango exploded" in job.error
    assert not job.file and not job.sha256 and job.finished_at is not None
    assert list((settings.MEDIA_ROOT / "reports").iterdir()) == []
    assert _events(job, "report.fail").count() == 1
    assert report_job_run(job_id=job.pk) is None  # a finished job is never run again


@pytest.mark.embedded
def test_the_task_renders_once_and_a_redelivery_changes_nothing(personas, estate):
    job = report_job_create(actor=Actor.for_user(personas.auditor), kind="inventory", parameters={}, enqueue=False)
    assert run_report_job.apply(args=[job.pk]).get() == "succeeded"
    job.refresh_from_db()
    assert job.status == "succeeded" and job.progress == 100 and len(job.sha256) == 64
    assert job.file.name.startswith("reports/") and job.page_count >= 3
    assert run_report_job.apply(args=[job.pk]).get() == "already-claimed"
    generated = _events(job, "report.generate").get()
    assert generated.changes["sha256"] == job.sha256


def test_a_job_whose_worker_died_is_claimed_again_and_a_live_one_is_left_alone(personas, estate, settings):
    job = report_job_create(actor=Actor.for_user(personas.auditor), kind="inventory", parameters={}, enqueue=False)
    ReportJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now() - dt.timedelta(minutes=5),
                                               lease_token="a-worker", lease_expires_at=timezone.now() + dt.timedelta(
                                                   minutes=1))
    assert report_job_run(job_id=job.pk) is None  # still within its lease: another worker is on it
    reports_dir = settings.MEDIA_ROOT / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    leftover = reports_dir / f".{job.pk}-dead.pdf.partial"
    leftover.write_bytes(b"%PDF half")
    ReportJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert report_job_run(job_id=job.pk).status == "succeeded"
    assert not leftover.exists()
