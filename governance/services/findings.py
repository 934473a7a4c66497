"""Changes people (and the approvals engine) make to findings: acknowledge, accept a risk.

Findings are opened, reopened and resolved only by the sweep. A person acknowledges open
findings of objects they may change; a risk is accepted only when an approved risk-acceptance
request executes, until an expiry after which the sweep reopens the finding. Each state
change appends one audit event. The per-check sweep lock is taken first, so a sweep and these
services never interleave on the same check's findings.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import permissions
from governance.audit import Actor, audit_append, field_changes
from governance.models.checks import FINDING_TRANSITIONS, FINDING_TYPE, Finding, FindingState
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_may_write
from governance.services.sweep import lock_checks
from governance.services.webhooks import webhook_event_emit

RISK_ACCEPTANCE_ACTION = "risk_acceptance"
RISK_ACCEPTANCE_READY = ("approved", "executing", "executed")
COMMENT_LIMIT = 2000


def _changeable(actor: Actor, queryset):
    if actor.kind == "system":
        return queryset
    return permissions.restrict(queryset, actor.user, permissions.CHANGE)


def finding_acknowledge(*, actor: Actor, finding_ids: list[int], comment: str = "") -> int:
    """Acknowledge open findings: the owner knows and is on it. Returns how many changed state.

    Every id must be a finding the actor may change (missing and forbidden look the same);
    findings already acknowledged, risk-accepted or resolved are left as they are.
    """
    ensure_may_write(actor)
    comment = (comment or "").strip()
    reject_secret_values({"comment": comment}, ["comment"])
    if len(comment) > COMMENT_LIMIT:
        raise ValidationError({"comment": f"Keep the comment under {COMMENT_LIMIT} characters."})
    ids = sorted({int(pk) for pk in finding_ids})
    if not ids:
        raise ValidationError({"finding_ids": "Select at least one finding."})
    sources, target = FINDING_TRANSITIONS["acknowledge"]
    with transaction.atomic():
        allowed = set(_changeable(actor, Finding.objects.filter(pk__in=ids)).values_list("pk", flat=True))
        if len(allowed) != len(ids):
            raise PermissionDenied(
                f"{len(ids) - len(allowed)} of the selected findings do not exist or are not "
                "yours to acknowledge; nothing was changed."
            )
        lock_checks(Finding.objects.filter(pk__in=ids).order_by().values_list("failed_check_id", flat=True).distinct())
        rows = list(
            Finding.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, state__in=sources)
            .select_related("failed_check")
            .order_by("pk")
        )
        now = timezone.now()
        Finding.objects.filter(pk__in=[f.pk for f in rows], state__in=sources).update(
            state=target, acknowledged_by=actor.person, acknowledged_at=now, acknowledged_comment=comment
        )
        for finding in rows:
            audit_append(
                actor=actor,
                action="finding.acknowledge",
                object_type=FINDING_TYPE,
                object_id=finding.pk,
                summary=f"{finding.failed_check.code} for {finding.object_repr} acknowledged",
                changes={
                    "state": {"before": finding.state, "after": target},
                    "comment": {"before": "", "after": comment},
                },
            )
    return len(rows)


def finding_accept_risk(*, actor: Actor, finding_id: int, approval_request, expires_at: dt.datetime) -> Finding:
    """Record an accepted risk on a finding, as an approved risk-acceptance request executes.

    Called by the approvals engine (actor: its system actor). The finding stays risk-accepted
    while it fails, until expires_at; then the sweep reopens it.
    """
    ensure_may_write(actor)
    if getattr(approval_request, "action", None) != RISK_ACCEPTANCE_ACTION:
        raise ValidationError({"approval_request": "Only a risk-acceptance request can accept a finding's risk."})
    if getattr(approval_request, "status", None) not in RISK_ACCEPTANCE_READY:
        raise ValidationError({"approval_request": "The risk-acceptance request has not been approved."})
    if getattr(approval_request, "pk", None) is None:
        raise ValidationError({"approval_request": "The risk-acceptance request must be saved first."})
    if expires_at is None or timezone.is_naive(expires_at) or expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Give an expiry in the future (with a time zone)."})
    sources, target = FINDING_TRANSITIONS["accept_risk"]
    with transaction.atomic():
        finding = _changeable(actor, Finding.objects.all()).filter(pk=finding_id).first()
        if finding is None:
            raise PermissionDenied("No such finding.")
        lock_checks([finding.failed_check_id])
        finding = Finding.objects.select_for_update(of=("self",)).select_related("failed_check").get(pk=finding.pk)
        if finding.state not in sources:
            raise ValidationError(
                {
                    "finding": f"A {finding.get_state_display().lower()} finding cannot be "
                    "risk-accepted; the sweep resolved it."
                }
            )
        before = {
            "state": finding.state,
            "risk_accepted_until": finding.risk_accepted_until,
            "risk_acceptance_request_id": finding.risk_acceptance_request_id,
        }
        finding.state = target
        finding.risk_accepted_until = expires_at
        finding.risk_acceptance_request_id = approval_request.pk
        finding.save(update_fields=["state", "risk_accepted_until", "risk_acceptance_request_id"])
        after = {
            "state": target,
            "risk_accepted_until": expires_at,
            "risk_acceptance_request_id": approval_request.pk,
        }
        audit_append(
            actor=actor,
            action="finding.accept_risk",
            object_type=FINDING_TYPE,
            object_id=finding.pk,
            summary=f"{finding.failed_check.code} for {finding.object_repr}: risk accepted until "
            f"{expires_at:%Y-%m-%d} (request #{approval_request.pk})",
            changes=field_changes(before, after),
        )
        webhook_event_emit(event_type="finding.risk_accepted", payload={
            "id": finding.pk, "check": finding.failed_check.code, "object_type": finding.object_type,
            "object_id": finding.object_id, "object": finding.object_repr,
            "risk_accepted_until": expires_at.isoformat(), "approval_request_id": approval_request.pk,
            "ticket": {"system": finding.ticket_system, "key": finding.ticket_key, "url": finding.ticket_url}})
    return finding


__all__ = ["FindingState", "finding_accept_risk", "finding_acknowledge"]
