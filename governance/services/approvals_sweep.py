"""The approval sweep: expiry at the deadline, escalation after the policy's delay, reminders before expiry.

Each unit is a compare-and-set on the request (its status, escalated_at or reminded_at) in its
own transaction, so a second or overlapping sweep changes nothing and sends nothing twice.
Run every 15 minutes by Celery beat (governance.tasks.approvals).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from governance.audit import Actor
from governance.models.approvals import ApprovalRequest, ApprovalStatus
from governance.services import approvals_notify as notify
from governance.services.approvals import SWEEP_TASK_ID, approval_request_audit, approval_request_mark_expired


def _stamp(request: ApprovalRequest, field: str, now: dt.datetime) -> bool:
    claimed = ApprovalRequest.objects.filter(
        pk=request.pk, status=ApprovalStatus.PENDING, **{f"{field}__isnull": True}).update(**{field: now})
    setattr(request, field, now)
    return bool(claimed)


def approval_request_expire(*, request_id: int, now: dt.datetime | None = None) -> bool:
    """Expire one pending request whose deadline passed (the sweep's unit of work)."""
    now = now or timezone.now()

    with transaction.atomic():
        request = ApprovalRequest.objects.select_related("policy").get(pk=request_id)
        return request.expires_at <= now and approval_request_mark_expired(request, now)


def approval_requests_sweep(*, now: dt.datetime | None = None) -> dict:
    """Expire what passed its deadline, escalate what waited too long, remind before expiry."""

    now = now or timezone.now()
    actor = Actor.system(task_id=SWEEP_TASK_ID)
    counts = {"expired": 0, "escalated": 0, "reminded": 0}
    pending = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).select_related("policy")
    for pk in list(pending.filter(expires_at__lte=now).values_list("pk", flat=True)):
        counts["expired"] += approval_request_expire(request_id=pk, now=now)
    live = pending.filter(expires_at__gt=now)
    for request in list(live.filter(escalated_at__isnull=True, policy__escalation_group__isnull=False)):
        if request.created_at + dt.timedelta(hours=request.policy.escalation_after_hours) > now:
            continue
        with transaction.atomic():
            if _stamp(request, "escalated_at", now):
                counts["escalated"] += 1
                approval_request_audit(actor=actor, request=request, action="approval.escalate",
                       summary=f"escalated to {request.policy.escalation_group}",
                       changes={"escalated_at": {"before": None, "after": now}})
                notify.notify_escalated(request)
    for request in list(live.filter(reminded_at__isnull=True, policy__reminder_before_hours__gt=0)):
        if request.expires_at - dt.timedelta(hours=request.policy.reminder_before_hours) > now:
            continue
        with transaction.atomic():
            if _stamp(request, "reminded_at", now):
                counts["reminded"] += 1
                approval_request_audit(actor=actor, request=request, action="approval.remind",
                       summary="approvers reminded before expiry",
                       changes={"reminded_at": {"before": None, "after": now}})
                notify.notify_reminder(request)
    return counts
