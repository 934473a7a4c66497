"""Provisioning with proof: an approved request's credential is created in its system, then made active.

The approved provisioning request (services.approvals_actions) registers the credential as
*provisioning* and calls provisioning_start() in the approving transaction: a CredentialProvisioning
row and its outbox message commit with the approval. A worker claims the row under a lease and asks
the credential's connector to create the identity with its declared scope, write the new secret to
the declared store and prove that it works; only then does the credential become active (the
provision_prove transition, with the store version). Every step is recorded on the row before it is
tried, so a failure (or a worker lost mid-way) is compensated from that list: a failed run undoes
what it created and leaves the credential *provisioning failed* with the reason; a run taken over
from a lost worker undoes the earlier attempt's steps first, then provisions afresh. A redelivered
message finds the row finished (or held) and does nothing.

Declared scopes are checked for the connector at request time (provision_scopes_validate, used by
the request's validation for the portal form and the API alike); the connector parses them again.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from governance import leases, task_names
from governance.audit import Actor, audit_append
from governance.choices import CredentialStatus
from governance.connectors import registry
from governance.connectors.base import ConnectorError, ProvisionSpec
from governance.connectors.scopes import ScopeError, parse_scopes
from governance.models import Credential
from governance.models.notifications import NotificationKind
from governance.models.provisioning import CredentialProvisioning, ProvisioningStatus
from governance.outbox import enqueue
from governance.services.lifecycle import credential_for_connector, lifecycle_actor, notify_owner
from governance.services.states import StateChangeRefused, state_transition

logger = logging.getLogger(__name__)
S = ProvisioningStatus


def provision_connector_kind(*, system, store, kind: str) -> str:
    """The connector that would provision a credential of this kind, system and store ("" when none)."""
    return registry.connector_kind(Credential(system=system, store=store, kind=kind))


def provision_scopes_validate(*, system, store, kind: str, scopes) -> list[str]:
    """The one check of a new credential's declared scopes: each must mean something to its connector.

    Raises ValidationError({"scopes": [...]}) naming every scope that does not parse; returns the scopes."""
    scopes = [str(scope).strip() for scope in scopes or () if str(scope).strip()]
    if system is None:
        return scopes
    connector_kind = provision_connector_kind(system=system, store=store, kind=kind)
    try:
        parse_scopes(connector_kind, scopes)
    except ScopeError as error:
        raise ValidationError({"scopes": error.messages}) from None
    return scopes


def provisioning_start(*, actor: Actor, credential: Credential, approval_request=None) -> CredentialProvisioning:
    """Lay out the provisioning of a credential registered as provisioning, and hand it to a worker.

    Call inside the transaction that registered it (the outbox message commits with it)."""
    if credential.status != CredentialStatus.PROVISIONING:
        raise ValidationError({"status": f"{credential} is {credential.status}, not provisioning."})
    with transaction.atomic():
        run = CredentialProvisioning.objects.create(
            credential=credential, approval_request=approval_request,
            connector_kind=registry.connector_kind(credential))
        audit_append(actor=actor, action="credential.provision_start", target=credential,
                     summary=f"Provisioning of {credential} through {run.connector_kind or 'no connector'} started"
                             + (f" (approval request #{approval_request.pk})" if approval_request else ""),
                     changes={"provisioning": {"before": None, "after": run.pk}})
        enqueue(task_names.PROVISIONING_RUN, run.pk)
    return run


class _Steps:
    """The step recorder handed to the connector: each step is written to the row (under the lease)
    before the connector tries it, so whoever finishes or takes over the run knows what may exist."""

    def __init__(self, run: CredentialProvisioning, lease: leases.Lease):
        self.run, self.lease = run, lease
        self.steps = list(run.steps)

    def record(self, step: str) -> None:
        self.lease.heartbeat()
        steps = [*self.steps, step]
        held = CredentialProvisioning.objects.filter(pk=self.run.pk, lease_token=self.lease.token, status=S.RUNNING)
        if not held.update(steps=steps, updated_at=timezone.now()):
            raise leases.LeaseLost(f"Provisioning {self.run.pk}: the lease was taken over")
        self.steps = steps

    def reset(self, undo_proof: list[str]) -> None:
        CredentialProvisioning.objects.filter(pk=self.run.pk, lease_token=self.lease.token).update(
            steps=[], undo_proof=undo_proof, updated_at=timezone.now())
        self.steps = []


def _undo(connector, ref, spec, steps: list[str]) -> tuple[list[str], str]:
    """(proof, error): compensate the recorded steps; error is "" when everything recorded is gone."""
    if not steps:
        return [], ""
    try:
        return list(connector.provision_undo(ref, spec, steps)), ""
    except ConnectorError as error:
        return [], error.reason


def provisioning_execute(*, provisioning_id: int, task_id: str = "", final_attempt: bool = True) -> str:
    """One attempt of a provisioning run. Returns succeeded, failed, retry, lost or skipped."""
    lease = leases.lease_claim(CredentialProvisioning, provisioning_id, sources=[S.PENDING, S.RUNNING],
                               running=S.RUNNING, owner=leases.lease_owner(task_id))
    if lease is None:
        return "skipped"
    run = CredentialProvisioning.objects.get(pk=provisioning_id)
    credential = credential_for_connector(run.credential_id)
    actor = lifecycle_actor(task_id or f"provisioning-{run.pk}")
    if credential.status != CredentialStatus.PROVISIONING:
        return _failed(run, credential, actor, lease, f"{credential} is {credential.status}, not provisioning.")
    try:
        connector, ref = registry.connector_for(credential)
    except ConnectorError as error:
        return _failed(run, credential, actor, lease, f"Nothing was created: {error.reason}")
    steps = _Steps(run, lease)
    spec = ProvisionSpec(scopes=tuple(credential.scopes), privilege_level=credential.privilege_level,
                         run_key=f"provisioning-{run.pk}", record=steps.record)
    try:
        return _attempt(run, credential, actor, lease, connector, ref, spec, steps, final_attempt=final_attempt)
    except leases.LeaseLost:
        return "lost"  # the worker that took the run over undoes what this one recorded


def _attempt(run, credential, actor, lease, connector, ref, spec, steps, *, final_attempt: bool) -> str:
    if steps.steps:  # an earlier attempt's work (its worker was lost, or it is to be tried again)
        proof, error = _undo(connector, ref, spec, steps.steps)
        if error:
            return _undo_failed(run, credential, actor, lease, steps, error, final_attempt=final_attempt,
                                reason="An earlier attempt's steps could not be undone")
        steps.reset([f"Earlier attempt undone: {line}" for line in proof])
    if lease.exhausted():
        return _failed(run, credential, actor, lease, f"The worker was lost {lease.takeovers[lease.pk]} times "
                       "during this provisioning; it is failed rather than tried again.")
    CredentialProvisioning.objects.filter(pk=run.pk, lease_token=lease.token).update(
        attempts=run.attempts + 1, started_at=run.started_at or timezone.now())
    try:
        result = connector.provision(ref, spec)
    except leases.LeaseLost:
        raise
    except ConnectorError as error:
        return _compensate(run, credential, actor, lease, connector, ref, spec, steps, error.reason,
                           retry=error.transient and not final_attempt)
    except Exception:  # a bug must not leave half an identity behind: undo, then fail with a pointer to the log
        logger.exception("provisioning %s failed unexpectedly", run.pk)
        return _compensate(run, credential, actor, lease, connector, ref, spec, steps,
                           "Unexpected error in Steward; see the server log.", retry=False)
    return _succeeded(run, credential, actor, lease, connector, result)


def _compensate(run, credential, actor, lease, connector, ref, spec, steps, reason: str, *, retry: bool) -> str:
    proof, error = _undo(connector, ref, spec, steps.steps)
    if error:
        return _undo_failed(run, credential, actor, lease, steps, error, final_attempt=not retry, reason=reason)
    steps.reset(proof)
    if retry:
        lease.release(target=S.PENDING, reason=f"Attempt {run.attempts + 1}: {reason} (undone; tried again)"[:2000])
        return "retry"
    return _failed(run, credential, actor, lease, reason, undo_proof=proof)


def _undo_failed(run, credential, actor, lease, steps, error: str, *, final_attempt: bool, reason: str) -> str:
    """The compensation itself failed: keep the steps (the next attempt undoes them first), or fail loudly."""
    if not final_attempt:
        lease.release(target=S.PENDING, reason=f"{reason}; undoing failed ({error}); tried again"[:2000])
        return "retry"
    return _failed(run, credential, actor, lease, f"{reason}. Undoing it failed too: {error}",
                   cleanup_incomplete=True, steps=steps.steps)


def _succeeded(run, credential, actor, lease, connector, result) -> str:
    fields = {"store_version": result.version, "issued_at": result.provisioned_at,
              "last_rotated_at": result.provisioned_at}
    for name in ("identifier", "store_path", "expires_at", "fingerprint"):
        if getattr(result, name) is not None:
            fields[name] = getattr(result, name)
    with transaction.atomic():
        if not lease.release(target=S.SUCCEEDED, proof=list(result.proof), steps=list(result.created), reason="",
                             finished_at=timezone.now()):
            return "lost"  # taken over: the new holder undoes and provisions again
        state_transition(actor=actor, instance=credential, transition="provision_prove", action="credential.provision",
                         fields=fields, summary=f"{credential} provisioned through {connector.kind}: "
                                                f"{' '.join(result.proof[-1:])}"[:500])
    return "succeeded"


def _failed(run, credential, actor, lease, reason: str, *, undo_proof=None, cleanup_incomplete: bool = False,
            steps=None) -> str:
    values = {"reason": reason[:2000], "finished_at": timezone.now(), "cleanup_incomplete": cleanup_incomplete}
    if undo_proof is not None:
        values["undo_proof"] = list(undo_proof)
    if steps is not None:
        values["steps"] = list(steps)
    with transaction.atomic():
        if not lease.release(target=S.FAILED, **values):
            return "lost"
        try:
            state_transition(actor=actor, instance=credential, transition="provision_fail",
                             action="credential.provision_fail",
                             summary=f"Provisioning of {credential} failed: {reason}"[:500])
        except StateChangeRefused:  # no longer provisioning (cannot happen through Steward): the run is recorded
            pass
        left = " Some of what it created could not be removed: see the credential's page." if cleanup_incomplete \
            else " Everything it had created was removed."
        notify_owner(credential, subject=f"[Steward] Provisioning of {credential} failed",
                     body=f"Steward could not provision {credential}.\nReason: {reason}\n{left.strip()}",
                     kind=NotificationKind.PROVISIONING_FAILED, dedupe_key=f"provisioning:{run.pk}:failed")
    return "failed"


def provisionings_recover(provisioning_ids: list[int]) -> dict:
    """Lease recovery: runs whose worker was lost are taken over (their steps undone, then provisioned again)."""
    counts: dict[str, int] = {}
    for provisioning_id in provisioning_ids:
        outcome = provisioning_execute(provisioning_id=provisioning_id, task_id="lease-recovery", final_attempt=False)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "retry":
            with transaction.atomic():
                enqueue(task_names.PROVISIONING_RUN, provisioning_id)
    return counts
