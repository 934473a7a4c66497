"""Rotating a sweep's chunk of jobs with two commits in all, instead of two per rotation.

The same rules as rotation_job_execute (services.rotation), applied to many jobs at once: the
jobs are claimed under one lease (governance.leases; SKIP LOCKED, attempt_count counts the
attempt) in one transaction; each connector runs outside any transaction, with a heartbeat
between them; the proven results, their attempt rows and one audit event per credential are
recorded in one more transaction, each job's release guarded by the lease token. The connectors
run inside one registry session for the chunk: a PostgreSQL target opens its admin connection
once, not once per job; a failed job rolls its own transaction back, and a broken connection is
replaced for the next job. Each rotation is begun (the change made) before the previous one's
proof is waited for (rotation_begin), so a PostgreSQL rotation's sign-ins run while the next
role's password changes; two jobs on the same account or store path are never overlapped. A
failure is recorded for its own job as rotation_job_execute records it (a transient one goes
back to pending, for rotation_job_run to retry). If the worker dies between the connector calls
and the final commit, the lease lapses and the recovery task (rotation_jobs_recover) takes the
jobs over: each reads its store's current version first, so the versions the dead worker wrote
are recorded, and only the jobs it had not reached are rotated.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from governance import leases, outbox, task_names
from governance.choices import CredentialStatus
from governance.connectors import registry
from governance.connectors.base import ConnectorError
from governance.models.deliveries import CredentialDelivery
from governance.models.lifecycle import (
    AttemptOutcome,
    CredentialObservation,
    ObservationState,
    RotationAttempt,
    RotationJob,
    RotationStatus,
)
from governance.services.lifecycle import credential_record_changes, lifecycle_actor
from governance.services.renewal import renewal_record
from governance.services.rotation import (
    credential_values,
    finish_attempt,
    record_failure,
    rotation_begin,
    rotation_deliver,
    rotation_jobs_claim,
)

logger = logging.getLogger(__name__)
RESEND_DELAY_SECONDS = 30  # a recovered job that must be tried again waits as a first retry would

RECOVERY_TASK_ID = "lease-recovery"


def rotation_jobs_execute(*, job_ids: list[int], task_id: str = "") -> dict[str, list[int]]:
    """One attempt for each of these jobs. Returns job ids by outcome (succeeded, failed, retry, lost, ...)."""
    lease = rotation_jobs_claim(job_ids, task_id=task_id)
    outcomes: dict[str, list[int]] = {"skipped": sorted(set(job_ids) - set(lease.pks if lease else ()))}
    if lease is None:
        return outcomes
    now = lease.claimed_at
    claimed = list(RotationJob.objects.filter(pk__in=lease.pks).select_related(
        "credential__store", "credential__system__connector_target").order_by("pk"))
    successes: list = []
    # One session for the chunk: a PostgreSQL target's admin connection serves all its rotations here.
    with registry.sessions():
        pending = None  # (job, finish): the rotation made last, its proof still running
        for position, job in enumerate(claimed):
            try:
                lease.heartbeat()
            except leases.LeaseLost:
                outcomes.setdefault("lost", []).extend(j.pk for j in claimed[position:])
                break
            credential = job.credential
            if credential.status != CredentialStatus.ACTIVE:
                outcome = finish_attempt(job, _attempt(job, now, task_id), lease, status=RotationStatus.CANCELLED,
                                         outcome=AttemptOutcome.FAILED, code="skipped",
                                         error=f"{credential} is {credential.status}: not rotated.")
                outcomes.setdefault(outcome.status, []).append(job.pk)
                continue
            if pending is not None and _same_account(pending[0], job):  # its proof must not see this change
                _settle(pending, lease, now, task_id, successes, outcomes)
                pending = None
            try:
                began = (job, rotation_begin(job, lease, deliver=False))
            except Exception as error:  # noqa: BLE001 - recorded for this job alone, as _settle does
                _record_error(job, error, lease, now, task_id, outcomes)
                continue
            # This rotation is made: the previous one's proof ran meanwhile; its result is taken now.
            if pending is not None:
                _settle(pending, lease, now, task_id, successes, outcomes)
            pending = began
        if pending is not None:
            _settle(pending, lease, now, task_id, successes, outcomes)
    successes = _deliver(successes, lease, now, task_id, outcomes)
    if successes:
        recorded = _record_successes(successes, lease, task_id)
        outcomes.setdefault("succeeded", []).extend(pk for pk in recorded)
        lost = [job.pk for job, *_ in successes if job.pk not in recorded]
        if lost:
            outcomes.setdefault("lost", []).extend(lost)
    return outcomes


def _deliver(successes: list, lease: leases.Lease, now, task_id: str, outcomes: dict) -> list:
    """The proven values go to the CI variables that consume them (one query finds which credentials have
    any, after every proof, instead of one per job); a failed push fails its job as rotate_or_resume's would."""
    if not successes:
        return successes
    with_deliveries = set(CredentialDelivery.objects.filter(
        credential_id__in=[job.credential_id for job, *_ in successes]).values_list("credential_id", flat=True))
    delivered = []
    for job, result, kind in successes:
        if job.credential_id not in with_deliveries:
            delivered.append((job, result, kind))
            continue
        try:
            delivered.append((job, rotation_deliver(job, result), kind))
        except Exception as error:  # noqa: BLE001 - recorded for this job alone (DeliveryFailed: rotated, proven)
            _record_error(job, error, lease, now, task_id, outcomes)
    return delivered


def _same_account(earlier: RotationJob, later: RotationJob) -> bool:
    a, b = earlier.credential, later.credential
    return (a.system_id, a.identifier) == (b.system_id, b.identifier) or (a.store_id, a.store_path) == (
        b.store_id, b.store_path)


def _settle(pending, lease: leases.Lease, now, task_id: str, successes: list, outcomes: dict) -> None:
    """Wait for a begun rotation's proof: a proven result joins the successes, a failure is recorded."""
    job, finish = pending
    try:
        successes.append((job, *finish()))
    except Exception as error:  # noqa: BLE001 - recorded for this job alone
        _record_error(job, error, lease, now, task_id, outcomes)


def _record_error(job: RotationJob, error: Exception, lease: leases.Lease, now, task_id: str,
                  outcomes: dict) -> None:
    """A failed rotation, recorded as rotation_job_execute records one (a transient one back to pending)."""
    if isinstance(error, ConnectorError):
        outcome = record_failure(job, _attempt(job, now, task_id), lease, reason=error.reason, code=error.code,
                                 retry=error.transient, rotated=getattr(error, "rotation", None))
    else:
        logger.error("rotation job %s failed unexpectedly", job.pk, exc_info=error)
        outcome = record_failure(job, _attempt(job, now, task_id), lease, code="internal", retry=False,
                                 reason="Unexpected error in Steward; see the server log.")
    outcomes.setdefault(outcome.status, []).append(job.pk)


def rotation_jobs_recover(job_ids: list[int]) -> dict:
    """Lease recovery: take over jobs whose worker was lost and finish them here, each once.

    Transient failures go back to pending and are sent again, with the unit task's backoff.
    """
    outcomes = rotation_jobs_execute(job_ids=job_ids, task_id=RECOVERY_TASK_ID)
    if outcomes.get("retry"):
        with transaction.atomic():
            _resend(outcomes["retry"])
    return {status: len(ids) for status, ids in outcomes.items() if ids}


def _resend(job_ids: list[int]) -> None:
    """The one place the lease recovery sends rotation work to the workers again (after commit)."""
    for job_id in job_ids:
        outbox.enqueue(task_names.ROTATION_JOB_RUN, job_id, dedupe_key=f"rotation-recovery-{job_id}",
                       countdown=RESEND_DELAY_SECONDS)


def _attempt(job: RotationJob, started_at, task_id: str) -> RotationAttempt:
    return RotationAttempt.objects.create(job=job, number=job.attempt_count, started_at=started_at, task_id=task_id)


def _record_successes(successes, lease: leases.Lease, task_id: str) -> set[int]:
    """Record the proven rotations of the jobs this lease still holds; returns their ids."""
    actor = lifecycle_actor(task_id or "rotation-batch")
    finished = timezone.now()
    with transaction.atomic():
        # Compare-and-set on the lease token: a job whose lease lapsed and that another worker took over
        # is left to it (it reads the version written here back and records it).
        released = lease.release_many({
            job.pk: {"finished_at": finished, "last_error": "", "new_version": result.version}
            for job, result, _kind in successes}, target=RotationStatus.SUCCEEDED)
        mine = [(job, result, kind) for job, result, kind in successes if job.pk in released]
        if not mine:
            return set()
        for job, result, kind in mine:
            if kind == "openbao_pki":  # before the change: the certificate it supersedes
                renewal_record(credential=job.credential, result=result, job_id=job.pk)
        credential_record_changes(actor=actor, changes=[
            (job.credential, credential_values(result), "credential.rotate",
             f"Rotated {job.credential} through {kind}: version {result.version} (job #{job.pk})")
            for job, result, kind in mine])
        # The observation is a snapshot of the store: replaced whole (two statements for the batch).
        credential_ids = [job.credential_id for job, *_ in mine]
        CredentialObservation.objects.filter(credential_id__in=credential_ids).delete()
        CredentialObservation.objects.bulk_create([CredentialObservation(
            credential_id=job.credential_id, state=ObservationState.OK, observed_at=result.rotated_at,
            observed_version=result.version, observed_rotated_at=result.rotated_at,
            observed_expires_at=result.expires_at, store_state="active", detail=result.proof[0][:1000],
        ) for job, result, _kind in mine])
        RotationAttempt.objects.bulk_create([RotationAttempt(
            job=job, number=job.attempt_count, started_at=lease.claimed_at, finished_at=finished, task_id=task_id,
            outcome=AttemptOutcome.SUCCEEDED, new_version=result.version, proof=list(result.proof),
        ) for job, result, _kind in mine])
    return {job.pk for job, *_ in mine}
