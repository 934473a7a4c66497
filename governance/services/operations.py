"""Incident-response operations as one call each, for the API (a SOAR or ticketing tool) and the portal.

Each operation is the existing lifecycle service behind the same gate as the portal (kill switch,
drill, rotation, revocation); this module adds only what an operation made through an integration
needs: the integration must act for its person at the moment of the call (the rule the approvals
engine applies, checked again here rather than only when the token was read), and the person is
who the services gate and the audit trail names. A privileged credential's rotation waits for an
approved "privileged_rotation" request: rotate-now files it for the person (and records the
integration and its owner), so separation of duties keeps both from approving it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from governance import permissions
from governance.audit import Actor
from governance.choices import WorkflowStatus
from governance.models import Credential, Workflow
from governance.models.approvals import ApprovalAction, ApprovalRequest, ApprovalStatus
from governance.models.lifecycle import (
    KILL_SWITCH_OPEN,
    CredentialRevocation,
    KillSwitchActivation,
    KillSwitchStatus,
    KillSwitchStep,
    RotationJob,
    RotationStatus,
    SharedChoice,
    StepAction,
)
from governance.services import deprovision, killswitch, killswitch_plan, rotation
from governance.services.approvals import approval_request_file
from governance.services.integration_access import integration_accountable_owner_id


def ensure_acts_for(actor: Actor) -> None:
    """Through an integration: it must act for its person now (its owner, or a delegation in force)."""
    if actor.kind == "integration":
        integration_accountable_owner_id(integration_id=actor.id, person=actor.person)


# Kill switch and drill ---------------------------------------------------------------------------

def _planned(steps, *, start: int) -> list[dict]:
    return [{"position": position, "action": step.action, "label": step.label, "manual": step.manual,
             "detail": step.detail, "credential": step.credential.pk if step.credential is not None else None}
            for position, step in enumerate(steps, start=start)]


def workflow_kill_switch_preview(*, actor: Actor, workflow: Workflow, shared_choice: str = "") -> dict:
    """What activating the kill switch would do now (services.killswitch.killswitch_preview), as data.

    Per bound credential: how it is stopped and the other live workflows using it (by name those the
    caller may see, the rest counted); the steps for each possible choice when a credential is shared
    (only the one asked for when shared_choice is given, which must then be valid).
    """
    ensure_acts_for(actor)
    preview = killswitch.killswitch_preview(workflow=workflow, actor=actor)
    visible = set(permissions.restrict(
        Workflow.objects.filter(pk__in=[o.id for row in preview.rows for o in row.others]), actor.user,
        permissions.VIEW).values_list("pk", flat=True)) if actor.user is not None else set()
    credentials = [{
        "credential": {"id": row.credential.pk, "name": row.credential.name, "status": row.credential.status},
        "connector": row.connector, "revokes_at_issuer": row.revokes_at_issuer, "how": row.how,
        "problem": row.problem, "needs_manual_step": row.needs_manual_step,
        "shared_with": [{"id": o.id, "name": o.name, "status": o.status} for o in row.others if o.id in visible],
        "shared_hidden": sum(1 for o in row.others if o.id not in visible),
    } for row in preview.rows]
    choice = killswitch_plan.shared_choice_clean(preview, shared_choice) if shared_choice else ""
    options = [choice] if choice else ([value for value, _label in preview.choices] or [""])
    labels = dict(SharedChoice.choices)
    first = {"position": 1, "action": StepAction.SUSPEND_WORKFLOW, "label": f"Suspend the workflow {workflow}",
             "manual": False, "detail": f"Status {workflow.status} -> suspended.", "credential": None}
    plans = [{"shared_choice": option, "label": labels.get(option, "The only plan: no credential is shared"),
              "steps": [first, *_planned(killswitch_plan.activation_steps(preview, shared_choice=option), start=2)]}
             for option in options]
    running = KillSwitchActivation.objects.filter(workflow=workflow, status__in=KILL_SWITCH_OPEN).first()
    blocker = ""
    if workflow.status not in (WorkflowStatus.ACTIVE, WorkflowStatus.PROPOSED):
        blocker = f"{workflow} is {workflow.get_status_display().lower()}: there is nothing to stop."
    elif running is not None and running.status == KillSwitchStatus.RUNNING:
        blocker = f"A kill switch, drill or reactivation of {workflow} is still running (#{running.pk})."
    return {"workflow": {"id": workflow.pk, "name": workflow.name, "status": workflow.status},
            "may_activate": not blocker, "blocker": blocker, "open_activation": running.pk if running else None,
            "needs_choice": preview.needs_choice,
            "choices": [{"value": value, "label": label} for value, label in preview.choices],
            "credentials": credentials, "plans": plans}


def workflow_kill_switch_activate(*, actor: Actor, workflow: Workflow, reason: str,
                                  shared_choice: str = "") -> KillSwitchActivation:
    ensure_acts_for(actor)
    return killswitch.killswitch_activate(actor=actor, workflow=workflow, reason=reason,
                                          shared_choice=shared_choice or None)


def kill_switch_step_done(*, actor: Actor, step: KillSwitchStep, comment: str) -> KillSwitchStep:
    ensure_acts_for(actor)
    return killswitch.killswitch_step_done(actor=actor, step=step, comment=comment)


def kill_switch_step_waive(*, actor: Actor, step: KillSwitchStep, reason: str) -> KillSwitchStep:
    ensure_acts_for(actor)
    return killswitch.killswitch_step_waive(actor=actor, step=step, reason=reason)


def workflow_drill_start(*, actor: Actor, workflow: Workflow) -> KillSwitchActivation:
    ensure_acts_for(actor)
    return killswitch.drill_start(actor=actor, workflow=workflow)


# Rotation and revocation -------------------------------------------------------------------------

@dataclass(frozen=True)
class RotateNow:
    job: RotationJob
    approval_request: ApprovalRequest | None = None


def _pending_rotation_request(credential: Credential) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(action=ApprovalAction.PRIVILEGED_ROTATION, status=ApprovalStatus.PENDING,
                                          target_object_id=str(credential.pk),
                                          target_content_type__model="credential").order_by("pk").first()


def credential_rotate_now(*, actor: Actor, credential: Credential, reason: str = "") -> RotateNow:
    """A rotation due today (the open one if there is one); for a privileged credential, also its approval request.

    Bad input (a privileged credential without a reason) leaves nothing behind: job and request are one
    transaction.
    """
    ensure_acts_for(actor)
    with transaction.atomic():
        job = rotation.rotation_request(actor=actor, credential=credential)
        if job.status != RotationStatus.AWAITING_APPROVAL:
            return RotateNow(job=job)
        pending = _pending_rotation_request(credential)
        if pending is not None:
            return RotateNow(job=job, approval_request=pending)
        reason = (reason or "").strip()
        if not reason:
            raise ValidationError({"reason": f"{credential} is privileged: its rotation needs an approved request. "
                                             "Say why it must rotate now, and the request is filed for you."})
        request = approval_request_file(actor=actor, action=ApprovalAction.PRIVILEGED_ROTATION, target=credential,
                                        payload={}, justification=reason)
    return RotateNow(job=job, approval_request=request)


def credential_revoke_now(*, actor: Actor, credential: Credential, reason: str) -> CredentialRevocation:
    ensure_acts_for(actor)
    return deprovision.credential_revoke(actor=actor, credential=credential, reason=reason)
