"""Celery tasks of the approval engine: thin adapters around the services."""

from celery import shared_task
from django.db import OperationalError

from governance.services.approvals_sweep import approval_requests_sweep

SWEEP_TASK_NAME = "governance.approvals.sweep"


@shared_task(name=SWEEP_TASK_NAME, autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True,
             max_retries=3)
def approval_requests_sweep_task() -> dict:
    """Reminders, escalation and expiry of pending requests (idempotent: compare-and-set stamps)."""
    return approval_requests_sweep()
