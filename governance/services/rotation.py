"""Rotation and renewal: jobs with a unique key (credential, due date), attempts, proof, failure handling.

A job is claimed under a lease (governance.leases: pending -> running, or a running job whose lease
lapsed is taken over), so a redelivered or overlapping task changes nothing twice, and every write
that finishes it is guarded by the lease's token. A job tried again first reads its store's current
version, so a version a lost worker wrote is recorded, not overwritten by a second one. The connector
runs outside any transaction; its proven result and the audit event are then written in one transaction.
Transient failures (the store did not answer) go back to pending for the task to retry; any other
failure, or the last retry, fails the job, notifies the owner after commit and asks the sweep to
re-evaluate the rotation checks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Min, OuterRef, Q
from django.utils import timezone

from governance import leases, task_names
from governance.audit import Actor, audit_append
from governance.choices import CredentialKind, CredentialStatus, PrivilegeLevel, SecretStoreKind
from governance.connectors import registry
from governance.connectors.base import ConnectorError, RotationResult
from governance.models import Credential
from governance.models.approvals import ApprovalPolicy
from governance.models.lifecycle import (
    ROTATION_OPEN,
    AttemptOutcome,
    CredentialObservation,
    ObservationState,
    RotationAttempt,
    RotationJob,
    RotationStatus,
    RotationTrigger,
)
from governance.models.notifications import NotificationKind
from governance.outbox import enqueue
from governance.selectors.lifecycle import with_observed_expiry, with_observed_rotation
from governance.services.common import ensure_can_change
from governance.services.deliveries import deliveries_after_rotation
from governance.services.lifecycle import (
    ROTATION_FAILED_CHECK,
    approval_granted,
    credential_record_change,
    lifecycle_actor,
    notify_owner,
    request_sweep,
)
from governance.services.renewal import renewal_record
from governance.services.webhooks import webhook_event_emit
from governance.transitions import compare_and_set

logger = logging.getLogger(__name__)

PRIVILEGED_ROTATION_ACTION = "privileged_rotation"
# Stores whose credentials rotate on schedule (certificates renew instead, in OpenBao PKI).
ROTATED_STORE_KINDS = sorted(registry.CONNECTOR_STORE_KINDS - {SecretStoreKind.OPENBAO_PKI})
BATCH_SIZE = 50


def renew_before_days() -> int:
    return int(settings.STEWARD_CERT_RENEW_BEFORE_DAYS)


def rotation_lead_days() -> int:
    return int(settings.STEWARD_ROTATION_LEAD_DAYS)


@dataclass(frozen=True)
class JobOutcome:
    status: str  # succeeded, failed, retry, skipped, cancelled
    job_id: int
    reason: str = ""


# Who must approve ------------------------------------------------------------------------------

def rotation_requires_approval(credential: Credential) -> bool:
    """A privileged credential rotates only through an approved request when its approval policy gates it.

    The policy is the credential's own approval path (those of the workflows that use it) or the
    default policy of the "privileged_rotation" action.
    """
    if credential.privilege_level != PrivilegeLevel.ADMIN:
        return False

    own = ApprovalPolicy.objects.filter(workflows__bindings__credential=credential)
    if any(PRIVILEGED_ROTATION_ACTION in (p.actions or []) for p in own):
        return True
    return any(PRIVILEGED_ROTATION_ACTION in (p.default_for_actions or []) for p in ApprovalPolicy.objects.all())


# Creating jobs ---------------------------------------------------------------------------------

def _enqueue(job_ids: list[int]) -> None:
    for start in range(0, len(job_ids), BATCH_SIZE):
        chunk = job_ids[start:start + BATCH_SIZE]
        enqueue(task_names.ROTATION_BATCH_RUN, chunk)


def rotation_request(*, actor: Actor, credential: Credential, now: dt.datetime | None = None) -> RotationJob:
    """A person asks for a rotation now: a job due today (the same job if one is already open)."""
    now = now or timezone.now()
    with transaction.atomic():
        credential = (Credential.objects.select_for_update(of=("self",))
                      .select_related("store", "system__connector_target").get(pk=credential.pk))
        ensure_can_change(actor, credential)
        if credential.status != CredentialStatus.ACTIVE:
            raise ValidationError({"status": f"{credential} is {credential.get_status_display().lower()}: only an "
                                             "active credential is rotated."})
        if not registry.connector_kind(credential):
            raise ValidationError({"store": f"No connector can rotate {credential}: its store is not one Steward "
                                            "acts on. Rotate it by hand and record the new version."})
        existing = RotationJob.objects.filter(credential=credential, due_on=now.date()).first()
        if existing is not None:
            if existing.status in ROTATION_OPEN:
                return existing
            raise ValidationError({"credential": f"{credential} already had a rotation today (job #{existing.pk}, "
                                                 f"{existing.get_status_display().lower()}). Try again tomorrow."})
        trigger = RotationTrigger.RENEWAL if credential.kind == CredentialKind.CERTIFICATE else RotationTrigger.MANUAL
        status = RotationStatus.AWAITING_APPROVAL if rotation_requires_approval(credential) else RotationStatus.PENDING
        job = RotationJob.objects.create(credential=credential, due_on=now.date(), trigger=trigger, status=status,
                                         requested_by=actor.person)
        audit_append(actor=actor, action="rotation.request", target=credential,
                     summary=f"Rotation of {credential} requested (job #{job.pk}"
                             + (", awaiting approval)" if status == RotationStatus.AWAITING_APPROVAL else ")"),
                     changes={"rotation_job": {"before": None, "after": job.pk}})
        if status == RotationStatus.PENDING:
            _enqueue([job.pk])
    return job


def _create_jobs(credential_ids: list[int], *, due_on: dt.date, trigger: str, actor: Actor) -> list[int]:
    """One job per credential for this date; existing keys are left alone (idempotent)."""
    if not credential_ids:
        return []
    approval = {c.pk for c in Credential.objects.filter(pk__in=credential_ids, privilege_level=PrivilegeLevel.ADMIN)
                if rotation_requires_approval(c)}
    with transaction.atomic():
        RotationJob.objects.bulk_create([
            RotationJob(credential_id=pk, due_on=due_on, trigger=trigger,
                        status=RotationStatus.AWAITING_APPROVAL if pk in approval else RotationStatus.PENDING)
            for pk in credential_ids
        ], ignore_conflicts=True, batch_size=500)
        created = list(RotationJob.objects.filter(credential_id__in=credential_ids, due_on=due_on, trigger=trigger,
                                                  status=RotationStatus.PENDING, attempt_count=0)
                       .values_list("pk", flat=True))
        if created:
            audit_append(actor=actor, action="rotation.schedule", object_type="governance.rotationjob",
                         summary=f"{len(created)} {trigger} job(s) scheduled for {due_on}",
                         changes={"jobs": {"before": None, "after": len(created)}})
        _enqueue(created)
    return created


def _no_open_job():
    return ~Exists(RotationJob.objects.filter(credential=OuterRef("pk"), status__in=ROTATION_OPEN))


def credentials_due_for_rotation(*, now: dt.datetime):
    """Active credentials in OpenBao KV whose rotation (from observed times) falls due, without an open job."""
    horizon = now + dt.timedelta(days=rotation_lead_days())
    queryset = Credential.objects.filter(status=CredentialStatus.ACTIVE, store__kind__in=ROTATED_STORE_KINDS)
    return with_observed_rotation(queryset.exclude(kind=CredentialKind.CERTIFICATE)).filter(
        _no_open_job(), rotation_due_at__lte=horizon)


def certificates_due_for_renewal(*, now: dt.datetime):
    horizon = now + dt.timedelta(days=renew_before_days())
    queryset = Credential.objects.filter(status=CredentialStatus.ACTIVE, kind=CredentialKind.CERTIFICATE,
                                         store__kind=SecretStoreKind.OPENBAO_PKI)
    return with_observed_expiry(queryset).filter(_no_open_job()).filter(
        Q(effective_expires_at__lte=horizon) | Q(effective_expires_at__isnull=True))


def rotation_schedule_due(*, now: dt.datetime | None = None) -> dict:
    """The periodic sweep: jobs for due rotations and renewals, and a nudge for jobs left behind."""
    now = now or timezone.now()
    actor = lifecycle_actor("rotation-schedule")
    rotations = list(credentials_due_for_rotation(now=now).values_list("pk", flat=True))
    renewals = list(certificates_due_for_renewal(now=now).values_list("pk", flat=True))
    created = _create_jobs(rotations, due_on=now.date(), trigger=RotationTrigger.SCHEDULE, actor=actor)
    created += _create_jobs(renewals, due_on=now.date(), trigger=RotationTrigger.RENEWAL, actor=actor)
    # Jobs whose message was lost: send them again (a running job whose worker died is the lease recovery's).
    stale = list(RotationJob.objects.filter(status=RotationStatus.PENDING, updated_at__lt=now - leases.lease_duration())
                 .values_list("pk", flat=True))
    with transaction.atomic():
        _enqueue(stale)
    return {"rotations": len(rotations), "renewals": len(renewals), "scheduled": len(created),
            "requeued": len(stale)}


def rotation_job_approve(*, actor: Actor, credential: Credential, approval_request) -> RotationJob:
    """An approved privileged-rotation request releases the credential's job (creating one if needed)."""
    if not approval_granted(approval_request, action=PRIVILEGED_ROTATION_ACTION):
        raise ValidationError({"approval_request": "Only an approved privileged-rotation request releases it."})
    if actor.kind != "system":
        raise PermissionDenied("Rotations are released by the approvals engine.")
    now = timezone.now()
    with transaction.atomic():
        job, created = RotationJob.objects.get_or_create(
            credential=credential, due_on=now.date(),
            defaults={"trigger": RotationTrigger.MANUAL, "status": RotationStatus.PENDING,
                      "approval_request_id": approval_request.pk})
        if not created:
            released = compare_and_set(RotationJob, job.pk, field="status", sources=[RotationStatus.AWAITING_APPROVAL],
                                       target=RotationStatus.PENDING, approval_request_id=approval_request.pk)
            if not released and job.status not in ROTATION_OPEN:
                raise ValidationError({"credential": f"{credential} already had a rotation today."})
            job.refresh_from_db()
        audit_append(actor=actor, action="rotation.approve", target=credential,
                     summary=f"Rotation of {credential} approved (request #{approval_request.pk}, job #{job.pk})",
                     changes={"rotation_job": {"before": None, "after": job.pk}})
        _enqueue([job.pk])
    return job


# Running a job ---------------------------------------------------------------------------------

LOST_ATTEMPT = ("The worker stopped during this attempt (its lease lapsed); what it did in the store is read "
                "back before the job runs again.")
CLOCK_SKEW = dt.timedelta(seconds=60)  # between Steward's clock and the store's, when matching a lost write


class WorkerLost(ConnectorError):
    """The job was taken over too often after its worker was lost: it is failed, not tried again."""

    code = "lost"


def close_lost_attempts(jobs: list[RotationJob], now) -> None:
    """Jobs taken over after their lease lapsed (rows as they were before): record the attempt left unfinished."""
    for job in jobs:
        closed = RotationAttempt.objects.filter(job=job, number=job.attempt_count, outcome=AttemptOutcome.RUNNING) \
            .update(outcome=AttemptOutcome.FAILED, finished_at=now, error=LOST_ATTEMPT, error_code="lost")
        if not closed and not RotationAttempt.objects.filter(job=job, number=job.attempt_count).exists():
            RotationAttempt.objects.create(job=job, number=job.attempt_count, started_at=job.claimed_at or now,
                                           finished_at=now, outcome=AttemptOutcome.FAILED, error=LOST_ATTEMPT,
                                           error_code="lost")


def rotation_jobs_claim(job_ids: list[int], *, task_id: str = "") -> leases.Lease | None:
    """Claim the pending jobs, and take over the running ones whose lease lapsed, under one lease.

    Rows another worker is claiming are skipped (SKIP LOCKED), never waited for. A taken-over job's
    unfinished attempt is recorded as lost in the same transaction; attempt_count counts the new one.
    """
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        # As they were before the claim: the attempt a lost worker left unfinished is recorded from these.
        lapsed = {job.pk: job for job in RotationJob.objects.filter(
            leases.lapsed(now), pk__in=job_ids, status=RotationStatus.RUNNING).exclude(lease_token="")}
        lease = leases.lease_claim_many(
            RotationJob, job_ids, sources=[RotationStatus.PENDING, RotationStatus.RUNNING],
            running=RotationStatus.RUNNING, owner=leases.lease_owner(task_id), claimed_at=now,
            attempt_count=F("attempt_count") + 1)
        if lease is not None and lease.took_over:
            close_lost_attempts([lapsed[pk] for pk in lease.took_over if pk in lapsed], now)
    return lease


def rotate_or_resume(job: RotationJob, lease: leases.Lease) -> tuple[RotationResult, str]:
    """The connector's rotation; or, when an earlier attempt of the job may have written one, that one.

    A job tried before (its worker lost, or a transient failure after the write) first reads the
    store's current version: a version written since the job's first attempt began is recorded,
    not overwritten by a second one.
    """
    return rotation_begin(job, lease)()


def rotation_begin(job: RotationJob, lease: leases.Lease, *, deliver: bool = True,
                   ) -> Callable[[], tuple[RotationResult, str]]:
    """rotate_or_resume in two steps (the batch path starts the next rotation while this one's proof runs):
    the change is made now; the returned function waits for its proof, then delivers the proven value
    (deliver=False: the caller does, with rotation_deliver)."""
    connector, ref = registry.connector_for(job.credential)
    found = None
    if job.attempt_count > 1:
        first = RotationAttempt.objects.filter(job=job).aggregate(first=Min("started_at"))["first"]
        found = connector.rotation_resume(ref, since=(first or job.created_at) - CLOCK_SKEW)
    if found is None and lease.exhausted(job.pk):
        raise WorkerLost(f"The worker was lost {lease.takeovers[job.pk]} times during this rotation; it is "
                         "failed rather than tried again. Read the worker's log for what stopped it.")
    proven = (lambda: found) if found is not None else connector.rotate_begin(ref)

    def finish() -> tuple[RotationResult, str]:
        result = proven()
        return (rotation_deliver(job, result) if deliver else result), connector.kind

    return finish


def rotation_deliver(job: RotationJob, result: RotationResult) -> RotationResult:
    """The CI variables that consume the credential get the proven new value in this same job."""
    return deliveries_after_rotation(actor=lifecycle_actor(f"rotation-{job.pk}"), credential=job.credential,
                                     result=result, rotation_job_id=job.pk)


def rotation_job_execute(*, job_id: int, task_id: str = "", final_attempt: bool = True) -> JobOutcome:
    """Run one attempt of a job. Safe to call twice: only the lease holder acts."""
    with transaction.atomic():  # the claim and its attempt row commit together (one commit)
        lease = rotation_jobs_claim([job_id], task_id=task_id)
        if lease is None:
            return JobOutcome("skipped", job_id, "not pending (already done, running, or awaiting approval)")
        job = RotationJob.objects.select_related(
            "credential__store", "credential__system__connector_target", "credential__owner", "credential__team",
        ).get(pk=job_id)
        attempt = RotationAttempt.objects.create(job=job, number=job.attempt_count, started_at=lease.claimed_at,
                                                 task_id=task_id)
    credential = job.credential
    if credential.status != CredentialStatus.ACTIVE:
        return finish_attempt(job, attempt, lease, status=RotationStatus.CANCELLED, outcome=AttemptOutcome.FAILED,
                              error=f"{credential} is {credential.get_status_display().lower()}: not rotated.",
                              code="skipped")
    try:
        result, kind = rotate_or_resume(job, lease)
    except ConnectorError as error:
        retry = error.transient and not final_attempt
        return record_failure(job, attempt, lease, reason=error.reason, code=error.code, retry=retry,
                              rotated=getattr(error, "rotation", None))
    except Exception:  # a bug must not leave the job running until its lease ends
        logger.exception("rotation job %s failed unexpectedly", job_id)
        return record_failure(job, attempt, lease, reason="Unexpected error in Steward; see the server log.",
                              code="internal", retry=False)
    return _record_success(job, attempt, lease, result, kind)


def finish_attempt(job, attempt, lease, *, status, outcome, error="", code="", version="", proof=()) -> JobOutcome:
    """Release the job (running -> status) and record its attempt, only while this lease holds it."""
    finished = timezone.now()
    job_values = {"last_error": error[:1000]}
    if status != RotationStatus.PENDING:
        job_values["finished_at"] = finished
    if version:
        job_values["new_version"] = version
    with transaction.atomic(savepoint=False):
        if not lease.release(job.pk, target=status, **job_values):
            return JobOutcome("lost", job.pk, "the lease lapsed and another worker took the job over")
        RotationAttempt.objects.filter(pk=attempt.pk).update(
            outcome=outcome, finished_at=finished, error=error[:1000], error_code=code, new_version=version,
            proof=list(proof))
    label = {RotationStatus.PENDING: "retry"}.get(status, str(status))
    return JobOutcome(label, job.pk, error)


def credential_values(result: RotationResult) -> dict:
    """The credential fields a proven rotation sets."""
    values = {"last_rotated_at": result.rotated_at, "store_version": result.version}
    if result.identifier:
        values.update(identifier=result.identifier, issued_at=result.rotated_at)
    for name in ("store_path", "fingerprint", "expires_at"):
        if getattr(result, name):
            values[name] = getattr(result, name)
    return values


def _record_success(job, attempt, lease, result: RotationResult, connector_kind: str) -> JobOutcome:
    credential = job.credential
    values = credential_values(result)
    actor = lifecycle_actor(attempt.task_id or f"rotation-{job.pk}")
    try:
        with transaction.atomic():
            outcome = finish_attempt(job, attempt, lease, status=RotationStatus.SUCCEEDED,
                                     outcome=AttemptOutcome.SUCCEEDED, version=result.version, proof=result.proof)
            if outcome.status != RotationStatus.SUCCEEDED:
                return outcome  # taken over: the new holder reads this version back and records it
            if connector_kind == "openbao_pki":  # before the change: the certificate it supersedes
                renewal_record(credential=credential, result=result, job_id=job.pk)
            credential_record_change(
                actor=actor, credential=credential, values=values, action="credential.rotate",
                summary=f"Rotated {credential} through {connector_kind}: version {result.version} (job #{job.pk})")
            observed = {
                "state": ObservationState.OK, "observed_at": result.rotated_at, "observed_version": result.version,
                "observed_rotated_at": result.rotated_at, "observed_expires_at": result.expires_at,
                "store_state": "active", "detail": result.proof[0][:1000], "broken_since": None}
            if not CredentialObservation.objects.filter(credential=credential).update(**observed):
                CredentialObservation.objects.create(credential=credential, **observed)
    except IntegrityError:
        logger.exception("rotation job %s: the proven result could not be recorded", job.pk)
        return record_failure(job, attempt, lease, code="internal", retry=False, reason=(
            f"{credential} was rotated in its store (version {result.version}) but Steward could not record it; "
            "the next reconciliation will observe the new version."))
    return outcome


def record_failure(job, attempt, lease, *, reason: str, code: str, retry: bool,
                   rotated: RotationResult | None = None) -> JobOutcome:
    """A failed attempt: back to pending for a retry, or the job failed (audited, owner told, checks re-run).

    rotated: the credential was rotated and proven, but what followed failed (a push to a CI variable):
    the new version is recorded on the credential, since it is what the store holds, and the job fails.
    """
    credential = job.credential
    if retry:
        return finish_attempt(job, attempt, lease, status=RotationStatus.PENDING, outcome=AttemptOutcome.RETRYING,
                              error=reason, code=code)
    actor = lifecycle_actor(attempt.task_id or f"rotation-{job.pk}")
    with transaction.atomic():
        outcome = finish_attempt(job, attempt, lease, status=RotationStatus.FAILED, outcome=AttemptOutcome.FAILED,
                                 error=reason, code=code, version=rotated.version if rotated else "",
                                 proof=rotated.proof if rotated else ())
        if outcome.status != RotationStatus.FAILED:
            return outcome
        if rotated is not None:
            credential_record_change(
                actor=actor, credential=credential, values=credential_values(rotated), action="credential.rotate",
                summary=f"Rotated {credential}: version {rotated.version} (job #{job.pk}); its delivery failed")
        summary = f"Rotation of {credential} failed (job #{job.pk}, attempt {attempt.number}): {reason}"
        audit_append(actor=actor, action="credential.rotation_failed", target=credential, summary=summary[:500],
                     changes={"rotation_job": {"before": None, "after": job.pk},
                              "error_code": {"before": None, "after": code}})
        notify_owner(credential, subject=f"[Steward] Rotation of {credential} failed",
                     body=f"Steward could not rotate {credential} (job #{job.pk}, attempt {attempt.number}).\n"
                          f"Reason: {reason}\nThe credential is unchanged; a finding records the failure.",
                     kind=NotificationKind.ROTATION_FAILED, dedupe_key=f"rotation-job:{job.pk}:failed")
        webhook_event_emit(event_type="rotation.failed", payload={
            "credential_id": credential.pk, "credential": credential.name, "job_id": job.pk,
            "attempt": attempt.number, "error_code": code, "reason": reason})
        request_sweep([ROTATION_FAILED_CHECK], trigger="rotation-failure")
    return outcome
