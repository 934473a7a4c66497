"""The declared state machines of the inventory and the one service that moves them.

Workflow.status, Credential.status and System.lifecycle change only through state_transition():
the transition must be declared here, the actor must hold one of its roles, a transition that
needs an approval must be given the approved (or executing) request of that action for this very
object, and the move itself is one compare-and-set with its audit event. Plain edits never touch
these fields (services.inventory refuses them); docs/architecture.md prints these tables and a test
keeps the two the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction

from governance import permissions, roles
from governance.audit import Actor, audit_append, field_changes
from governance.choices import CredentialStatus as C
from governance.choices import SystemLifecycle as L
from governance.choices import WorkflowStatus as W
from governance.models import Credential, System, Workflow
from governance.models.approvals import ApprovalRequest, ApprovalStatus
from governance.services.common import ensure_may_write, snapshot
from governance.services.governance_items import workflow_governance_gaps
from governance.transitions import StateMachine, Transition, TransitionRefused, machine_transition

SECURITY_ADMIN, OWNER, STEWARD = "security_admin", "owner", "steward"
ROLE_LABELS = {SECURITY_ADMIN: "security admin", OWNER: "owner or backup team", STEWARD: "Steward"}
OWNERS = (SECURITY_ADMIN, OWNER)
# An integration's mirror credential follows the integration, whoever acted on it (its own service checks them).
MIRROR = (SECURITY_ADMIN, OWNER, STEWARD)

WORKFLOW_MACHINE = StateMachine(model=Workflow, field="status", initial=W.PROPOSED, transitions=(
    Transition("activate", {W.PROPOSED}, W.ACTIVE, who="owner, backup team or security admin", by=OWNERS),
    Transition("kill_switch", {W.PROPOSED, W.ACTIVE}, W.SUSPENDED,
               who="owner, backup team or security admin (the kill switch); Steward when an attestation lapses",
               by=(*OWNERS, STEWARD)),
    Transition("reactivate", {W.SUSPENDED}, W.ACTIVE,
               who="Steward executing the approved reactivation request (two people)",
               needs_approval="reactivation", by=(*OWNERS, STEWARD)),
    Transition("retire", {W.PROPOSED, W.ACTIVE, W.SUSPENDED}, W.RETIRED, who="security admin (or Steward itself)",
               by=(SECURITY_ADMIN, STEWARD)),
    Transition("retire_on_request", {W.PROPOSED, W.ACTIVE, W.SUSPENDED}, W.RETIRED,
               who="Steward executing an approved retirement request (filed by the owner or backup team)",
               needs_approval="retirement", by=(STEWARD,)),
))

CREDENTIAL_MACHINE = StateMachine(model=Credential, field="status", initial=C.ACTIVE, transitions=(
    Transition("activate", {C.REQUESTED}, C.ACTIVE, who="owner, backup team or security admin (it was issued)",
               by=OWNERS),
    Transition("suspend", {C.ACTIVE}, C.SUSPENDED,
               who="Steward, once the connector proved the kill switch's suspension", by=(STEWARD,)),
    Transition("reactivate", {C.SUSPENDED}, C.ACTIVE,
               who="Steward executing the approved reactivation of its workflow, once the connector proved it",
               needs_approval="reactivation", by=(STEWARD,)),
    Transition("revoke", {C.ACTIVE, C.SUSPENDED}, C.REVOKED,
               who="Steward, once the connector proved a revocation (asked by the owner, backup team, security "
                   "admin or a retirement)", by=(STEWARD,)),
    Transition("mirror_expire", {C.ACTIVE}, C.EXPIRED,
               who="Steward, mirroring an integration whose token expired", by=MIRROR),
    Transition("mirror_revoke", {C.ACTIVE, C.SUSPENDED, C.EXPIRED, C.REQUESTED}, C.REVOKED,
               who="Steward, mirroring an integration disabled or left without a token", by=MIRROR),
    Transition("mirror_reissue", {C.REVOKED, C.EXPIRED, C.REQUESTED}, C.ACTIVE,
               who="Steward, mirroring an integration that got a new token", by=MIRROR),
    Transition("provision_prove", {C.PROVISIONING}, C.ACTIVE,
               who="Steward, once the connector created the identity and proved that its new secret works",
               by=(STEWARD,)),
    Transition("provision_fail", {C.PROVISIONING}, C.PROVISIONING_FAILED,
               who="Steward, when provisioning failed (what it had created is removed again)", by=(STEWARD,)),
))

SYSTEM_MACHINE = StateMachine(model=System, field="lifecycle", initial=L.ACTIVE, transitions=(
    Transition("activate", {L.PLANNED}, L.ACTIVE, who="owner, backup team or security admin", by=OWNERS),
    Transition("begin_retirement", {L.PLANNED, L.ACTIVE}, L.RETIRING, who="owner, backup team or security admin",
               by=OWNERS),
    Transition("retire", {L.PLANNED, L.ACTIVE, L.RETIRING}, L.RETIRED, who="security admin (or Steward itself)",
               by=(SECURITY_ADMIN, STEWARD)),
    Transition("retire_on_request", {L.PLANNED, L.ACTIVE, L.RETIRING}, L.RETIRED,
               who="Steward executing an approved retirement request (filed by the owner or backup team)",
               needs_approval="retirement", by=(STEWARD,)),
))

MACHINES: dict[type[models.Model], StateMachine] = {
    Workflow: WORKFLOW_MACHINE, Credential: CREDENTIAL_MACHINE, System: SYSTEM_MACHINE,
}
# The transitions a person asks for directly (API POST .../transition/, the portal's buttons).
DIRECT = {Workflow: ("activate",), Credential: ("activate",), System: ("activate", "begin_retirement")}


class StateChangeRefused(ValidationError):
    """The object is not in a state the transition starts from, or someone else moved it first."""


def machine_for(model_or_instance) -> StateMachine:
    model = model_or_instance if isinstance(model_or_instance, type) else type(model_or_instance)
    return MACHINES[model]


def _holds(actor: Actor, role: str, instance: models.Model) -> bool:
    if actor.kind == "system":
        return role == STEWARD
    user = actor.user
    if role == SECURITY_ADMIN:
        return roles.is_security_admin(user)
    if role == OWNER:
        return not roles.is_auditor(user) and permissions.can(user, permissions.CHANGE, instance)
    return False


def approval_matches(approval_request, action: str, instance: models.Model) -> bool:
    """The request is of this action, for this object, and approved (or being executed) in the database."""
    if approval_request is None or getattr(approval_request, "pk", None) is None:
        return False
    return ApprovalRequest.objects.filter(
        pk=approval_request.pk, action=action, status__in=(ApprovalStatus.APPROVED, ApprovalStatus.EXECUTED),
        target_object_id=str(instance.pk), target_content_type__model=instance._meta.model_name,
        target_content_type__app_label=instance._meta.app_label).exists()


def state_transition(*, actor: Actor, instance: models.Model, transition: str, summary: str,
                     action: str = "", approval_request=None, approval_target: models.Model | None = None,
                     fields: Mapping[str, Any] | None = None) -> Transition:
    """Make a declared transition on instance, audited; extra fields are written in the same statement.

    Raises PermissionDenied when the actor holds none of its roles, ValidationError when it needs an
    approval that was not given (approval_target: the object the request is about when it is not
    instance, as a workflow's reactivation for its credentials), StateChangeRefused when the state
    is not (or no longer) one the transition starts from.
    """
    machine = machine_for(instance)
    declared = machine.named(transition)
    ensure_may_write(actor)
    if not any(_holds(actor, role, instance) for role in declared.by):
        raise PermissionDenied(f"Only the {declared.who} may {transition.replace('_', ' ')} {instance}.")
    if declared.needs_approval and not approval_matches(approval_request, declared.needs_approval,
                                                                     approval_target or instance):
        raise ValidationError({machine.field: f"{transition.replace('_', ' ').capitalize()} of {instance} needs an "
                                              f"approved {declared.needs_approval} request: file one with POST "
                                              f"/api/v1/approval-requests/ action={declared.needs_approval}."})
    fields = dict(fields or {})
    names = [machine.field, *fields]
    before = snapshot(instance, names)
    with transaction.atomic():
        if isinstance(instance, Workflow) and transition == "activate":
            gaps = workflow_governance_gaps(Workflow.objects.get(pk=instance.pk))
            if gaps:  # the four governance items (governance_items): a workflow stays proposed without them
                raise ValidationError(gaps)
        try:
            machine_transition(machine, instance, transition, **fields)
        except TransitionRefused as exc:
            raise StateChangeRefused({machine.field: str(exc)}) from None
        audit_append(actor=actor, action=action or f"{instance._meta.model_name}.{transition}", target=instance,
                     summary=summary[:500], changes=field_changes(before, snapshot(instance, names)))
    return declared


def direct_transition(*, actor: Actor, instance: models.Model, transition: str, reason: str = "") -> models.Model:
    """A transition a person asks for by name (activate a proposed workflow, begin a system's retirement)."""
    if transition not in DIRECT[type(instance)]:
        offered = ", ".join(DIRECT[type(instance)])
        raise ValidationError({"transition": f"{transition!r} is not a transition you ask for directly here; "
                                             f"choose one of {offered}."})
    label = transition.replace("_", " ")
    reason = (reason or "").strip()
    state_transition(actor=actor, instance=instance, transition=transition,
                     summary=f"{label.capitalize()}: {instance}" + (f" ({reason})" if reason else ""))
    return instance


def machine_table(machine: StateMachine) -> list[tuple[str, str, str, str, str]]:
    """Rows (from, to, operation, who, approval needed) for the documentation."""
    return [(", ".join(sorted(t.sources)), t.target, t.name, t.who, t.needs_approval or "no")
            for t in machine.transitions]


def machines_markdown() -> str:
    """The three machines as Markdown tables, exactly as docs/architecture.md shows them."""
    parts = []
    for machine in MACHINES.values():
        parts.append(f"**{machine.model.__name__}.{machine.field}** (a new one starts {machine.initial})\n")
        parts.append("| From | To | Operation | Who | Approval needed |")
        parts.append("|---|---|---|---|---|")
        parts += [f"| {' | '.join(row)} |" for row in machine_table(machine)]
        parts.append("")
    return "\n".join(parts)
