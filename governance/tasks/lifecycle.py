"""Celery tasks of the lifecycle capability: thin adapters that take ids and call one service.

Retries are for transient errors only (a store or target that did not answer), with
exponential backoff and jitter; the services claim their unit of work with compare-and-set
updates, so a redelivered message does nothing twice. Beat entries are in portal/celery.py.
"""

from __future__ import annotations

import random

from celery import shared_task

from governance import task_names
from governance.outbox import enqueue
from governance.services.deprovision import revocation_execute
from governance.services.killswitch import kill_switch_run
from governance.services.lifecycle import credentials_reconcile
from governance.services.provisioning import provisioning_execute
from governance.services.renewal import superseded_certificates_revoke
from governance.services.rotation import rotation_job_execute, rotation_schedule_due
from governance.services.rotation_batch import rotation_jobs_execute

MAX_RETRIES = 5


def backoff(retries: int) -> float:
    """30 s, 60 s, 120 s, ... with up to 50 % jitter, at most an hour."""
    delay = min(3600, 30 * 2**retries)
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


@shared_task(bind=True, name=task_names.ROTATION_JOB_RUN, max_retries=MAX_RETRIES)
def rotation_job_run(self, job_id: int) -> str:
    """One attempt of one rotation job; retried (as a new attempt) only when the store did not answer."""
    final = self.request.retries >= self.max_retries
    outcome = rotation_job_execute(job_id=job_id, task_id=self.request.id or "", final_attempt=final)
    if outcome.status == "retry":
        raise self.retry(countdown=backoff(self.request.retries))
    return outcome.status


@shared_task(bind=True, name=task_names.ROTATION_BATCH_RUN)
def rotation_batch_run(self, job_ids: list[int]) -> dict:
    """A sweep's chunk of jobs (two commits for the chunk); a transient failure hands its job to rotation_job_run."""
    outcomes = rotation_jobs_execute(job_ids=job_ids, task_id=self.request.id or "")
    for job_id in outcomes.get("retry", []):
        enqueue(rotation_job_run, job_id, countdown=backoff(0))
    return {status: len(ids) for status, ids in outcomes.items()}


@shared_task(name="governance.lifecycle.rotation_schedule")
def rotation_schedule_task() -> dict:
    """Beat: jobs for due rotations and certificate renewals."""
    return rotation_schedule_due()


@shared_task(bind=True, name=task_names.SUPERSEDED_REVOKE)
def superseded_revoke_task(self) -> dict:
    """Beat: revoke the certificates renewals replaced, once their overlap ended (each under a lease)."""
    return superseded_certificates_revoke(task_id=self.request.id or "")


@shared_task(name="governance.lifecycle.reconcile")
def reconcile_task() -> dict:
    """Beat: observe every managed credential in its store (observed versions and times, broken references)."""
    return credentials_reconcile()


@shared_task(bind=True, name=task_names.KILL_SWITCH_RUN, max_retries=3)
def kill_switch_run_task(self, activation_id: int) -> str:
    """Carry out a kill switch's (or drill's, or reactivation's) steps."""
    return kill_switch_run(activation_id=activation_id, task_id=self.request.id or "").status


@shared_task(bind=True, name=task_names.REVOCATION_RUN, max_retries=MAX_RETRIES)
def revocation_run_task(self, revocation_id: int) -> str:
    final = self.request.retries >= self.max_retries
    outcome = revocation_execute(revocation_id=revocation_id, task_id=self.request.id or "", final_attempt=final)
    if outcome == "retry":
        raise self.retry(countdown=backoff(self.request.retries))
    return outcome


@shared_task(name=task_names.REVOCATIONS_RUN)
def revocations_run_task(revocation_ids: list[int]) -> dict:
    """A deprovisioning's revocations, one after the other; transient failures go to revocation_run_task."""
    counts: dict[str, int] = {}
    for revocation_id in revocation_ids:
        outcome = revocation_execute(revocation_id=revocation_id, final_attempt=False)
        if outcome == "retry":
            enqueue(revocation_run_task, revocation_id, countdown=backoff(0))
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


@shared_task(bind=True, name=task_names.PROVISIONING_RUN, max_retries=MAX_RETRIES)
def provisioning_run_task(self, provisioning_id: int) -> str:
    """One attempt of a provisioning run; retried (after undoing what it made) only when a system did not answer."""
    final = self.request.retries >= self.max_retries
    outcome = provisioning_execute(provisioning_id=provisioning_id, task_id=self.request.id or "",
                                   final_attempt=final)
    if outcome == "retry":
        raise self.retry(countdown=backoff(self.request.retries))
    return outcome
