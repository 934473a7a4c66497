"""Rotating a sweep's chunk of jobs with two commits in all, instead of two per rotation.

The same rules as rotation_job_execute (services.rotation), applied to many jobs at once: the
jobs are claimed (SELECT ... FOR UPDATE SKIP LOCKED, then one UPDATE: attempt_count counts the
attempt) in one transaction; each connector runs outside any transaction; the proven results,
their attempt rows and one audit event per credential are recorded in one more transaction. A
failure is recorded for its own job as rotation_job_execute records it (a transient one goes
back to pending, for rotation_job_run to retry). If the worker dies between the connector calls
and the final commit, the jobs stay claimed until their lease ends; the next claim records the
lost attempt as failed (close_lost_attempts) and runs the job again, and reconciliation observes
the versions already written.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from fast_update.fast import fast_update

from governance.choices import CredentialStatus
from governance.connectors import registry
from governance.connectors.base import ConnectorError
from governance.models.lifecycle import (
    AttemptOutcome,
    CredentialObservation,
    ObservationState,
    RotationAttempt,
    RotationJob,
    RotationStatus,
)
from governance.services.lifecycle import credential_record_changes, lifecycle_actor
from governance.services.rotation import _finish, _record_failure, credential_values, lease

logger = logging.getLogger(__name__)


LOST_ATTEMPT = ("The worker stopped during this attempt; its outcome is unknown (the next reconciliation observes "
                "what the store holds).")


def close_lost_attempts(jobs: list[RotationJob], now) -> None:
    """Jobs claimed again after their lease ran out: record the attempt that never finished as failed."""
    for job in jobs:
        closed = RotationAttempt.objects.filter(job=job, number=job.attempt_count, outcome=AttemptOutcome.RUNNING) \
            .update(outcome=AttemptOutcome.FAILED, finished_at=now, error=LOST_ATTEMPT, error_code="lost")
        if not closed and not RotationAttempt.objects.filter(job=job, number=job.attempt_count).exists():
            RotationAttempt.objects.create(job=job, number=job.attempt_count, started_at=job.claimed_at or now,
                                           finished_at=now, outcome=AttemptOutcome.FAILED, error=LOST_ATTEMPT,
                                           error_code="lost")


def _claim_all(job_ids: list[int], now) -> list[RotationJob]:
    """Claim the jobs that are free; their attempt rows are written with the outcome (one INSERT for all)."""
    with transaction.atomic():
        claimable = RotationJob.objects.filter(pk__in=job_ids).filter(
            Q(status=RotationStatus.PENDING) | Q(status=RotationStatus.RUNNING, claimed_at__lt=now - lease()))
        rows = list(claimable.select_for_update(skip_locked=True).values_list("pk", "status"))
        if not rows:
            return []
        close_lost_attempts(list(RotationJob.objects.filter(pk__in=[pk for pk, status in rows if status == "running"])),
                            now)
        RotationJob.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            status=RotationStatus.RUNNING, claimed_at=now, attempt_count=F("attempt_count") + 1, updated_at=now)
        return list(RotationJob.objects.filter(pk__in=[pk for pk, _ in rows]).select_related(
            "credential__store", "credential__system__connector_target").order_by("pk"))


def rotation_jobs_execute(*, job_ids: list[int], task_id: str = "") -> dict[str, list[int]]:
    """One attempt for each of these jobs. Returns job ids by outcome (succeeded, failed, retry, ...)."""
    now = timezone.now()
    outcomes: dict[str, list[int]] = {}
    claimed = _claim_all(job_ids, now)
    outcomes["skipped"] = sorted(set(job_ids) - {job.pk for job in claimed})
    successes = []
    for job in claimed:
        credential = job.credential
        if credential.status != CredentialStatus.ACTIVE:
            outcome = _finish(job, _attempt(job, now, task_id), now, status=RotationStatus.CANCELLED,
                              outcome=AttemptOutcome.FAILED, code="skipped",
                              error=f"{credential} is {credential.status}: not rotated.")
        else:
            try:
                connector, ref = registry.connector_for(credential)
                successes.append((job, connector.rotate(ref), connector.kind))
                continue
            except ConnectorError as error:
                outcome = _record_failure(job, _attempt(job, now, task_id), now, reason=error.reason,
                                          code=error.code, retry=error.transient)
            except Exception:
                logger.exception("rotation job %s failed unexpectedly", job.pk)
                outcome = _record_failure(job, _attempt(job, now, task_id), now, code="internal", retry=False,
                                          reason="Unexpected error in Steward; see the server log.")
        outcomes.setdefault(outcome.status, []).append(job.pk)
    if successes:
        _record_successes(successes, now, task_id)
        outcomes.setdefault("succeeded", []).extend(job.pk for job, *_ in successes)
    return outcomes


def _attempt(job: RotationJob, started_at, task_id: str) -> RotationAttempt:
    return RotationAttempt.objects.create(job=job, number=job.attempt_count, started_at=started_at, task_id=task_id)


def _record_successes(successes, claimed_at, task_id: str) -> None:
    actor = lifecycle_actor(task_id or "rotation-batch")
    finished = timezone.now()
    with transaction.atomic():
        credential_record_changes(actor=actor, changes=[
            (job.credential, credential_values(result), "credential.rotate",
             f"Rotated {job.credential} through {kind}: version {result.version} (job #{job.pk})")
            for job, result, kind in successes])
        # The observation is a snapshot of the store: replaced whole (two statements for the batch).
        credential_ids = [job.credential_id for job, *_ in successes]
        CredentialObservation.objects.filter(credential_id__in=credential_ids).delete()
        CredentialObservation.objects.bulk_create([CredentialObservation(
            credential_id=job.credential_id, state=ObservationState.OK, observed_at=result.rotated_at,
            observed_version=result.version, observed_rotated_at=result.rotated_at,
            observed_expires_at=result.expires_at, store_state="active", detail=result.proof[0][:1000],
        ) for job, result, _kind in successes])
        RotationAttempt.objects.bulk_create([RotationAttempt(
            job=job, number=job.attempt_count, started_at=claimed_at, finished_at=finished, task_id=task_id,
            outcome=AttemptOutcome.SUCCEEDED, new_version=result.version, proof=list(result.proof),
        ) for job, result, _kind in successes])
        # Compare-and-set: a job whose lease ran out and that another worker claimed is left to it.
        still_mine = set(RotationJob.objects.select_for_update().filter(
            pk__in=[job.pk for job, *_ in successes], status=RotationStatus.RUNNING, claimed_at=claimed_at,
        ).values_list("pk", flat=True))
        finished_jobs = []
        for job, result, _kind in successes:
            if job.pk in still_mine:
                job.status, job.finished_at, job.updated_at = RotationStatus.SUCCEEDED, finished, finished
                job.last_error, job.new_version = "", result.version
                finished_jobs.append(job)
        fast_update(RotationJob.objects.all(), finished_jobs,
                    ["status", "finished_at", "updated_at", "last_error", "new_version"], batch_size=500)
