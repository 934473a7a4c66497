"""The approval engine: filing a request, deciding it, cancelling it, and the expiry sweep.

Every path (portal, API, admin action, task) decides through approval_request_approve/reject,
which apply decision_blocker(): the one separation-of-duties rule. A decision locks the request
row, so simultaneous decisions produce exactly one transition; the losers get "already decided".
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import permissions
from governance.audit import Actor, audit_append
from governance.models import Credential, Person, Workflow
from governance.models.approvals import (
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    DecisionKind,
    may_transition,
)
from governance.secret_guard import reject_secret_values
from governance.selectors import approvals as approval_selectors
from governance.selectors.approvals import DecisionFacts
from governance.services import approvals_notify as notify
from governance.services import integration_access
from governance.services.approvals_execution import execute_approved, load_target
from governance.services.approvals_registry import (
    fingerprint,
    get_action,
    payload_fingerprint,
    payload_to_json,
    register_approval_action,
)
from governance.services.common import ensure_may_write
from governance.services.duplicates import is_unique_violation
from governance.transitions import compare_and_set

__all__ = [
    "ApprovalAlreadyDecided", "approval_request_approve", "approval_request_cancel", "approval_request_file",
    "approval_request_reject", "decision_blocker", "decision_blockers", "decision_facts", "policy_for",
    "register_approval_action", "approval_request_audit", "approval_request_mark_expired",
]
SWEEP_TASK_ID = "approval-sweep"
TICKET_FIELDS = ("system", "key", "url")
DUPLICATE_PENDING = "approvalrequest_one_pending_per_fingerprint"


class ApprovalAlreadyDecided(ValidationError):
    """A decision arrived after the request left pending: a clear answer, never a server error."""

    def __init__(self, request: ApprovalRequest):
        self.request = request
        super().__init__(
            {"status": f"Request #{request.pk} was already decided: it is {request.get_status_display().lower()}."},
        )


def transition(request: ApprovalRequest, from_status: str, to_status: str, **fields) -> bool:
    """Compare-and-set one declared transition; True when this call made it."""
    if not may_transition(from_status, to_status):
        raise RuntimeError(f"{from_status} -> {to_status} is not a declared approval transition")
    changed = compare_and_set(ApprovalRequest, request.pk, field="status", sources=from_status, target=to_status,
                              **fields)
    if changed:
        request.status = to_status
        for name, value in fields.items():
            setattr(request, name, value)
    return changed


# Who decides


def policy_for(*, action: str, target=None) -> ApprovalPolicy:
    """The workflow's own approval path when it gates the action; otherwise the action's default policy."""
    for policy in _own_policies(target):
        if policy.gates(action):
            return policy
    defaults = [p for p in ApprovalPolicy.objects.order_by("name") if action in (p.default_for_actions or [])]
    if not defaults:
        raise ValidationError({"action": "No approval policy gates this action yet: a security admin must "
                                         "set a default policy for it."})
    return defaults[0]


def _own_policies(target) -> list[ApprovalPolicy]:
    if isinstance(target, Workflow):
        return [target.approval_policy] if target.approval_policy_id else []
    if isinstance(target, Credential):  # the strictest path among the workflows that use it
        policies = ApprovalPolicy.objects.filter(workflows__bindings__credential=target).distinct()
        return sorted(policies, key=lambda p: (-p.required_approvals, p.name))
    object_type, object_id = getattr(target, "object_type", ""), getattr(target, "object_id", None)
    if object_type in ("governance.workflow", "governance.credential") and object_id is not None:
        model = Workflow if object_type == "governance.workflow" else Credential
        return _own_policies(model.objects.filter(pk=object_id).first())  # a finding: its object's path
    return []


def queue_members(request: ApprovalRequest):
    """Everyone in the policy's approver groups (and its escalation group once escalated)."""
    groups = list(request.policy.approver_groups.values_list("pk", flat=True))
    if request.escalated_at is not None and request.policy.escalation_group_id:
        groups.append(request.policy.escalation_group_id)
    return Person.objects.filter(groups__in=groups, is_active=True).distinct().order_by("username")


def decision_facts(person: Person, request: ApprovalRequest) -> DecisionFacts:
    """The facts of one decision, read by the same selector as the queue page's bulk path."""
    return approval_selectors.decision_facts(person=person, requests=[request])[request.pk]


def deciding_integration_owner_id(*, actor: Actor | None, person: Person) -> int | None:
    """The owner of the integration this action is made through (None: made directly). Checked again
    here, not only in the API's authentication: the integration must act for person."""
    if actor is None or actor.kind != "integration":
        return None
    return integration_access.integration_accountable_owner_id(integration_id=actor.id, person=person)


def decision_blocker(*, person: Person | None, request: ApprovalRequest, actor: Actor | None = None,
                     facts: DecisionFacts | None = None, integration_owner_id: int | None = None) -> str | None:
    """Why this person may not decide this request now, or None when they may. The one SoD rule.

    A decision counts for the person deciding and, when it is made through an integration, for that
    integration's owner too (integration_owner_id; read from actor when not given). No one approves
    their own request: not the requester, not the owner of the integration that filed it, not through
    an integration of theirs; one person counts once, whatever groups and integrations they have; the
    people who owned the object or managed its backup team while the request was pending only when
    the policy lets owners approve; superusers are not exempt. facts may be computed in bulk (the
    queue page) or are read here.
    """
    if person is None or actor is not None and actor.kind == "system":
        return "Only a person can decide an approval request."
    if not person.is_active or person.is_departed:
        return "Departed or disabled people decide nothing."
    if request.status != ApprovalStatus.PENDING:
        return f"This request is {request.get_status_display().lower()}: it can no longer be decided."
    if person.pk == request.requested_by_id:
        if request.filed_by_integration:
            return (f"{request.filed_by_label} filed this request on your behalf: you are its requester, "
                    "so someone else must decide it.")
        return "You filed this request: someone else must decide it."
    if actor is not None and actor.kind == "integration" and actor.id == request.filed_by_integration_id:
        return "The integration that filed this request cannot decide it."
    if person.pk == request.filed_by_integration_owner_id:
        return (f"You own {request.filed_by_label or 'the integration'} that filed this request: you count as its "
                "requester, so someone else must decide it.")
    if integration_owner_id is None and actor is not None and actor.kind == "integration":
        try:
            integration_owner_id = deciding_integration_owner_id(actor=actor, person=person)
        except PermissionDenied as exc:
            return str(exc)
    facts = facts or decision_facts(person, request)
    through = {integration_owner_id} - {None, person.pk}  # the integration's owner, when not the person
    if through & facts.requester_ids:
        return ("This integration's owner filed this request (or owns the integration that did): a decision "
                "through it counts as theirs, so it cannot approve it.")
    if person.pk in facts.counted_ids:
        return "You have already decided this request; one person counts once."
    if through & facts.counted_ids:
        return ("This integration's owner already counts on this request (directly or through another "
                "integration); one person counts once.")
    policy = request.policy
    if not facts.person_group_ids & facts.allowed_group_ids:
        names = Group.objects.filter(pk__in=facts.allowed_group_ids).values_list("name", flat=True)
        return f"You are not in an approver group of policy {policy} ({', '.join(sorted(names)) or 'none'})."
    if not policy.owner_may_approve and person.pk in facts.owner_ids:
        return (f"You own or would receive the object, or owned it or managed its backup team while this request "
                f"was pending; policy {policy} does not let owners approve.")
    if not policy.owner_may_approve and through & facts.owner_ids:
        return (f"This integration's owner owns or would receive the object (or did while this request was "
                f"pending); policy {policy} does not let owners approve, through an integration either.")
    return None


def decision_blockers(*, person: Person, requests) -> dict[int, str | None]:
    """decision_blocker() for many requests at once (the queue page), with the facts read in a few queries."""
    requests = approval_selectors.attach_targets(requests)
    facts = approval_selectors.decision_facts(person=person, requests=requests)
    return {request.pk: decision_blocker(person=person, request=request, facts=facts[request.pk])
            for request in requests}


def _accountable_person(actor: Actor) -> Person:
    ensure_may_write(actor)
    if actor.kind == "system" or actor.person is None:
        raise PermissionDenied("An approval request needs an accountable person (an integration names one).")
    if actor.kind == "integration":  # raises when the integration does not act for this person
        deciding_integration_owner_id(actor=actor, person=actor.person)
    return actor.person


def approval_request_audit(*, actor: Actor, request: ApprovalRequest, action: str, summary: str, changes: dict) -> None:
    target = load_target(request) if request.target_content_type_id else None
    audit_append(actor=actor, action=action, target=target if target is not None else request,
                 summary=f"Approval request #{request.pk} ({request.get_action_display()}): {summary}",
                 changes={"approval_request": {"before": None, "after": request.pk}, **changes})


# Filing


def _clean_ticket(ticket: dict | None) -> dict[str, str]:
    ticket = {k: (v or "").strip() for k, v in (ticket or {}).items()}
    unknown = sorted(set(ticket) - set(TICKET_FIELDS))
    if unknown:
        raise ValidationError({f"ticket_{name}": "Unknown ticket field." for name in unknown})
    if ticket.get("url") and not ticket["url"].startswith(("https://", "http://")):
        raise ValidationError({"ticket_url": "Give the ticket's web address (https://...)."})
    return {name: ticket.get(name, "") for name in TICKET_FIELDS}


def approval_request_file(*, actor: Actor, action: str, target=None, payload: dict, justification: str,
                          ticket: dict | None = None) -> ApprovalRequest:
    """File a request: validate the proposed change, pick the policy, notify who may decide it."""
    person = _accountable_person(actor)
    spec = get_action(action)
    justification = (justification or "").strip()
    if not justification:
        raise ValidationError({"justification": "Say why this change is needed."})
    ticket = _clean_ticket(ticket)
    reject_secret_values({"justification": justification, **{f"ticket_{k}": v for k, v in ticket.items()}})
    if spec.needs_target and not isinstance(target, spec.target_models):
        names = " or ".join(m._meta.verbose_name for m in spec.target_models)
        raise ValidationError({"target": f"{spec.label} needs a {names}."})
    if not spec.needs_target and target is not None:
        raise ValidationError({"target": f"{spec.label} has no target object."})
    if target is not None:
        target = type(target).objects.get(pk=target.pk)  # validate and fingerprint the stored state
    if spec.may_file is not None and (reason := spec.may_file(person=person, target=target)):
        raise PermissionDenied(reason)
    clean = payload_to_json(spec.validate(requester=person, target=target, payload=payload or {}))
    content_type = ContentType.objects.get_for_model(target) if target is not None else None
    payload_key = payload_fingerprint(
        target_type=f"{content_type.app_label}.{content_type.model}" if content_type else "", payload=clean)
    target_object_id = str(target.pk) if target is not None else ""
    with transaction.atomic():
        policy = policy_for(action=action, target=target)
        _refuse_duplicate(action=action, target_object_id=target_object_id, payload_key=payload_key)
        now = timezone.now()
        try:
            with transaction.atomic():  # the database is the judge of duplicates filed at the same moment
                request = ApprovalRequest.objects.create(
                    action=action, policy=policy, payload=clean, payload_fingerprint=payload_key,
                    requested_by=person, target_content_type=content_type, target_object_id=target_object_id,
                    target_fingerprint=fingerprint(target, spec.fingerprint_fields),
                    filed_by_integration_id=actor.id if actor.kind == "integration" else None,
                    filed_by_label=actor.label if actor.kind == "integration" else "",
                    filed_by_integration_owner_id=deciding_integration_owner_id(actor=actor, person=person),
                    owners_at_filing=approval_selectors.owners_at_filing(target=target),
                    justification=justification, ticket_system=ticket["system"], ticket_key=ticket["key"],
                    ticket_url=ticket["url"], created_at=now,
                    expires_at=now + dt.timedelta(hours=policy.expiry_hours),
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc, DUPLICATE_PENDING):
                raise
            _refuse_duplicate(action=action, target_object_id=target_object_id, payload_key=payload_key)
            raise ValidationError({"action": "The same request is already pending for this object."}) from None
        approval_request_audit(actor=actor, request=request, action="approval.file",
               summary=f"filed by {person}, policy {policy}: {justification}",
               changes={"status": {"before": None, "after": ApprovalStatus.PENDING},
                        "proposed": {"before": None, "after": clean}})
        notify.notify_filed(request)
    return request


def _refuse_duplicate(*, action: str, target_object_id: str, payload_key: str) -> None:
    """One pending request per action, target and proposed change: name the one that is pending."""
    pending = ApprovalRequest.objects.filter(action=action, target_object_id=target_object_id,
                                             payload_fingerprint=payload_key, status=ApprovalStatus.PENDING).first()
    if pending is not None:
        raise ValidationError({"action": f"The same request is already pending for this object: request "
                                         f"#{pending.pk}, filed {pending.created_at:%Y-%m-%d %H:%M} UTC."})


# Deciding


def _deciding_person(actor: Actor) -> Person:
    if actor.kind == "system":
        raise PermissionDenied("Only a person can decide an approval request.")
    return _accountable_person(actor)


def _locked_visible(request_id: int, person: Person) -> ApprovalRequest:
    """Lock the request row (the serialisation point of decisions); what the person may not see is missing."""
    request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
    if not permissions.restrict(ApprovalRequest.objects.filter(pk=request.pk), person).exists():
        raise ApprovalRequest.DoesNotExist("No such approval request.")
    return request


def _decide(*, actor: Actor, request_id: int, decision: str, comment: str) -> ApprovalRequest:
    person = _deciding_person(actor)
    comment = (comment or "").strip()
    if decision == DecisionKind.REJECT and not comment:
        raise ValidationError({"reason": "Say why you reject the request."})
    reject_secret_values({"comment": comment})
    expired = False
    with transaction.atomic():
        request = _locked_visible(request_id, person)
        if request.status != ApprovalStatus.PENDING:
            raise ApprovalAlreadyDecided(request)
        now = timezone.now()
        if request.expires_at <= now:
            expired = approval_request_mark_expired(request, now)
        else:
            _record_decision(actor=actor, person=person, request=request, decision=decision, comment=comment,
                             now=now)
    if expired:
        raise ApprovalAlreadyDecided(request)
    return request


def _record_decision(*, actor, person, request, decision, comment, now) -> None:
    integration_owner_id = deciding_integration_owner_id(actor=actor, person=person)
    blocker = decision_blocker(person=person, request=request, actor=actor, integration_owner_id=integration_owner_id)
    if blocker:
        raise PermissionDenied(blocker)
    ApprovalDecision.objects.create(
        request=request, approver=person, decision=decision, comment=comment, decided_at=now,
        on_behalf_integration_id=actor.id if actor.kind == "integration" else None,
        integration_owner_id=integration_owner_id)
    approvals = request.decisions.filter(decision=DecisionKind.APPROVE).values("approver").distinct().count()
    required = request.policy.required_approvals
    new_status = None
    if decision == DecisionKind.REJECT:
        new_status = ApprovalStatus.REJECTED
    elif approvals >= required:
        new_status = ApprovalStatus.APPROVED
        load_target(request, lock=True)  # lock the target before the audit lock, as other services do
    changes = {"decision": {"before": None, "after": decision},
               "approvals": {"before": approvals - (decision == DecisionKind.APPROVE), "after": approvals}}
    if new_status is not None:
        if not transition(request, ApprovalStatus.PENDING, new_status, decided_at=now):
            raise ApprovalAlreadyDecided(request)
        changes["status"] = {"before": ApprovalStatus.PENDING, "after": new_status}
    verb = "approved" if decision == DecisionKind.APPROVE else "rejected"
    summary = f"{verb} by {person} ({approvals} of {required} approvals)" + (f": {comment}" if comment else "")
    approval_request_audit(actor=actor, request=request, action=f"approval.{decision}", summary=summary,
                           changes=changes)
    if new_status == ApprovalStatus.REJECTED:
        notify.notify_requester(request, event="rejected")
    elif new_status == ApprovalStatus.APPROVED:
        execute_approved(request)


def approval_request_approve(*, actor: Actor, request_id: int, comment: str = "") -> ApprovalRequest:
    """Approve; the approval that reaches the policy's N executes the change, in the same transaction."""
    return _decide(actor=actor, request_id=request_id, decision=DecisionKind.APPROVE, comment=comment)


def approval_request_reject(*, actor: Actor, request_id: int, reason: str) -> ApprovalRequest:
    """Reject with a reason; one rejection ends the request."""
    return _decide(actor=actor, request_id=request_id, decision=DecisionKind.REJECT, comment=reason)


def approval_request_cancel(*, actor: Actor, request_id: int) -> ApprovalRequest:
    """The requester (or an integration acting for them) withdraws a pending request."""
    person = _accountable_person(actor)
    with transaction.atomic():
        request = _locked_visible(request_id, person)
        if request.status != ApprovalStatus.PENDING:
            raise ApprovalAlreadyDecided(request)
        if person.pk != request.requested_by_id:
            raise PermissionDenied("Only the requester may cancel a request.")
        transition(request, ApprovalStatus.PENDING, ApprovalStatus.CANCELLED, decided_at=timezone.now())
        approval_request_audit(actor=actor, request=request, action="approval.cancel", summary=f"cancelled by {person}",
               changes={"status": {"before": ApprovalStatus.PENDING, "after": ApprovalStatus.CANCELLED}})
    return request


# Expiry (the sweep itself is in approvals_sweep)


def approval_request_mark_expired(request: ApprovalRequest, now: dt.datetime) -> bool:
    if not transition(request, ApprovalStatus.PENDING, ApprovalStatus.EXPIRED, decided_at=now):
        return False
    approval_request_audit(actor=Actor.system(task_id=SWEEP_TASK_ID), request=request, action="approval.expire",
           summary="expired without a decision",
           changes={"status": {"before": ApprovalStatus.PENDING, "after": ApprovalStatus.EXPIRED}})
    notify.notify_requester(request, event="expired")
    return True

