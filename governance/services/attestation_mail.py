"""The emails of owner attestation, queued in the transaction that caused them and sent after it commits.

Each notice is a MailDelivery (governance.services.mail): written with the attestation or sweep
that caused it, sent by a worker, retried while the mail server is down and recorded as sent or
failed. The stamp on the item stays the evidence that the notice was due. The same notice is a
notification in each recipient's inbox (governance.services.notifications), named by its event so
that it is told once.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from governance import roles
from governance.models import Person
from governance.models.notifications import NotificationKind
from governance.services.mail import mail_queue
from governance.services.notifications import NotificationDraft, may_receive, notifications_send_many

_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar("attestation_mail_off", default=False)


@contextlib.contextmanager
def suppressed():
    """No notices inside this block (the demo seed replays history that nobody should be mailed about)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


@dataclass(frozen=True)
class Notice:
    """One message to some people: mailed to their addresses, and in their inboxes as `summary`."""

    people: tuple[Person, ...]
    subject: str
    body: str
    event: str = ""  # names the notice for the inbox (unique per recipient); empty: mail only
    summary: str = ""
    link: str = ""

    @property
    def recipients(self) -> tuple[str, ...]:
        return addresses(self.people)


def portal_url(name: str, *args) -> str:
    return settings.STEWARD_BASE_URL.rstrip("/") + reverse(name, args=args)


def addresses(people: Iterable[Person | None]) -> tuple[str, ...]:
    return tuple(sorted({p.email for p in people if p is not None and p.email and p.is_active}))


def security_admins() -> tuple[Person, ...]:
    return tuple(Person.objects.filter(groups__name=roles.SECURITY_ADMINS, is_active=True).distinct())


def security_admin_addresses() -> tuple[str, ...]:
    return addresses(security_admins())


def send_after_commit(notices: list[Notice]) -> None:
    """Queue the notices in the caller's transaction (a worker sends the mail once it commits) and write
    each one's inbox notifications with them."""
    if _suppressed.get():
        return
    notifications_send_many(
        NotificationDraft(recipient_id=person.pk, kind=NotificationKind.ATTESTATION,
                          subject=notice.subject.removeprefix("[Steward] "), body=notice.summary,
                          link=notice.link, dedupe_key=f"attestation:{notice.event}")
        for notice in notices if notice.event
        for person in {p.pk: p for p in notice.people if may_receive(p)}.values())
    for notice in notices:
        mail_queue(subject=notice.subject, body=notice.body, recipients=notice.recipients)


def opened_notice(person: Person, campaign, count: int) -> Notice:
    return Notice(
        (person,),
        f"[Steward] Attestation {campaign.name}: {count} item(s) to review by {campaign.due_at:%Y-%m-%d}",
        f"Hello {person},\n\nThe attestation campaign \"{campaign.name}\" asks you to review {count} "
        f"workflow(s) and credential(s) you are accountable for: still needed, still yours, scoped right, "
        f"stored right?\n\n"
        f"Due: {campaign.due_at:%Y-%m-%d %H:%M} UTC.\nYour inbox: {portal_url('attestation-inbox')}\n",
        event=f"campaign:{campaign.pk}:opened", link=reverse("attestation-inbox"),
        summary=f"{count} item(s) of \"{campaign.name}\" to review by {campaign.due_at:%Y-%m-%d}.",
    )


def reminder_notice(person: Person, campaign, items: list) -> Notice:
    names = "\n".join(f"- {item.object_repr}" for item in items[:50])
    return Notice(
        (person,),
        f"[Steward] Reminder: {len(items)} attestation item(s) due {campaign.due_at:%Y-%m-%d}",
        f"Hello {person},\n\nThese items of \"{campaign.name}\" still wait for your answer:\n{names}\n\n"
        f"Due: {campaign.due_at:%Y-%m-%d %H:%M} UTC. After that your team manager is told.\n"
        f"Your inbox: {portal_url('attestation-inbox')}\n",
        event=f"campaign:{campaign.pk}:reminder:{min(item.pk for item in items)}",
        link=reverse("attestation-inbox"),
        summary=f"{len(items)} item(s) of \"{campaign.name}\" still wait for your answer.",
    )


def escalation_notice(people: Iterable[Person | None], campaign, items: list) -> Notice:
    lines = "\n".join(f"- {item.object_repr} (assigned to {item.assignee or 'nobody'})"
                      for item in items[:50])
    return Notice(
        tuple(p for p in people if p is not None),
        f"[Steward] Overdue attestation: {len(items)} item(s) of {campaign.name}",
        f"These attestation items of \"{campaign.name}\" were due {campaign.due_at:%Y-%m-%d} "
        f"and are unanswered:\n"
        f"{lines}\n\nAt {campaign.grace_until:%Y-%m-%d %H:%M} UTC the consequence applies "
        f"({campaign.consequence}).\nCampaign: {portal_url('attestation-campaign-detail', campaign.pk)}\n",
        event=f"campaign:{campaign.pk}:escalated:{min(item.pk for item in items)}",
        link=reverse("attestation-campaign-detail", args=[campaign.pk]),
        summary=f"{len(items)} item(s) of \"{campaign.name}\" were due {campaign.due_at:%Y-%m-%d} "
                f"and are unanswered.",
    )


def reassigned_notice(person: Person, items: list, departed: Person) -> Notice:
    names = "\n".join(f"- {item.object_repr} ({item.campaign})" for item in items[:50])
    return Notice(
        (person,),
        f"[Steward] {len(items)} attestation item(s) passed to you",
        f"Hello {person},\n\n{departed} has left; their open attestation items are now yours:\n{names}\n\n"
        f"Your inbox: {portal_url('attestation-inbox')}\n",
        event=f"reassigned:{departed.pk}:{min(item.pk for item in items)}", link=reverse("attestation-inbox"),
        summary=f"{departed} has left; {len(items)} of their open attestation item(s) are now yours.",
    )


def storage_flag_notice(item, comment: str, by) -> Notice:
    return Notice(
        security_admins(),
        f"[Steward] Storage flagged in attestation: {item.object_repr}",
        f"{by} flagged where {item.object_repr} is stored, in \"{item.campaign}\":\n\n{comment}\n\n"
        f"Item: {portal_url('attestation-item', item.pk)}\n",
    )
