"""Celery tasks of the checks capability: the periodic sweep and the daily posture snapshot.

One message per sweep: the sweep itself is set-based (a query per check, bulk writes), so
splitting it into per-object messages would only add broker traffic. Beat entries live in
portal/celery.py.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from governance import task_names
from governance.services.posture import posture_snapshot_take
from governance.services.sweep import sweep_run, sweep_run_resume

SWEEP_TASK_NAME = task_names.CHECKS_SWEEP
SNAPSHOT_TASK_NAME = "governance.checks.posture_snapshot"


@shared_task(
    name=SWEEP_TASK_NAME,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def sweep_task(checks: list[str] | None = None, trigger: str = "beat") -> dict:
    """Run a sweep (all checks, or the codes given) and return its run's id, status and errors."""
    run = sweep_run(checks=checks or None, trigger=trigger)
    return {"sweep_run": run.pk, "status": run.status, "errors": run.errors}


@shared_task(
    name=SNAPSHOT_TASK_NAME,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def posture_snapshot_task() -> dict:
    """Record today's posture (estate and per team, per check) for the trend charts; idempotent per day."""
    return {"rows": posture_snapshot_take()}


@shared_task(
    name=task_names.SWEEP_NOW_RUN,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def sweep_now_task(run_id: int) -> dict:
    """Run a queued sweep (services.sweep_now): claimed under its lease, so a second delivery does nothing."""
    run = sweep_run_resume(run_id=run_id, task_id=sweep_now_task.request.id or "")
    return {"sweep_run": run.pk, "status": run.status, "errors": run.errors}
