"""Writes of the reports app: request a report, run it (in a Celery worker), record a download.

A report is never rendered inside a request: report_job_create() stores a queued ReportJob and
enqueues the task after commit; report_job_run() claims the row (compare-and-set, so a
redelivered message renders nothing twice), renders into a temporary file and publishes it only
when the whole render succeeded. A failed render leaves a failed row with its reason and no file.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import traceback
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import outbox
from governance.audit import Actor, audit_append
from governance.models import ActorKind
from reports.models import TRANSITIONS, ReportJob, ReportJobStatus
from reports.parameters import normalise_parameters, scope_of
from reports.scopes import SYSTEM, TEAM, ensure_may_report_on

logger = logging.getLogger(__name__)

REPORTS_SUBDIR = "reports"
ERROR_LIMIT = 2000
STALE_SECONDS = 3600  # a render takes about a minute at 100,000 credentials; an hour means the worker died


def requester_label(job: ReportJob) -> str:
    if job.requester_id is None:
        return "command line (system)"
    person = job.requester
    full = person.get_full_name()
    return f"{full} ({person.get_username()})" if full else person.get_username()


def _ensure_may_request(actor: Actor, scope) -> None:
    if actor.kind == ActorKind.SYSTEM:
        return
    if actor.user is None:
        raise PermissionDenied("Sign in to generate reports.")
    ensure_may_report_on(actor.user, scope)


def report_job_create(*, actor: Actor, kind: str, parameters: dict, enqueue: bool = True) -> ReportJob:
    """Validate the inputs, store a queued job, audit it, and enqueue the render after commit."""
    from reports import builders

    params = normalise_parameters(kind, parameters)
    scope = scope_of(params)
    _ensure_may_request(actor, scope)
    with transaction.atomic():
        job = ReportJob.objects.create(
            kind=kind,
            parameters=params,
            scope_team_id=scope.pk if scope.kind == TEAM else None,
            scope_system_id=scope.pk if scope.kind == SYSTEM else None,
            requester=actor.user if actor.kind != ActorKind.SYSTEM else None,
            title=builders.title_for(kind, params),
        )
        audit_append(actor=actor, action="report.request", target=job,
                     summary=f"Requested report: {job.title}", changes={"kind": kind, "parameters": params})
        if enqueue:
            from reports.tasks import run_report_job

            outbox.enqueue(run_report_job, job.pk)
    return job


def _transition(job_id: int, old: str, new: str, **fields) -> bool:
    """Compare-and-set along the declared transition table; True if this caller moved the row."""
    if new not in TRANSITIONS[old]:
        raise ValueError(f"a report job cannot go from {old} to {new}")
    return ReportJob.objects.filter(pk=job_id, status=old).update(status=new, **fields) == 1


def _claim(job_id: int) -> bool:
    """Queued -> running; or take over a running job whose worker must have died (acks_late redelivery)."""
    now = timezone.now()
    if _transition(job_id, ReportJobStatus.QUEUED, ReportJobStatus.RUNNING, started_at=now, progress=1):
        return True
    stale_before = now - dt.timedelta(seconds=getattr(settings, "STEWARD_REPORT_STALE_SECONDS", STALE_SECONDS))
    claimed = ReportJob.objects.filter(pk=job_id, status=ReportJobStatus.RUNNING, started_at__lt=stale_before).update(
        started_at=now, progress=1) == 1
    if claimed:
        for leftover in _reports_dir().glob(f".{job_id}-*.pdf.partial"):
            leftover.unlink(missing_ok=True)
    return claimed


def report_job_set_progress(*, job_id: int, percent: int) -> None:
    """Progress is informational (no audit): written outside any transaction so polling sees it."""
    ReportJob.objects.filter(pk=job_id, status=ReportJobStatus.RUNNING).update(
        progress=max(0, min(99, int(percent)))
    )


def _reports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / REPORTS_SUBDIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def report_job_run(*, job_id: int) -> ReportJob | None:
    """Render a queued job. Returns the job, or None when another worker already claimed it."""
    from reports import builders
    from reports.rendering import write_pdf

    if not _claim(job_id):
        return None
    job = ReportJob.objects.select_related("requester").get(pk=job_id)
    actor = Actor.system(task_id=f"report-{job.pk}", label="reports")
    reports_dir = _reports_dir()
    fd, partial = tempfile.mkstemp(prefix=f".{job.pk}-", suffix=".pdf.partial", dir=reports_dir)
    os.close(fd)
    partial_path = Path(partial)
    final_path: Path | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="steward-report-") as workdir:
            built = builders.build(
                job.kind, job.parameters, requester=requester_label(job), workdir=Path(workdir),
                progress=lambda pct: report_job_set_progress(job_id=job.pk, percent=pct),
            )
            report_job_set_progress(job_id=job.pk, percent=80)
            result = write_pdf(html=built.html, metadata=built.metadata, attachments=built.attachments,
                               target=partial_path)
        final_path = reports_dir / f"{job.pk}-{built.file_stem}.pdf"
        os.replace(partial_path, final_path)
        relative = f"{REPORTS_SUBDIR}/{final_path.name}"
        with transaction.atomic():
            if not _transition(job.pk, ReportJobStatus.RUNNING, ReportJobStatus.SUCCEEDED,
                               finished_at=timezone.now(), progress=100, file=relative, sha256=result.sha256,
                               size=result.size, page_count=result.page_count, error=""):
                raise RuntimeError("the job was no longer running when its render finished")
            job.refresh_from_db()
            audit_append(actor=actor, action="report.generate", target=job,
                         summary=f"Generated report {job.title}, SHA-256 {result.sha256}",
                         changes={"sha256": result.sha256, "file": relative, "size": result.size,
                                  "pages": result.page_count, "kind": job.kind, "parameters": job.parameters})
        return job
    except Exception as exc:  # the job records any failure; nothing partial is left behind
        logger.exception("report job %s failed", job_id)
        for path in (partial_path, final_path):
            if path is not None and path.exists():
                path.unlink()
        return _fail(job_id, actor, exc)


def _fail(job_id: int, actor: Actor, exc: BaseException) -> ReportJob:
    reason = f"{type(exc).__name__}: {exc}".strip()[:ERROR_LIMIT]
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:ERROR_LIMIT]
    with transaction.atomic():
        moved = _transition(job_id, ReportJobStatus.RUNNING, ReportJobStatus.FAILED,
                            finished_at=timezone.now(), error=reason, file="", sha256="", size=None,
                            page_count=None)
        job = ReportJob.objects.get(pk=job_id)
        if moved:
            audit_append(actor=actor, action="report.fail", target=job,
                         summary=f"Report {job.title} failed", changes={"error": detail})
    return job


def report_job_fail_queued(*, job_id: int, reason: str) -> None:
    """Used by the task when its retries ran out before the job could even start."""
    actor = Actor.system(task_id=f"report-{job_id}", label="reports")
    with transaction.atomic():
        if _transition(job_id, ReportJobStatus.QUEUED, ReportJobStatus.FAILED, finished_at=timezone.now(),
                       error=reason[:ERROR_LIMIT]):
            job = ReportJob.objects.get(pk=job_id)
            audit_append(actor=actor, action="report.fail", target=job, summary=f"Report {job.title} failed",
                         changes={"error": reason[:ERROR_LIMIT]})


def report_download_record(*, actor: Actor, job: ReportJob) -> None:
    """Downloads are audited: who fetched which report (and its hash)."""
    if job.status != ReportJobStatus.SUCCEEDED:
        raise ValidationError({"status": "This report has no file to download."})
    with transaction.atomic():
        audit_append(actor=actor, action="report.download", target=job,
                     summary=f"Downloaded report {job.title}", changes={"sha256": job.sha256})
