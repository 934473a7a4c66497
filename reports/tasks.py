"""Celery adapter: take the job id, call the one service. Retries cover transient database errors
before the job is claimed; a render that fails is recorded on the row by the service itself."""

import random

from celery import shared_task
from django.db import InterfaceError, OperationalError

from reports.services import RUN_REPORT_JOB_TASK, report_job_fail_queued, report_job_run

MAX_RETRIES = 3


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES, name=RUN_REPORT_JOB_TASK)
def run_report_job(self, job_id: int) -> str:
    try:
        job = report_job_run(job_id=job_id)
    except (OperationalError, InterfaceError) as exc:
        if self.request.retries >= MAX_RETRIES:
            report_job_fail_queued(job_id=job_id, reason=f"Database unavailable: {exc}")
            raise
        raise self.retry(exc=exc, countdown=5 * 2 ** self.request.retries + random.uniform(0, 3)) from exc
    return job.status if job is not None else "already-claimed"
