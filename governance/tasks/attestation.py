"""Celery task of owner attestation: the periodic sweep (beat entry in portal/celery.py)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from governance.services.attestation import attestation_campaigns_sweep


@shared_task(
    name="governance.tasks.attestation.attestation_sweep",
    autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=5,
)
def attestation_sweep() -> dict:
    """Open scheduled campaigns, remind, escalate, apply consequences, close; idempotent by design."""
    return attestation_campaigns_sweep()
