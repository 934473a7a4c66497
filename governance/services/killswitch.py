"""The kill switch, its drill and its reactivation: a workflow stopped in one action, step by step.

Activation suspends the workflow at once (in the request's transaction) and lays out its steps
(governance.services.killswitch_plan): per bound credential, a connector step where a connector
acts, and a step done by hand where none can act where the credential is accepted (KV-only SSH and
cloud keys, stores without a connector). A credential other workflows share needs the operator's
choice: suspend it anyway (the other workflows are listed in the activation) or rotate and isolate
(a new secret for them, this workflow's binding suspended). A task then carries out the connector
steps, recording each step's result and proof as it goes (the progress page polls them), under the
activation's lease (governance.leases): a worker lost mid-way is taken over by the lease recovery,
which re-checks in the credential's system the step it had begun, so no step is done twice. A
credential is marked suspended only when its connector proved it, or when the person who did it by
hand marks the step done. The activation completes only when every step is done or, by a security
admin, waived. A drill lays out the connector steps in verification mode (the connector proves it
could act; nothing changes) and records the drill's result on the workflow. Reactivation needs an
approved "reactivation" request and always rotates: each credential comes back with a new secret,
never the value that was live during the incident.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance import leases, permissions, roles, task_names
from governance.audit import Actor, audit_append
from governance.choices import CredentialStatus, DrillResult, WorkflowStatus
from governance.connectors import registry
from governance.connectors.base import ActionResult, ConnectorError
from governance.models import Binding, Credential, Person, Workflow
from governance.models.approvals import ApprovalRequest
from governance.models.lifecycle import (
    KILL_SWITCH_OPEN,
    MANUAL_ACTIONS,
    KillSwitchActivation,
    KillSwitchMode,
    KillSwitchStatus,
    KillSwitchStep,
    SharedChoice,
    StepAction,
    StepStatus,
)
from governance.outbox import enqueue
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_may_write, record, snapshot
from governance.services.deliveries import deliveries_push, deliveries_withdraw
from governance.services.drift import drill_drift_verdict
from governance.services.killswitch_plan import (
    KillSwitchPreview,
    PlannedStep,
    activation_steps,
    bound_credentials,
    preview_plan,
    reactivation_steps,
    shared_choice_clean,
)
from governance.services.lifecycle import (
    approval_granted,
    credential_for_connector,
    credential_record_change,
    lifecycle_actor,
)
from governance.services.rotation import credential_values
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


def _start(*, actor: Actor, workflow: Workflow, mode: str, reason: str, approval_request_id=None, **fields):
    if KillSwitchActivation.objects.filter(workflow=workflow, status=KillSwitchStatus.RUNNING).exists():
        raise ValidationError({"workflow": f"A kill switch, drill or reactivation of {workflow} is still running."})
    now = timezone.now()
    # Born running without a holder; the lease's expiry gives its message time to reach a worker, after
    # which the lease recovery runs it (a message lost on the way).
    return KillSwitchActivation.objects.create(
        workflow=workflow, mode=mode, reason=reason, activated_by=actor.person, actor_label=actor.label[:200],
        workflow_status_before=workflow.status, approval_request_id=approval_request_id, started_at=now,
        lease_expires_at=now + leases.lease_duration(), **fields)


def _set_workflow_status(*, actor: Actor, workflow: Workflow, transition: str, summary: str, action: str,
                         approval_request=None) -> None:
    state_transition(actor=actor, instance=workflow, transition=transition, summary=summary, action=action,
                     approval_request=approval_request)


def _enqueue(activation: KillSwitchActivation) -> None:
    enqueue(task_names.KILL_SWITCH_RUN, activation.pk)


def _assignee_for(credential: Credential | None, workflow: Workflow, actor: Actor) -> Person | None:
    """Who does a step by hand: the credential's owner, else the workflow's, else whoever pulled the switch."""
    for person in (getattr(credential, "owner", None), workflow.owner):
        if person is not None and person.is_active and not getattr(person, "is_departed", False):
            return person
    return actor.person


def _steps(activation, workflow, actor, planned: list[PlannedStep], *, start: int, now) -> list[KillSwitchStep]:
    steps = []
    for position, plan in enumerate(planned, start=start):
        step = KillSwitchStep(activation=activation, position=position, action=plan.action,
                              credential=plan.credential, label=plan.label[:300], detail=plan.detail[:1000])
        if plan.manual:
            step.status, step.assignee = StepStatus.AWAITING, _assignee_for(plan.credential, workflow, actor)
        elif plan.detail:  # nothing to do (the credential is not active)
            step.status, step.finished_at = StepStatus.SKIPPED, now
        steps.append(step)
    return steps


def _isolate_bindings(*, actor: Actor, workflow: Workflow, activation: KillSwitchActivation, credential_ids,
                      now) -> None:
    """Rotate and isolate: the workflow's bindings to the shared credentials stop counting, audited."""
    for binding in Binding.objects.filter(workflow=workflow, credential_id__in=credential_ids,
                                          suspended_at__isnull=True).select_related("credential"):
        Binding.objects.filter(pk=binding.pk).update(suspended_at=now, suspended_by_activation=activation,
                                                     updated_at=now)
        audit_append(actor=actor, action="binding.suspend", target=binding,
                     summary=f"{workflow} no longer uses {binding.credential}: isolated by its kill switch "
                             f"(activation #{activation.pk}); the credential is rotated for the others",
                     changes={"suspended_at": {"before": None, "after": now.isoformat()}})


def killswitch_preview(*, workflow: Workflow, actor: Actor | None = None) -> KillSwitchPreview:
    """What the kill switch would do to each bound credential, and which other workflows use each.

    With an actor, only for someone who may use the workflow's kill switch (PermissionDenied otherwise).
    """
    if actor is not None:
        _ensure_may(actor, workflow)
    return preview_plan(workflow=workflow)


def killswitch_activate(*, actor: Actor, workflow: Workflow, reason: str,
                        shared_choice: str | None = None) -> KillSwitchActivation:
    """Suspend a workflow now, and every credential bound to it through its connector (in a task).

    shared_choice (SharedChoice) is required when an active credential is also used by other
    workflows: suspend_anyway suspends it under them too (they are listed in the activation),
    rotate_isolate gives it a new secret for them and suspends only this workflow's binding.
    """
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
        preview = preview_plan(workflow=workflow)
        choice = shared_choice_clean(preview, shared_choice)
        activation = _start(actor=actor, workflow=workflow, mode=KillSwitchMode.ACTIVATE, reason=reason,
                            shared_choice=choice, shared_with=preview.shared_with())
        now = timezone.now()
        steps = [KillSwitchStep(activation=activation, position=1, action=StepAction.SUSPEND_WORKFLOW,
                                label=f"Suspend the workflow {workflow}", status=StepStatus.SUCCEEDED,
                                detail=f"Status {workflow.status} -> suspended.", started_at=now, finished_at=now)]
        steps += _steps(activation, workflow, actor, activation_steps(preview, shared_choice=choice), start=2,
                        now=now)
        KillSwitchStep.objects.bulk_create(steps)
        if choice == SharedChoice.ROTATE_ISOLATE:
            _isolate_bindings(actor=actor, workflow=workflow, activation=activation, now=now,
                              credential_ids=[row.credential.pk for row in preview.shared_rows])
        others = "; ".join(f"{entry['credential']} also used by {', '.join(w['name'] for w in entry['workflows'])}"
                           for entry in activation.shared_with)
        _set_workflow_status(actor=actor, workflow=workflow, transition="kill_switch", action="workflow.kill_switch",
                             summary=f"Kill switch on {workflow} (activation #{activation.pk}): {reason}"
                                     + (f" [{SharedChoice(choice).label}: {others}]" if choice else ""))
        webhook_event_emit(event_type="kill_switch.activated", payload={
            "activation_id": activation.pk, "workflow_id": workflow.pk, "workflow": workflow.name,
            "reason": reason, "by": actor.label, "credentials": len(preview.rows), "shared_choice": choice,
            "shared_with": activation.shared_with,
            "manual_steps": sum(1 for step in steps if step.status == StepStatus.AWAITING)})
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
        for position, credential in enumerate(bound_credentials(workflow), start=1):
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


def _last_kill_switch(workflow: Workflow) -> KillSwitchActivation | None:
    return (KillSwitchActivation.objects.filter(workflow=workflow, mode=KillSwitchMode.ACTIVATE)
            .order_by("-started_at", "-pk").first())


def credentials_suspended_by_kill_switch(workflow: Workflow) -> list[Credential]:
    """What the last kill switch suspended and is still suspended, unless another suspended workflow holds it."""
    last = _last_kill_switch(workflow)
    if last is None:
        return []
    held = Workflow.objects.filter(status=WorkflowStatus.SUSPENDED).exclude(pk=workflow.pk)
    suspended_by_it = last.steps.filter(
        Q(action=StepAction.SUSPEND_CREDENTIAL, status=StepStatus.SUCCEEDED)
        | Q(action=StepAction.MANUAL_SUSPEND, status=StepStatus.MARKED_DONE)).values("credential_id")
    return list(Credential.objects.filter(pk__in=suspended_by_it, status=CredentialStatus.SUSPENDED)
                .exclude(bindings__workflow__in=held).select_related("store", "system__connector_target", "owner")
                .distinct().order_by("name", "pk"))


def kill_switch_reactivate(*, actor: Actor, workflow: Workflow, approval_request, reason: str = "",
                           ) -> KillSwitchActivation:
    """Run a suspended workflow again after an approved reactivation request; credentials back with new secrets.

    Each credential the kill switch suspended is reactivated through its connector with a new secret
    (reactivate_rotated: the old one stays refused), or by a person where no connector can; bindings
    the kill switch isolated are given back (their credential was rotated when they were isolated).
    """
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
        for binding in Binding.objects.filter(workflow=workflow, suspended_at__isnull=False).select_related(
                "credential"):
            Binding.objects.filter(pk=binding.pk).update(suspended_at=None, suspended_by_activation=None,
                                                         updated_at=now)
            audit_append(actor=actor, action="binding.restore", target=binding,
                         summary=f"{workflow} uses {binding.credential} again (reactivation #{activation.pk})",
                         changes={"suspended_at": {"before": binding.suspended_at.isoformat(), "after": None}})
            steps.append(KillSwitchStep(
                activation=activation, position=len(steps) + 1, action=StepAction.RESTORE_BINDING,
                credential=binding.credential, label=f"Give {workflow} {binding.credential} back",
                status=StepStatus.SUCCEEDED, started_at=now, finished_at=now,
                detail=f"{binding.credential} was rotated when {workflow} was isolated from it: the value "
                       f"{workflow} held during the incident is no longer accepted."))
        steps += _steps(activation, workflow, actor, reactivation_steps(credentials_suspended_by_kill_switch(
            workflow)), start=len(steps) + 1, now=now)
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
        undrifted, drift_proof = drill_drift_verdict(credential, connector, ref)  # a drifted identity fails it
        detail = ("Could suspend: " if probe.ok else "Could not suspend: ") + probe.summary
        if not undrifted:
            detail = f"{detail}; {drift_proof[-1]}"
        return probe.ok and undrifted, detail, [*proof, *drift_proof], probe
    actor = lifecycle_actor(f"kill-switch-{step.activation_id}")
    if step.action == StepAction.ISOLATE_CREDENTIAL:
        rotation = connector.rotate(ref)
        result = ActionResult("rotate", rotation.rotated_at, rotation.proof, rotation=rotation)
        detail = f"New secret (version {rotation.version}) for the other workflows: " + rotation.proof[0]
    elif step.action == StepAction.SUSPEND_CREDENTIAL:
        result = connector.suspend(ref)
        detail = result.proof[0]
    else:  # reactivation always rotates: the value live during the incident is never accepted again
        result = connector.reactivate_rotated(ref)
        detail = result.proof[0]
    # The CI variables that hold the value: deleted with the suspension, given the new value otherwise.
    if step.action == StepAction.SUSPEND_CREDENTIAL:
        report = deliveries_withdraw(actor=actor, credential=credential, kill_switch_step_id=step.pk)
    else:
        version = result.rotation.version if result.rotation is not None else credential.store_version
        report = deliveries_push(actor=actor, credential=credential, version=version, kill_switch_step_id=step.pk)
    proof = [*result.proof, *report.proof, *(f"FAILED: {failure}" for failure in report.failures)]
    if not report.ok:
        return False, f"{detail} But: {'; '.join(report.failures)}"[:1000], proof, result
    return True, detail, proof, result


def _recheck(step: KillSwitchStep, credential: Credential) -> tuple[bool, str, list[str], object] | None:
    """A step a lost worker had begun: when the credential's own system shows it done, that is the result.

    None when the system shows it not done, or cannot say (then the step is carried out: suspending
    twice changes nothing more; a rotation or a reactivation makes one more new secret). A drill's
    probe changes nothing, so it simply runs again.
    """
    if step.action == StepAction.PROBE_CREDENTIAL:
        return None
    try:
        connector, ref = registry.connector_for(credential)
        rotation = None
        if step.action in (StepAction.ISOLATE_CREDENTIAL, StepAction.REACTIVATE_CREDENTIAL):
            rotation = connector.rotation_resume(ref, since=step.started_at or step.activation.started_at)
            if rotation is None:
                return None
        observed = connector.observe(ref)
    except ConnectorError:
        return None
    suspending = step.action == StepAction.SUSPEND_CREDENTIAL
    if (observed.state != "active") != suspending:
        return None
    detail = (f"Found already {'suspended' if suspending else 'done'} in its system ({observed.detail}): the "
              "worker that began this step was lost after doing it.")
    result = ActionResult("rotate", rotation.rotated_at, rotation.proof, rotation=rotation) if rotation else None
    return True, detail[:1000], [detail, *(rotation.proof if rotation else ())], result


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
        elif ok and step.action == StepAction.ISOLATE_CREDENTIAL:
            credential_record_change(
                actor=actor, credential=credential, values=credential_values(result.rotation),
                action="credential.rotate",
                summary=f"Rotated {credential} to isolate {activation.workflow} (kill switch #{activation.pk}): "
                        f"version {result.rotation.version}")
        elif ok and step.action == StepAction.REACTIVATE_CREDENTIAL:
            rotation = getattr(result, "rotation", None)
            values = credential_values(rotation) if rotation is not None else {}
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
    """Every connector step has run: finish, or wait for the steps done by hand (the lease is released)."""
    steps = activation.steps.all()
    if steps.filter(status__in=(StepStatus.PENDING, StepStatus.RUNNING)).exists():
        return activation
    with transaction.atomic():
        # The activation's row is the lock a person closing the last manual step also takes.
        KillSwitchActivation.objects.select_for_update().filter(pk=activation.pk).first()
        if steps.filter(status=StepStatus.AWAITING).exists():
            if lease.release(target=KillSwitchStatus.AWAITING_MANUAL):
                audit_append(actor=actor, action=f"killswitch.{activation.mode}_awaiting", target=activation.workflow,
                             summary=f"{activation.get_mode_display()} of {activation.workflow}: the connector steps "
                                     "ran; steps done by hand remain",
                             changes={"status": {"before": KillSwitchStatus.RUNNING,
                                                 "after": KillSwitchStatus.AWAITING_MANUAL}})
            activation.refresh_from_db()
            return activation
        _finish(activation, actor, release=lease.release)
    activation.refresh_from_db()
    return activation


def _finish(activation: KillSwitchActivation, actor: Actor, *, release) -> bool:
    """Completed (or completed with failures) once no step is left; release(target=..., finished_at=...) moves it."""
    steps = activation.steps.all()
    failed = steps.filter(status=StepStatus.FAILED).count()
    status = KillSwitchStatus.FAILED if failed else KillSwitchStatus.COMPLETED
    now = timezone.now()
    before = activation.status
    if not release(target=status, finished_at=now):
        return False
    waived = steps.filter(status=StepStatus.WAIVED).count()
    outcome = f"{failed} step(s) failed" if failed else "every step succeeded or was done by hand"
    if waived:
        outcome += f", {waived} waived"
    audit_append(actor=actor, action=f"killswitch.{activation.mode}_finish", target=activation.workflow,
                 summary=f"{activation.get_mode_display()} of {activation.workflow} finished: {outcome}",
                 changes={"activation": {"before": None, "after": activation.pk},
                          "status": {"before": before, "after": status}})
    if activation.mode == KillSwitchMode.DRILL:
        workflow_drill_record(actor=actor, workflow=activation.workflow, drilled_at=now,
                              result=DrillResult.FAILED if failed else DrillResult.PASSED)
    return True


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
    steps = list(activation.steps.order_by("position").values("id", "position", "label", "status", "detail",
                                                              "assignee__username", "comment"))
    done = sum(1 for s in steps if s["status"] not in (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.AWAITING))
    for step in steps:
        step["manual"] = step["status"] in (StepStatus.AWAITING, StepStatus.MARKED_DONE, StepStatus.WAIVED)
        step["assignee"] = step.pop("assignee__username") or ""
    return {"id": activation.pk, "mode": activation.mode, "status": activation.status,
            "finished": activation.status not in KILL_SWITCH_OPEN, "done": done, "total": len(steps),
            "manual_open": sum(1 for s in steps if s["status"] == StepStatus.AWAITING), "steps": steps}


# Steps done by hand ------------------------------------------------------------------------------

def may_close_step(user, step: KillSwitchStep) -> bool:
    """Its assignee, or whoever may use the workflow's kill switch, marks a step done; auditors never."""
    if user is None:
        return False
    if roles.is_auditor(user) and not roles.is_security_admin(user):
        return False
    return step.assignee_id == getattr(user, "pk", None) or may_use_kill_switch(user, step.activation.workflow)


def _open_manual_step(step_id: int) -> tuple[KillSwitchStep, KillSwitchActivation]:
    """The step and its activation, locked (the activation first: _close takes the same lock)."""
    activation_id = KillSwitchStep.objects.filter(pk=step_id).values_list("activation_id", flat=True).first()
    if activation_id is None:
        raise ValidationError({"step": "No such step."})
    activation = (KillSwitchActivation.objects.select_for_update(of=("self",)).select_related("workflow")
                  .get(pk=activation_id))
    step = (KillSwitchStep.objects.select_for_update(of=("self",)).select_related("credential", "assignee")
            .get(pk=step_id))
    step.activation = activation
    if step.action not in MANUAL_ACTIONS:
        raise ValidationError({"step": f"Step {step.position} is carried out by its connector, not by hand."})
    if step.status != StepStatus.AWAITING:
        raise ValidationError({"step": f"Step {step.position} is already {step.get_status_display().lower()}."})
    return step, activation


def _text(value: str, *, field: str, missing: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: missing})
    reject_secret_values({field: value}, [field])
    return value[:2000]


def _manual_effect(step: KillSwitchStep, activation: KillSwitchActivation, comment: str, actor: Actor) -> str:
    """What a step done by hand changes in Steward: a credential suspended (or reactivated) by a person."""
    credential = step.credential
    if credential is None:
        return ""
    by_connector = activation.steps.filter(credential=credential).exclude(pk=step.pk).exclude(
        action__in=MANUAL_ACTIONS).exists()
    steward = lifecycle_actor(f"kill-switch-{activation.pk}")
    person = actor.label
    try:
        if step.action == StepAction.MANUAL_SUSPEND and credential.status == CredentialStatus.ACTIVE:
            state_transition(actor=steward, instance=credential, transition="suspend", action="credential.suspend",
                             summary=f"{credential} suspended by hand by {person} (kill switch of "
                                     f"{activation.workflow}, step {step.position}): {comment}")
            return "credential suspended"
        if (step.action == StepAction.MANUAL_REACTIVATE and not by_connector
                and credential.status == CredentialStatus.SUSPENDED):
            state_transition(actor=steward, instance=credential, transition="reactivate",
                             action="credential.reactivate", approval_request=_request_of(activation),
                             approval_target=activation.workflow,
                             fields={"last_rotated_at": timezone.now()},
                             summary=f"{credential} active again with a new secret issued by hand by {person} "
                                     f"(reactivation of {activation.workflow}, step {step.position}): {comment}")
            return "credential reactivated"
    except StateChangeRefused:
        return "its status had already changed in Steward"
    return ""


def _close_manual(*, actor: Actor, step_id: int, status: str, text: str, verb: str) -> KillSwitchStep:
    with transaction.atomic():
        step, activation = _open_manual_step(step_id)
        if actor.kind == "system":
            pass  # Steward itself (a task closing a step it was told is done)
        elif status == StepStatus.WAIVED:
            if not roles.is_security_admin(actor.user):
                raise PermissionDenied("Only a security admin may waive a step of a kill switch.")
        elif not may_close_step(actor.user, step):
            raise PermissionDenied("Only the step's assignee, a security admin or the workflow's owner side may "
                                   "mark it done.")
        now = timezone.now()
        effect = _manual_effect(step, activation, text, actor) if status == StepStatus.MARKED_DONE else ""
        if not compare_and_set(KillSwitchStep, step.pk, field="status", sources=[StepStatus.AWAITING], target=status,
                               closed_by=actor.person, comment=text, finished_at=now,
                               detail=(f"{verb.capitalize()} by {actor.label}: {text}"
                                       + (f" ({effect})" if effect else ""))[:1000]):
            raise ValidationError({"step": f"Step {step.position} changed while you closed it."})
        audit_append(actor=actor, action=f"killswitch.step_{'waived' if status == StepStatus.WAIVED else 'done'}",
                     target=activation.workflow,
                     summary=f"{activation.get_mode_display()} #{activation.pk}, step {step.position} ({step.label}) "
                             f"{verb} by {actor.label}: {text}"[:500],
                     changes={"step": {"before": None, "after": step.pk},
                              "status": {"before": StepStatus.AWAITING, "after": status}})
        if activation.status == KillSwitchStatus.AWAITING_MANUAL and not activation.steps.filter(
                status__in=(StepStatus.PENDING, StepStatus.RUNNING, StepStatus.AWAITING)).exists():
            _finish(activation, lifecycle_actor(f"kill-switch-{activation.pk}"), release=lambda **fields: (
                compare_and_set(KillSwitchActivation, activation.pk, field="status",
                                sources=[KillSwitchStatus.AWAITING_MANUAL], **fields)))
    step.refresh_from_db()
    return step


def killswitch_step_done(*, actor: Actor, step: KillSwitchStep, comment: str) -> KillSwitchStep:
    """A step done by hand, marked done with what was done (audited); the activation completes with its last."""
    ensure_may_write(actor)
    comment = _text(comment, field="comment", missing="Say what was done (where, by whom, the ticket).")
    return _close_manual(actor=actor, step_id=step.pk, status=StepStatus.MARKED_DONE, text=comment,
                         verb="marked done")


def killswitch_step_waive(*, actor: Actor, step: KillSwitchStep, reason: str) -> KillSwitchStep:
    """A security admin waives a step done by hand (it cannot be done, or is not needed), with the reason."""
    ensure_may_write(actor)
    reason = _text(reason, field="reason", missing="Say why this step is waived.")
    return _close_manual(actor=actor, step_id=step.pk, status=StepStatus.WAIVED, text=reason, verb="waived")


def killswitch_step_assign(*, actor: Actor, step: KillSwitchStep, assignee: Person) -> KillSwitchStep:
    """Give a step done by hand to someone else (audited)."""
    ensure_may_write(actor)
    if assignee is None or not assignee.is_active or getattr(assignee, "is_departed", False):
        raise ValidationError({"assignee": "Assign the step to an active person."})
    with transaction.atomic():
        step, activation = _open_manual_step(step.pk)
        _ensure_may(actor, activation.workflow)
        before = step.assignee.get_username() if step.assignee else None
        KillSwitchStep.objects.filter(pk=step.pk).update(assignee=assignee)
        audit_append(actor=actor, action="killswitch.step_assign", target=activation.workflow,
                     summary=f"Step {step.position} of {activation} assigned to {assignee.get_username()}",
                     changes={"assignee": {"before": before, "after": assignee.get_username()}})
    step.refresh_from_db()
    return step
