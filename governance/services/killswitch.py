"""The kill switch, its drill and its reactivation: a workflow stopped in one action, step by step.

Activation suspends the workflow at once (in the request's transaction) and lays out one step
per bound credential; a task then suspends each credential through its connector, recording
each step's result and proof as it goes (the progress page polls them), under the activation's
lease (governance.leases): a worker lost mid-way is taken over by the lease recovery, which
re-checks in the credential's system the step it had begun, so no step is done twice. A credential is marked
suspended only when its connector proved it. A drill lays out the same steps in verification
mode (the connector proves it could act; nothing changes) and records the drill's result on the
workflow. Reactivation needs an approved "reactivation" request; it brings back, through the
connectors, the credentials the kill switch suspended.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import leases, permissions, roles, task_names
from governance.audit import Actor, audit_append
from governance.choices import CredentialStatus, DrillResult, WorkflowStatus
from governance.connectors import registry
from governance.connectors.base import ConnectorError
from governance.models import Credential, Workflow
from governance.models.approvals import ApprovalRequest
from governance.models.lifecycle import (
    KillSwitchActivation,
    KillSwitchMode,
    KillSwitchStatus,
    KillSwitchStep,
    StepAction,
    StepStatus,
)
from governance.outbox import enqueue
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_may_write, record, snapshot
from governance.services.lifecycle import (
    approval_granted,
    credential_for_connector,
    lifecycle_actor,
)
from governance.services.states import StateChangeRefused, state_transition
from governance.services.webhooks import webhook_event_emit
from governance.transitions import compare_and_set

logger = logging.getLogger(__name__)

REACTIVATION_ACTION = "reactivation"


def may_use_kill_switch(user, workflow: Workflow) -> bool:
    """Security admins, and the people who may change the workflow (its owner and backup team)."""
    if roles.is_security_admin(user):
        return True
    return not roles.is_auditor(user) and permissions.can(user, permissions.CHANGE, workflow)


def _ensure_may(actor: Actor, workflow: Workflow) -> None:
    ensure_may_write(actor)
    if actor.kind != "system" and not may_use_kill_switch(actor.user, workflow):
        raise PermissionDenied("Only a security admin or the workflow's owner may use its kill switch.")


def _bound_credentials(workflow: Workflow):
    return Credential.objects.filter(bindings__workflow=workflow).distinct().order_by("name", "pk")


def _start(*, actor: Actor, workflow: Workflow, mode: str, reason: str, approval_request_id=None):
    if KillSwitchActivation.objects.filter(workflow=workflow, status=KillSwitchStatus.RUNNING).exists():
        raise ValidationError({"workflow": f"A kill switch, drill or reactivation of {workflow} is still running."})
    now = timezone.now()
    # Born running without a holder; the lease's expiry gives its message time to reach a worker, after
    # which the lease recovery runs it (a message lost on the way).
    return KillSwitchActivation.objects.create(
        workflow=workflow, mode=mode, reason=reason, activated_by=actor.person, actor_label=actor.label[:200],
        workflow_status_before=workflow.status, approval_request_id=approval_request_id, started_at=now,
        lease_expires_at=now + leases.lease_duration())


def _set_workflow_status(*, actor: Actor, workflow: Workflow, transition: str, summary: str, action: str,
                         approval_request=None) -> None:
    state_transition(actor=actor, instance=workflow, transition=transition, summary=summary, action=action,
                     approval_request=approval_request)


def _enqueue(activation: KillSwitchActivation) -> None:
    enqueue(task_names.KILL_SWITCH_RUN, activation.pk)


def kill_switch_activate(*, actor: Actor, workflow: Workflow, reason: str) -> KillSwitchActivation:
    """Suspend a workflow now, and every credential bound to it through its connector (in a task)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the workflow is being stopped."})
    reject_secret_values({"reason": reason}, ["reason"])
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        _ensure_may(actor, workflow)
        if workflow.status not in (WorkflowStatus.ACTIVE, WorkflowStatus.PROPOSED):
            raise ValidationError({"status": f"{workflow} is {workflow.get_status_display().lower()}: there is "
                                             "nothing to stop."})
        activation = _start(actor=actor, workflow=workflow, mode=KillSwitchMode.ACTIVATE, reason=reason)
        now = timezone.now()
        steps = [KillSwitchStep(activation=activation, position=1, action=StepAction.SUSPEND_WORKFLOW,
                                label=f"Suspend the workflow {workflow}", status=StepStatus.SUCCEEDED,
                                detail=f"Status {workflow.status} -> suspended.", started_at=now, finished_at=now)]
        for position, credential in enumerate(_bound_credentials(workflow), start=2):
            step = KillSwitchStep(activation=activation, position=position, action=StepAction.SUSPEND_CREDENTIAL,
                                  credential=credential, label=f"Suspend {credential}")
            if credential.status != CredentialStatus.ACTIVE:
                step.status, step.finished_at = StepStatus.SKIPPED, now
                step.detail = f"Already {credential.get_status_display().lower()}."
            steps.append(step)
        KillSwitchStep.objects.bulk_create(steps)
        _set_workflow_status(actor=actor, workflow=workflow, transition="kill_switch", action="workflow.kill_switch",
                             summary=f"Kill switch on {workflow} (activation #{activation.pk}): {reason}")
        webhook_event_emit(event_type="kill_switch.activated", payload={
            "activation_id": activation.pk, "workflow_id": workflow.pk, "workflow": workflow.name,
            "reason": reason, "by": actor.label, "credentials": len(steps) - 1})
        _enqueue(activation)
    return activation


def drill_start(*, actor: Actor, workflow: Workflow) -> KillSwitchActivation:
    """The kill switch's steps in verification mode: each connector proves it could suspend; nothing changes."""
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        _ensure_may(actor, workflow)
        if workflow.status == WorkflowStatus.RETIRED:
            raise ValidationError({"status": f"{workflow} is retired: there is nothing to drill."})
        activation = _start(actor=actor, workflow=workflow, mode=KillSwitchMode.DRILL,
                            reason="Drill of the kill switch (verification only).")
        now = timezone.now()
        steps = []
        for position, credential in enumerate(_bound_credentials(workflow), start=1):
            step = KillSwitchStep(activation=activation, position=position, action=StepAction.PROBE_CREDENTIAL,
                                  credential=credential, label=f"Verify Steward could suspend {credential}")
            if credential.status not in (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED):
                step.status, step.finished_at = StepStatus.SKIPPED, now
                step.detail = f"{credential.get_status_display()}: nothing to suspend."
            steps.append(step)
        KillSwitchStep.objects.bulk_create(steps)
        audit_append(actor=actor, action="workflow.drill_start", target=workflow,
                     summary=f"Kill-switch drill of {workflow} started (activation #{activation.pk})",
                     changes={"activation": {"before": None, "after": activation.pk}})
        _enqueue(activation)
    return activation


def credentials_suspended_by_kill_switch(workflow: Workflow) -> list[Credential]:
    """What the last kill switch suspended and is still suspended, unless another suspended workflow holds it."""
    last = (KillSwitchActivation.objects.filter(workflow=workflow, mode=KillSwitchMode.ACTIVATE)
            .order_by("-started_at", "-pk").first())
    if last is None:
        return []
    held = Workflow.objects.filter(status=WorkflowStatus.SUSPENDED).exclude(pk=workflow.pk)
    return list(Credential.objects.filter(
        pk__in=last.steps.filter(action=StepAction.SUSPEND_CREDENTIAL, status=StepStatus.SUCCEEDED)
        .values("credential_id"), status=CredentialStatus.SUSPENDED)
        .exclude(bindings__workflow__in=held).distinct().order_by("name", "pk"))


def kill_switch_reactivate(*, actor: Actor, workflow: Workflow, approval_request, reason: str = "",
                           ) -> KillSwitchActivation:
    """Run a suspended workflow again after an approved reactivation request; credentials back through connectors."""
    if not approval_granted(approval_request, action=REACTIVATION_ACTION):
        raise ValidationError({"approval_request": "Reactivation needs an approved reactivation request."})
    if str(getattr(approval_request, "target_object_id", workflow.pk)) != str(workflow.pk):
        raise ValidationError({"approval_request": "The request is for another workflow."})
    reason = reason or getattr(approval_request, "justification", "") or "approved reactivation"
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        _ensure_may(actor, workflow)
        if workflow.status != WorkflowStatus.SUSPENDED:
            raise ValidationError({"status": f"{workflow} is {workflow.get_status_display().lower()}, not suspended."})
        activation = _start(actor=actor, workflow=workflow, mode=KillSwitchMode.REACTIVATE, reason=reason,
                            approval_request_id=approval_request.pk)
        now = timezone.now()
        steps = [KillSwitchStep(activation=activation, position=1, action=StepAction.REACTIVATE_WORKFLOW,
                                label=f"Reactivate the workflow {workflow}", status=StepStatus.SUCCEEDED,
                                detail=f"Approved by request #{approval_request.pk}.", started_at=now,
                                finished_at=now)]
        steps += [KillSwitchStep(activation=activation, position=position, credential=credential,
                                 action=StepAction.REACTIVATE_CREDENTIAL, label=f"Reactivate {credential}")
                  for position, credential in enumerate(credentials_suspended_by_kill_switch(workflow), start=2)]
        KillSwitchStep.objects.bulk_create(steps)
        _set_workflow_status(actor=actor, workflow=workflow, transition="reactivate", action="workflow.reactivate",
                             approval_request=approval_request,
                             summary=f"Reactivated {workflow} (request #{approval_request.pk}): {reason}")
        _enqueue(activation)
    return activation


def reactivation_approved_execute(*, request, target, payload, actor):
    """The approvals engine's execute() for the "reactivation" action (ApprovalActionSpec signature)."""
    return kill_switch_reactivate(actor=actor, workflow=target, approval_request=request,
                                  reason=getattr(request, "justification", ""))


# Running the steps ------------------------------------------------------------------------------

RECOVERY_TASK_ID = "lease-recovery"


def _act(step: KillSwitchStep, credential: Credential) -> tuple[bool, str, list[str], object]:
    """Run a step's connector call: (succeeded, detail, proof, result)."""
    connector, ref = registry.connector_for(credential)
    if step.action == StepAction.PROBE_CREDENTIAL:
        probe = connector.probe(ref)
        proof = [f"{c.name}: {'ok' if c.ok else 'FAILED'} ({c.detail})" for c in probe.checks]
        return probe.ok, ("Could suspend: " if probe.ok else "Could not suspend: ") + probe.summary, proof, probe
    result = connector.suspend(ref) if step.action == StepAction.SUSPEND_CREDENTIAL else connector.reactivate(ref)
    return True, result.proof[0], list(result.proof), result


def _recheck(step: KillSwitchStep, credential: Credential) -> tuple[bool, str, list[str], object] | None:
    """A step a lost worker had begun: when the credential's own system shows it done, that is the result.

    None when the system shows it not done, or cannot say (then the step is carried out: suspending
    or reactivating twice changes nothing more). A drill's probe changes nothing, so it simply runs again.
    """
    if step.action == StepAction.PROBE_CREDENTIAL:
        return None
    try:
        connector, ref = registry.connector_for(credential)
        observed = connector.observe(ref)
    except ConnectorError:
        return None
    suspending = step.action == StepAction.SUSPEND_CREDENTIAL
    if (observed.state != "active") != suspending:
        return None
    detail = (f"Found already {'suspended' if suspending else 'active'} in its system ({observed.detail}): the "
              "worker that began this step was lost after doing it.")
    return True, detail[:1000], [detail], None


def _record_step(activation, step, credential, actor, lease, *, ok, detail, proof, result) -> None:
    """The step's outcome and the credential's new status, in one transaction, under the activation's lease."""
    with transaction.atomic():
        if ok and step.action == StepAction.SUSPEND_CREDENTIAL:
            try:
                state_transition(actor=actor, instance=credential, transition="suspend", action="credential.suspend",
                                 summary=f"{credential} suspended by the kill switch of {activation.workflow}: "
                                         f"{detail}")
            except StateChangeRefused:
                detail = f"{detail} (its status had already changed in Steward)"
        elif ok and step.action == StepAction.REACTIVATE_CREDENTIAL:
            values = {}
            rotation = getattr(result, "rotation", None)
            if rotation is not None:
                values.update(identifier=rotation.identifier, store_path=rotation.store_path,
                              store_version=rotation.version, fingerprint=rotation.fingerprint,
                              expires_at=rotation.expires_at, issued_at=rotation.rotated_at,
                              last_rotated_at=rotation.rotated_at)
            try:
                state_transition(actor=actor, instance=credential, transition="reactivate", fields=values,
                                 action="credential.reactivate", approval_request=_request_of(activation),
                                 approval_target=activation.workflow,
                                 summary=f"{credential} active again with {activation.workflow}: {detail}")
            except StateChangeRefused:
                detail = f"{detail} (its status had already changed in Steward)"
        elif not ok and step.action != StepAction.PROBE_CREDENTIAL:
            audit_append(actor=actor, action=f"credential.{step.action.split('_')[0]}_failed", target=credential,
                         summary=f"{step.label} failed ({activation}): {detail}"[:500],
                         changes={"kill_switch": {"before": None, "after": activation.pk}})
        if not compare_and_set(KillSwitchStep, step.pk, field="status",
                               sources=[StepStatus.PENDING, StepStatus.RUNNING],
                               target=StepStatus.SUCCEEDED if ok else StepStatus.FAILED,
                               where={"activation__lease_token": lease.token}, detail=detail[:1000], proof=proof,
                               finished_at=timezone.now()):
            raise leases.LeaseLost(f"{activation}: taken over while step {step.position} ran")  # rolls it all back


def _request_of(activation: KillSwitchActivation):
    return ApprovalRequest.objects.filter(pk=activation.approval_request_id).first()


def kill_switch_run(*, activation_id: int, task_id: str = "") -> KillSwitchActivation:
    """Carry out the steps in order under the activation's lease, then close it. Safe to run twice.

    A step left running by a worker that was lost is first re-checked in the credential's system.
    """
    lease = leases.lease_claim(KillSwitchActivation, activation_id, sources=[KillSwitchStatus.RUNNING],
                               running=KillSwitchStatus.RUNNING, owner=leases.lease_owner(task_id))
    activation = KillSwitchActivation.objects.select_related("workflow").get(pk=activation_id)
    if lease is None:
        return activation
    actor = lifecycle_actor(task_id or f"kill-switch-{activation.pk}")
    try:
        if lease.exhausted():
            _fail_remaining(activation, actor, lease)
        for step in activation.steps.filter(status__in=(StepStatus.PENDING, StepStatus.RUNNING)).order_by("position"):
            lease.heartbeat()
            begun = step.status == StepStatus.RUNNING
            if not begun and not compare_and_set(KillSwitchStep, step.pk, field="status", sources=[StepStatus.PENDING],
                                                 target=StepStatus.RUNNING, started_at=timezone.now(),
                                                 where={"activation__lease_token": lease.token}):
                raise leases.LeaseLost(f"{activation}: taken over before step {step.position}")
            credential = credential_for_connector(step.credential_id)
            try:
                ok, detail, proof, result = (_recheck(step, credential) if begun else None) or _act(step, credential)
            except ConnectorError as error:
                ok, detail, proof, result = False, error.reason, [], None
            except Exception:
                logger.exception("kill switch %s: step %s failed unexpectedly", activation.pk, step.pk)
                ok, detail, proof, result = False, "Unexpected error in Steward; see the server log.", [], None
            _record_step(activation, step, credential, actor, lease, ok=ok, detail=detail, proof=proof, result=result)
    except leases.LeaseLost:
        logger.warning("kill switch %s: the lease was taken over; this worker stops", activation.pk)
        activation.refresh_from_db()
        return activation
    return _close(activation, actor, lease)


def _fail_remaining(activation: KillSwitchActivation, actor: Actor, lease: leases.Lease) -> None:
    """Taken over too often (something in a step kills its worker): the steps left fail, with the reason."""
    reason = (f"The worker was lost {lease.takeovers.get(activation.pk, 0)} times during this "
              f"{activation.get_mode_display().lower()}; this step is failed rather than tried again.")
    for step in activation.steps.filter(status__in=(StepStatus.PENDING, StepStatus.RUNNING)).order_by("position"):
        credential = credential_for_connector(step.credential_id)
        _record_step(activation, step, credential, actor, lease, ok=False, detail=reason, proof=[], result=None)


def kill_switch_recover(activation_ids: list[int]) -> dict:
    """Lease recovery: activations whose worker was lost (or whose message never came) are finished here."""
    counts: dict[str, int] = {}
    for activation_id in activation_ids:
        status = kill_switch_run(activation_id=activation_id, task_id=RECOVERY_TASK_ID).status
        counts[status] = counts.get(status, 0) + 1
    return counts


def _close(activation: KillSwitchActivation, actor: Actor, lease: leases.Lease) -> KillSwitchActivation:
    steps = activation.steps.all()
    if steps.filter(status__in=(StepStatus.PENDING, StepStatus.RUNNING)).exists():
        return activation
    failed = steps.filter(status=StepStatus.FAILED).count()
    status = KillSwitchStatus.FAILED if failed else KillSwitchStatus.COMPLETED
    now = timezone.now()
    with transaction.atomic():
        if not lease.release(target=status, finished_at=now):
            activation.refresh_from_db()
            return activation
        outcome = f"{failed} step(s) failed" if failed else "every step succeeded"
        audit_append(actor=actor, action=f"killswitch.{activation.mode}_finish", target=activation.workflow,
                     summary=f"{activation.get_mode_display()} of {activation.workflow} finished: {outcome}",
                     changes={"activation": {"before": None, "after": activation.pk}, "status": {
                         "before": KillSwitchStatus.RUNNING, "after": status}})
        if activation.mode == KillSwitchMode.DRILL:
            workflow_drill_record(actor=actor, workflow=activation.workflow, drilled_at=now,
                                  result=DrillResult.FAILED if failed else DrillResult.PASSED)
    activation.refresh_from_db()
    return activation


def workflow_drill_record(*, actor: Actor, workflow: Workflow, result: str, drilled_at: dt.datetime) -> Workflow:
    """Record when the shutdown path was drilled and with what result (the drill-age check reads it)."""
    if result not in (DrillResult.PASSED, DrillResult.FAILED):
        raise ValidationError({"result": "A drill passes or fails."})
    ensure_may_write(actor)
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        before = snapshot(workflow, ("last_drilled_at", "last_drill_result"))
        workflow.last_drilled_at, workflow.last_drill_result = drilled_at, result
        workflow.save(update_fields=["last_drilled_at", "last_drill_result", "updated_at"])
        record(actor=actor, action="workflow.drill", instance=workflow,
               summary=f"Kill-switch drill of {workflow}: {result}", before=before,
               after=snapshot(workflow, ("last_drilled_at", "last_drill_result")))
    return workflow


def kill_switch_progress(activation: KillSwitchActivation) -> dict:
    """The progress page's JSON: the activation's state and each step's."""
    steps = list(activation.steps.order_by("position").values("position", "label", "status", "detail"))
    done = sum(1 for s in steps if s["status"] not in (StepStatus.PENDING, StepStatus.RUNNING))
    return {"id": activation.pk, "mode": activation.mode, "status": activation.status,
            "finished": activation.status != KillSwitchStatus.RUNNING, "done": done, "total": len(steps),
            "steps": steps}
