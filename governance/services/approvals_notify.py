"""The emails of the approval engine: one message per event, queued in the transaction of the event.

Each message is a MailDelivery (governance.services.mail), sent by a worker after the commit and
retried while the mail server is down, so a mail outage neither undoes a committed decision nor
loses its notice. The stamps on the request (reminded_at, escalated_at, the status) are the
evidence that a notice was due, and the compare-and-set on them is what keeps a second sweep from
queueing it again.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable

from django.conf import settings
from django.urls import reverse

from governance.models import Person
from governance.models.approvals import ApprovalRequest
from governance.models.notifications import NotificationKind
from governance.services.mail import mail_queue
from governance.services.notifications import draft_for, may_receive, notifications_send_many

_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar("steward_approval_mail_off", default=False)


@contextlib.contextmanager
def notifications_suppressed():
    """Seeding history (the demo estate) records requests without emailing anyone about them."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def _url(request: ApprovalRequest) -> str:
    return settings.STEWARD_BASE_URL.rstrip("/") + reverse("approval-detail", args=[request.pk])


def _recipients(people: Iterable[Person]) -> list[Person]:
    """Who is told: active people who have not left (the mail goes to those of them with an address)."""
    return list({p.pk: p for p in people if may_receive(p)}.values())


def _addresses(people: Iterable[Person]) -> list[str]:
    return sorted({p.email for p in _recipients(people) if p.email})


def _queue(request: ApprovalRequest, subject: str, body: str, people: Iterable[Person], *, kind: str,
           event: str) -> None:
    """The event's mail and the recipients' inbox notifications, in the caller's transaction."""
    people = _recipients(people)
    if not people or _suppressed.get():
        return
    notifications_send_many(
        draft_for(person, kind=kind, subject=subject.removeprefix("[Steward] "), body=_summary(request),
                  link=request.get_absolute_url(), target=request, dedupe_key=f"approval:{request.pk}:{event}")
        for person in people)
    mail_queue(subject=subject, body=body, recipients=_addresses(people))


def _summary(request: ApprovalRequest) -> str:
    """The inbox's short body: who asked, and until when (the page has the rest)."""
    return f"Requested by {request.requested_by}; expires {request.expires_at:%Y-%m-%d %H:%M} UTC."


def _describe(request: ApprovalRequest) -> str:
    target = request.target
    what = f"{request.get_action_display()}" + (f" for {target}" if target is not None else "")
    return f"Approval request #{request.pk}: {what}"


def _details(request: ApprovalRequest) -> str:
    ticket = f"\nTicket: {request.ticket_system} {request.ticket_key} {request.ticket_url}".rstrip() \
        if request.has_ticket else ""
    return (f"Requested by: {request.requested_by}"
            + (f" (through {request.filed_by_label})" if request.filed_by_integration else "")
            + f"\nJustification: {request.justification}{ticket}\nExpires: {request.expires_at:%Y-%m-%d %H:%M} UTC"
            + f"\n\nReview it: {_url(request)}\n")


def deciders(request: ApprovalRequest) -> list[Person]:
    """The people who may decide the request now (separation of duties applied)."""
    # cycle: governance.services.approvals imports approvals_notify
    from governance.services.approvals import decision_blocker, queue_members

    return [p for p in queue_members(request) if decision_blocker(person=p, request=request) is None]


def webhook_payload(request: ApprovalRequest) -> dict:
    return {
        "id": request.pk,
        "action": request.action,
        "status": request.status,
        "target_type": request.target_content_type.model if request.target_content_type_id else None,
        "target_id": request.target_object_id or None,
        "requested_by": request.requested_by.get_username(),
        "failure_reason": request.failure_reason or None,
        "ticket": {"system": request.ticket_system, "key": request.ticket_key, "url": request.ticket_url},
        "url": _url(request),
    }


def _emit(request: ApprovalRequest, *event_types: str) -> None:
    """Outbound webhooks (ticketing systems); deliveries are created now and sent after commit."""
    # cycle: governance.services.approvals imports approvals_notify
    from governance.services.webhooks import webhook_event_emit

    for event_type in event_types:
        webhook_event_emit(event_type=event_type, payload=webhook_payload(request))


WEBHOOK_EVENTS = {
    "executed": ("approval_request.decided", "approval_request.executed"),
    "failed": ("approval_request.decided", "approval_request.failed"),
    "rejected": ("approval_request.decided",),
    "expired": (),
}


def notify_filed(request: ApprovalRequest) -> None:
    _emit(request, "approval_request.filed")
    _queue(request, f"[Steward] {_describe(request)} waits for your decision",
           f"{_describe(request)} waits for your decision.\n\n{_details(request)}",
           deciders(request), kind=NotificationKind.APPROVAL_WAITING, event="filed")


def notify_reminder(request: ApprovalRequest) -> None:
    _queue(request, f"[Steward] Reminder: {_describe(request)} expires soon",
           f"{_describe(request)} is still pending and expires soon.\n\n{_details(request)}",
           deciders(request), kind=NotificationKind.APPROVAL_WAITING, event="reminder")


def notify_escalated(request: ApprovalRequest) -> None:
    group = request.policy.escalation_group
    people = Person.objects.filter(groups=group).exclude(pk=request.requested_by_id) if group else []
    _queue(request, f"[Steward] Escalated: {_describe(request)}",
           f"{_describe(request)} has waited too long and is escalated to {group}.\n\n{_details(request)}",
           people, kind=NotificationKind.APPROVAL_WAITING, event="escalated")


REQUESTER_EVENTS = {
    "executed": "was approved and carried out",
    "failed": "was approved but could not be carried out",
    "rejected": "was rejected",
    "expired": "expired without a decision",
}


def notify_requester(request: ApprovalRequest, *, event: str) -> None:
    _emit(request, *WEBHOOK_EVENTS[event])
    outcome = REQUESTER_EVENTS[event]
    extra = ""
    if event == "failed":
        extra = f"Reason: {request.failure_reason}\n\n"
    elif event == "rejected":
        reasons = [f"- {d.approver}: {d.comment}" for d in request.decisions.filter(decision="reject")]
        extra = "Reason:\n" + "\n".join(reasons) + "\n\n"
    _queue(request, f"[Steward] {_describe(request)} {outcome}",
           f"{_describe(request)} {outcome}.\n\n{extra}{_details(request)}",
           [request.requested_by], kind=NotificationKind.APPROVAL_DECIDED, event=event)
