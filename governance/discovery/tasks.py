"""Celery tasks of discovery: thin adapters. One message per run (a run is one source, read in one go).

governance.discovery.run runs one requested run (its row is leased, so a redelivered message changes
nothing twice); governance.discovery.schedule (beat, portal/celery.py) requests the runs that are due.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from governance import task_names
from governance.discovery.services import discovery_run_execute, discovery_runs_schedule


@shared_task(bind=True, name=task_names.DISCOVERY_RUN, autoretry_for=(OperationalError,), retry_backoff=True,
             retry_jitter=True, max_retries=3)
def discovery_run_task(self, run_id: int) -> dict:
    run = discovery_run_execute(run_id=run_id, task_id=self.request.id or "")
    return {"discovery_run": run.pk, "status": run.status, "counts": run.counts}


@shared_task(name=task_names.DISCOVERY_SCHEDULE, autoretry_for=(OperationalError,), retry_backoff=True,
             retry_jitter=True, max_retries=3)
def discovery_schedule_task() -> dict:
    return {"requested": discovery_runs_schedule()}
