"""Deprovisioning with proof: revoking the credentials of a retired system or workflow.

Retiring (after the approved retirement request) is followed by deprovision_start(), which lays
out one revocation per credential that only the retired object uses; a task revokes each through
its connector, which re-checks that the old secret no longer works. The proof is kept on the
revocation row and the credential becomes revoked only then. Each revocation is held under a
lease (governance.leases); the lease recovery finishes one whose worker was lost. A credential that another live
workflow still uses is left alone (revoking it would stop that workflow): it is reported.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import leases, task_names
from governance.audit import Actor, audit_append
from governance.choices import SystemLifecycle, WorkflowStatus
from governance.connectors import registry
from governance.connectors.base import ConnectorError, ReferenceBroken
from governance.models import Credential, System, Workflow
from governance.models.lifecycle import CredentialRevocation, RevocationReason, RevocationStatus
from governance.models.notifications import NotificationKind
from governance.outbox import enqueue
from governance.secret_guard import reject_secret_values
from governance.services import inventory
from governance.services.common import ensure_can_change
from governance.services.deliveries import DeliveryFailed, deliveries_withdraw
from governance.services.lifecycle import (
    LIVE_STATUSES,
    credential_for_connector,
    lifecycle_actor,
    notify_owner,
)
from governance.services.states import StateChangeRefused, state_transition

logger = logging.getLogger(__name__)
LIVE_REVOCATION = (RevocationStatus.PENDING, RevocationStatus.RUNNING, RevocationStatus.SUCCEEDED)


def _live_workflows_except(workflow: Workflow | None):
    queryset = Workflow.objects.exclude(status=WorkflowStatus.RETIRED)
    return queryset.exclude(pk=workflow.pk) if workflow is not None else queryset


def credentials_only_used_by(subject: System | Workflow):
    """The live credentials that nothing but the subject needs."""
    if isinstance(subject, System):
        return Credential.objects.filter(system=subject, status__in=LIVE_STATUSES).order_by("name", "pk")
    return (Credential.objects.filter(bindings__workflow=subject, status__in=LIVE_STATUSES)
            .exclude(bindings__workflow__in=_live_workflows_except(subject)).distinct().order_by("name", "pk"))


def credentials_kept_for_others(workflow: Workflow):
    """A retired workflow's live credentials that other live workflows still use (not revoked)."""
    return (Credential.objects.filter(bindings__workflow=workflow, status__in=LIVE_STATUSES)
            .filter(bindings__workflow__in=_live_workflows_except(workflow)).distinct().order_by("name", "pk"))


def _enqueue(revocation_ids: list[int]) -> None:
    if revocation_ids:
        enqueue(task_names.REVOCATIONS_RUN, list(revocation_ids))


def _create(credential, *, actor, reason, subject=None) -> CredentialRevocation | None:
    if CredentialRevocation.objects.filter(credential=credential, status__in=LIVE_REVOCATION).exists():
        return None
    try:
        with transaction.atomic():
            return CredentialRevocation.objects.create(
                credential=credential, reason=reason, requested_by=actor.person,
                subject_type=subject._meta.label_lower if subject is not None else "",
                subject_id=subject.pk if subject is not None else None)
    except IntegrityError:  # a concurrent deprovisioning created it first
        return None


def deprovision_start(*, actor: Actor, subject: System | Workflow) -> list[CredentialRevocation]:
    """Revoke, with proof, every credential only this retired system or workflow uses (in a task)."""
    retired = (subject.lifecycle == SystemLifecycle.RETIRED if isinstance(subject, System)
               else subject.status == WorkflowStatus.RETIRED)
    if not retired:
        raise ValidationError({"subject": f"{subject} is not retired: retire it (through its approval) first."})
    ensure_can_change(actor, subject)
    reason = RevocationReason.SYSTEM_RETIRED if isinstance(subject, System) else RevocationReason.WORKFLOW_RETIRED
    with transaction.atomic():
        revocations = [r for r in (_create(c, actor=actor, reason=reason, subject=subject)
                                   for c in credentials_only_used_by(subject)) if r is not None]
        kept = [] if isinstance(subject, System) else [c.name for c in credentials_kept_for_others(subject)]
        audit_append(actor=actor, action="deprovision.start", target=subject,
                     summary=(f"Deprovisioning {subject}: {len(revocations)} credential(s) to revoke"
                              + (f"; kept for other workflows: {', '.join(kept[:10])}" if kept else ""))[:500],
                     changes={"revocations": {"before": None, "after": [r.pk for r in revocations]}})
        _enqueue([r.pk for r in revocations])
    return revocations


def retirement_approved_execute(*, request, target, payload, actor):
    """The approvals engine's execute() for "retirement": retire, then deprovision what only it used."""

    reason = f"Approval request #{request.pk}: {request.justification}"
    if isinstance(target, Credential):
        credential_revoke(actor=actor, credential=target, reason=reason)
        return None
    if isinstance(target, System):
        subject = inventory.system_retire(actor=actor, system=target, reason=reason, approval_request=request)
    else:
        subject = inventory.workflow_retire(actor=actor, workflow=target, reason=reason, approval_request=request)
    deprovision_start(actor=actor, subject=subject)
    return None


def credential_revoke(*, actor: Actor, credential: Credential, reason: str) -> CredentialRevocation:
    """A person revokes one credential for good, through its connector, with proof (in a task)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the credential is revoked."})
    reject_secret_values({"reason": reason}, ["reason"])
    ensure_can_change(actor, credential)
    if credential.status not in LIVE_STATUSES:
        raise ValidationError({"status": f"{credential} is already {credential.get_status_display().lower()}."})
    with transaction.atomic():
        revocation = _create(credential, actor=actor, reason=RevocationReason.MANUAL)
        if revocation is None:
            raise ValidationError({"credential": f"{credential} is already being revoked."})
        audit_append(actor=actor, action="credential.revoke_request", target=credential,
                     summary=f"Revocation of {credential} requested: {reason}"[:500],
                     changes={"revocation": {"before": None, "after": revocation.pk}})
        _enqueue([revocation.pk])
    return revocation


def _found_revoked(connector, ref) -> tuple[str, ...] | None:
    """A revocation whose worker was lost: when the credential's system shows it gone, that is the proof."""
    try:
        observed = connector.observe(ref)
    except ReferenceBroken as gone:
        return (f"Found already revoked in its system ({gone.reason}): the worker that began this revocation was "
                "lost after doing it.",)
    except ConnectorError:
        return None
    if observed.state in ("destroyed", "revoked"):
        return (f"Found already revoked in its system ({observed.detail}): the worker that began this revocation "
                "was lost after doing it.",)
    return None


def revocation_execute(*, revocation_id: int, task_id: str = "", final_attempt: bool = True) -> str:
    """Revoke through the connector and record the proof. Returns succeeded, failed, retry, lost or skipped.

    The revocation is held under a lease (governance.leases); one taken over from a lost worker is
    first re-checked in the credential's system, so a credential is never revoked twice.
    """
    lease = leases.lease_claim(CredentialRevocation, revocation_id,
                               sources=[RevocationStatus.PENDING, RevocationStatus.RUNNING],
                               running=RevocationStatus.RUNNING, owner=leases.lease_owner(task_id))
    if lease is None:
        return "skipped"
    revocation = CredentialRevocation.objects.get(pk=revocation_id)
    credential = credential_for_connector(revocation.credential_id)
    actor = lifecycle_actor(task_id or f"revocation-{revocation.pk}")
    try:
        connector, ref = registry.connector_for(credential)
        proof = _found_revoked(connector, ref) if lease.took_over else None
        if proof is None and lease.exhausted():
            return _failed(revocation, credential, actor, lease, f"The worker was lost {lease.takeovers[lease.pk]} "
                           "times during this revocation; it is failed rather than tried again.")
        if proof is None:
            # The CI variables holding the value go first; the revocation waits until they are all gone.
            withdrawn = deliveries_withdraw(actor=actor, credential=credential)
            if not withdrawn.ok:
                raise DeliveryFailed("Not revoked yet: the CI variables that hold it were not all deleted: "
                                     + "; ".join(withdrawn.failures))
            result = connector.revoke(ref)
            proof, performed_at = (*result.proof, *withdrawn.proof), result.performed_at
        else:
            performed_at = timezone.now()
    except ConnectorError as error:
        if error.transient and not final_attempt:
            lease.release(target=RevocationStatus.PENDING, error=error.reason[:1000])
            return "retry"
        return _failed(revocation, credential, actor, lease, error.reason)
    except Exception:
        logger.exception("revocation %s failed unexpectedly", revocation.pk)
        return _failed(revocation, credential, actor, lease, "Unexpected error in Steward; see the server log.")
    with transaction.atomic():
        if not lease.release(target=RevocationStatus.SUCCEEDED, performed_at=performed_at, proof=list(proof),
                             error=""):
            return "lost"
        try:
            state_transition(
                actor=actor, instance=credential, transition="revoke", action="credential.revoke",
                summary=f"{credential} revoked through {connector.kind} ({revocation.get_reason_display().lower()}): "
                        f"{proof[0]}"[:500])
        except StateChangeRefused:  # already revoked (or expired) in Steward: the proof is still recorded
            pass
    return "succeeded"


def revocations_recover(revocation_ids: list[int]) -> dict:
    """Lease recovery: revocations whose worker was lost are finished here, once (re-checked in the system).

    A transient failure goes back to pending and is sent again (_enqueue).
    """
    counts: dict[str, int] = {}
    retry = []
    for revocation_id in revocation_ids:
        outcome = revocation_execute(revocation_id=revocation_id, task_id="lease-recovery", final_attempt=False)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "retry":
            retry.append(revocation_id)
    with transaction.atomic():
        _enqueue(retry)
    return counts


def _failed(revocation, credential, actor, lease, reason: str) -> str:
    with transaction.atomic():
        if not lease.release(target=RevocationStatus.FAILED, error=reason[:1000]):
            return "lost"
        audit_append(actor=actor, action="credential.revoke_failed", target=credential,
                     summary=f"Revocation of {credential} failed: {reason}"[:500],
                     changes={"revocation": {"before": None, "after": revocation.pk}})
        notify_owner(credential, subject=f"[Steward] Revocation of {credential} failed",
                     body=f"Steward could not revoke {credential}.\nReason: {reason}\n"
                          "It stays recorded as it was; revoke it by hand or fix the connector and retry.",
                     kind=NotificationKind.REVOCATION_FAILED, dedupe_key=f"revocation:{revocation.pk}:failed")
    return "failed"
