"""Approval policies: security admins define who approves which actions, and the default per action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from governance.audit import Actor
from governance.models.approvals import ApprovalAction, ApprovalPolicy
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_security_admin, record, snapshot

POLICY_FIELDS = (
    "name", "description", "approver_groups", "required_approvals", "owner_may_approve", "expiry_hours",
    "reminder_before_hours", "escalation_group", "escalation_after_hours", "actions", "default_for_actions",
)


def _validate(policy: ApprovalPolicy, groups) -> None:
    errors = {}
    codes = set(ApprovalAction.values)
    for name in ("actions", "default_for_actions"):
        values = getattr(policy, name) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors[name] = "Give a list of action codes."
        elif unknown := sorted(set(values) - codes):
            errors[name] = f"Unknown action codes: {', '.join(unknown)}."
    if "default_for_actions" not in errors and "actions" not in errors:
        if outside := sorted(set(policy.default_for_actions) - set(policy.actions)):
            errors["default_for_actions"] = f"A policy is the default only for actions it gates: {', '.join(outside)}."
        taken = [
            f"{code} (policy {other})"
            for other in ApprovalPolicy.objects.select_for_update().exclude(pk=policy.pk)
            for code in policy.default_for_actions if code in (other.default_for_actions or [])
        ]
        if taken:
            errors["default_for_actions"] = f"Another policy is already the default for {', '.join(taken)}."
    if not isinstance(policy.required_approvals, int) or policy.required_approvals < 1:
        errors["required_approvals"] = "At least one approval is required."
    if not groups:
        errors["approver_groups"] = "Name at least one approver group."
    if (policy.escalation_group_id is None) != (policy.escalation_after_hours is None):
        errors["escalation_after_hours"] = "Give both an escalation group and a delay, or neither."
    if policy.expiry_hours and policy.reminder_before_hours >= policy.expiry_hours:
        errors["reminder_before_hours"] = "Remind before the request expires (less than the expiry time)."
    if errors:
        raise ValidationError(errors)


def _save(*, actor: Actor, policy: ApprovalPolicy, data: Mapping[str, Any], action: str) -> ApprovalPolicy:
    unknown = sorted(set(data) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({name: "Unknown or read-only field." for name in unknown})
    reject_secret_values(data, ("name", "description"))
    before = snapshot(policy, POLICY_FIELDS) if policy.pk else {}
    groups = data.get("approver_groups", policy.approver_groups.all() if policy.pk else [])
    for name, value in data.items():
        if name != "approver_groups":
            setattr(policy, name, list(value) if name in ("actions", "default_for_actions") else value)
    _validate(policy, list(groups))
    policy.full_clean(exclude=["approver_groups"])
    policy.save()
    policy.approver_groups.set(groups)
    after = snapshot(policy, POLICY_FIELDS)
    if before != after:
        record(actor=actor, action=action, instance=policy, summary=f"Approval policy {policy} saved",
               before=before, after=after)
    return policy


def approval_policy_create(*, actor: Actor, data: Mapping[str, Any]) -> ApprovalPolicy:
    ensure_security_admin(actor)
    with transaction.atomic():
        return _save(actor=actor, policy=ApprovalPolicy(), data=data, action="approvalpolicy.create")


def approval_policy_update(*, actor: Actor, policy: ApprovalPolicy, data: Mapping[str, Any]) -> ApprovalPolicy:
    ensure_security_admin(actor)
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
        return _save(actor=actor, policy=policy, data=data, action="approvalpolicy.update")
