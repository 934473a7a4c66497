"""Writes of the reports app: request a report, run it (in a Celery worker), record a download.

A report is never rendered inside a request: report_job_create() stores a queued ReportJob and
enqueues the task after commit; report_job_run() claims the row under a lease (governance.leases;
compare-and-set, so a redelivered message renders nothing twice; progress is the heartbeat, and
the lease recovery re-renders a job whose worker was lost), renders into a temporary file and publishes it only
when the whole render succeeded. A failed render leaves a failed row with its reason and no file.
"""

from __future__ import annotations

import logging
import os
import tempfile
import traceback
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import leases, outbox
from governance.audit import Actor, audit_append
from governance.audit_anchor import checkpoint_after_commit
from governance.models import ActorKind
from governance.transitions import compare_and_set
from reports import builders
from reports.models import TRANSITIONS, ReportJob, ReportJobStatus
from reports.parameters import normalise_parameters, scope_of
from reports.scopes import SYSTEM, TEAM, ensure_may_report_on

logger = logging.getLogger(__name__)

REPORTS_SUBDIR = "reports"
ERROR_LIMIT = 2000

# The report task registers under this name (reports.tasks); services enqueue by it, never importing the tasks.
RUN_REPORT_JOB_TASK = "reports.tasks.run_report_job"


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
            outbox.enqueue(RUN_REPORT_JOB_TASK, job.pk)
    return job


def _transition(job_id: int, old: str, new: str, *, lease: leases.Lease | None = None, **fields) -> bool:
    """Compare-and-set along the declared transition table; True if this caller moved the row.

    From running, only the holder of the job's lease may move it (and the lease is released).
    """
    if new not in TRANSITIONS[old]:
        raise ValueError(f"a report job cannot go from {old} to {new}")
    if lease is not None:
        return lease.release(target=new, **fields)
    return compare_and_set(ReportJob, job_id, field="status", sources=[old], target=new, **fields)


def _claim(job_id: int) -> leases.Lease | None:
    """Queued -> running under a lease; or take over a running job whose lease lapsed (its worker died)."""
    now = timezone.now()
    lease = leases.lease_claim(ReportJob, job_id, sources=[ReportJobStatus.QUEUED, ReportJobStatus.RUNNING],
                               running=ReportJobStatus.RUNNING, owner=leases.lease_owner(f"report-{job_id}"),
                               started_at=now, progress=1)
    if lease is not None and lease.took_over:
        for leftover in _reports_dir().glob(f".{job_id}-*.pdf.partial"):
            leftover.unlink(missing_ok=True)
    return lease


def report_job_set_progress(*, job_id: int, percent: int, lease: leases.Lease | None = None) -> None:
    """Progress is informational (no audit): written outside any transaction so polling sees it.

    With the job's lease, it is also the render's heartbeat: the lease is renewed as progress is made.
    """
    ReportJob.objects.filter(pk=job_id, status=ReportJobStatus.RUNNING).update(
        progress=max(0, min(99, int(percent)))
    )
    if lease is not None:
        lease.heartbeat()


def _reports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / REPORTS_SUBDIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def report_job_run(*, job_id: int) -> ReportJob | None:
    """Render a queued job. Returns the job, or None when another worker already claimed it."""
    lease = _claim(job_id)
    if lease is None:
        return None
    return _render(job_id, lease)


def _render(job_id: int, lease: leases.Lease) -> ReportJob:
    """Render a job this lease holds; publish the file and the hash only if the whole render succeeded."""
    # WeasyPrint loads Pango at import: only report workers pay for it
    from reports.rendering import write_pdf

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
                progress=lambda pct: report_job_set_progress(job_id=job.pk, percent=pct, lease=lease),
            )
            report_job_set_progress(job_id=job.pk, percent=80, lease=lease)
            result = write_pdf(html=built.html, metadata=built.metadata, attachments=built.attachments,
                               target=partial_path)
        final_path = reports_dir / f"{job.pk}-{built.file_stem}.pdf"
        if not lease.holds():  # taken over while rendering: the file name is the new holder's to publish
            raise leases.LeaseLost("the job's lease was taken over while it rendered")
        os.replace(partial_path, final_path)
        relative = f"{REPORTS_SUBDIR}/{final_path.name}"
        with transaction.atomic():
            if not _transition(job.pk, ReportJobStatus.RUNNING, ReportJobStatus.SUCCEEDED, lease=lease,
                               finished_at=timezone.now(), progress=100, file=relative, sha256=result.sha256,
                               size=result.size, page_count=result.page_count, error=""):
                raise leases.LeaseLost("the job's lease was taken over before its render finished")
            job.refresh_from_db()
            audit_append(actor=actor, action="report.generate", target=job,
                         summary=f"Generated report {job.title}, SHA-256 {result.sha256}",
                         changes={"sha256": result.sha256, "file": relative, "size": result.size,
                                  "pages": result.page_count, "kind": job.kind, "parameters": job.parameters})
            checkpoint_after_commit(reason=f"report {job.pk}")  # every report anchors the chain it reports on
        return job
    except Exception as exc:  # the job records any failure; nothing partial is left behind
        if isinstance(exc, leases.LeaseLost):  # the new holder renders it; this worker writes nothing more
            logger.warning("report job %s: %s", job_id, exc)
            partial_path.unlink(missing_ok=True)  # the published name may be the new holder's file now
            return ReportJob.objects.get(pk=job_id)
        logger.exception("report job %s failed", job_id)
        for path in (partial_path, final_path):
            if path is not None and path.exists():
                path.unlink()
        return _fail(job_id, actor, exc, lease=lease)


def report_jobs_recover(job_ids: list[int]) -> dict:
    """Lease recovery: a job whose renderer was lost is taken over and rendered again from the start.

    The render writes nothing but its own file until it succeeds, so rendering again does the work
    once; a job taken over too often is failed with the reason instead.
    """
    counts: dict[str, int] = {}
    for job_id in job_ids:
        lease = _claim(job_id)
        if lease is None:
            continue
        if lease.exhausted():
            actor = Actor.system(task_id=f"report-{job_id}", label="reports")
            status = _fail(job_id, actor, leases.LeaseLost(
                f"the worker rendering it was lost {lease.takeovers[job_id]} times"), lease=lease).status
        else:
            status = _render(job_id, lease).status
        counts[status] = counts.get(status, 0) + 1
    return counts


def _fail(job_id: int, actor: Actor, exc: BaseException, *, lease: leases.Lease) -> ReportJob:
    reason = f"{type(exc).__name__}: {exc}".strip()[:ERROR_LIMIT]
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:ERROR_LIMIT]
    with transaction.atomic():
        moved = _transition(job_id, ReportJobStatus.RUNNING, ReportJobStatus.FAILED, lease=lease,
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
