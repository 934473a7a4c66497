"""The in-app inbox's writes: notifications told with the event, and marking them read.

Called where the mail of the same event is queued (approvals_notify, attestation_mail, lifecycle's
notify_owner) and where the sweep opens findings, in the transaction of the event: the notification
commits exactly when the event does. The recipients are the ones the mail already picked; nothing here
decides who is told. A notification names its event (dedupe_key, unique per recipient) and is inserted
with ON CONFLICT DO NOTHING, so a task or sweep that runs twice tells each person once.

Texts are short and never carry a secret value: a subject or body that looks like one (secret_guard) is
replaced by a neutral text, and the link is a portal path, not a URL with a host.

This module imports models and helpers only, never another service, so every service may import it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.utils import timezone

from governance.audit import Actor, object_type_of
from governance.models import Person
from governance.models.checks import FINDING_TYPE, Check, Finding
from governance.models.notifications import Notification, NotificationKind
from governance.secret_guard import secret_kind

SUBJECT_LIMIT = 300
BODY_LIMIT = 1000
WITHHELD = "(details withheld: open the linked page)"
BATCH = 1000
PURGE_BATCH = 5000


@dataclass(frozen=True)
class NotificationDraft:
    """One notification to write: for whom, what happened, where to look."""

    recipient_id: int
    kind: str
    subject: str
    dedupe_key: str
    body: str = ""
    link: str = ""
    object_type: str = ""
    object_id: int | None = None


def portal_path(link: str) -> str:
    """A link as a portal path: the base URL the mail uses is cut off; anything else without a leading / is dropped."""
    base = settings.STEWARD_BASE_URL.rstrip("/")
    if base and link.startswith(base):
        link = link[len(base):] or "/"
    return link if link.startswith("/") and not link.startswith("//") else ""


def clean_text(text: str, limit: int) -> str:
    """The text cut to its limit, or the neutral text when it looks like it holds a secret value."""
    text = (text or "").strip()
    if secret_kind(text):
        return WITHHELD
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def draft_for(recipient: Person, *, kind: str, subject: str, dedupe_key: str, body: str = "", link: str = "",
              target: Model | None = None) -> NotificationDraft:
    return NotificationDraft(
        recipient_id=recipient.pk, kind=kind, subject=subject, dedupe_key=dedupe_key, body=body, link=link,
        object_type=object_type_of(target) if target is not None else "",
        object_id=target.pk if target is not None else None)


def may_receive(person: Person | None) -> bool:
    """The rule the mail applies besides having an address: an active person who has not left."""
    return person is not None and person.is_active and not person.is_departed


def _row(draft: NotificationDraft) -> Notification:
    return Notification(
        recipient_id=draft.recipient_id, kind=draft.kind, subject=clean_text(draft.subject, SUBJECT_LIMIT),
        body=clean_text(draft.body, BODY_LIMIT), link=portal_path(draft.link), object_type=draft.object_type,
        object_id=draft.object_id if draft.object_type else None, dedupe_key=draft.dedupe_key[:200])


def notification_send(*, recipient: Person | None, kind: str, subject: str, dedupe_key: str, body: str = "",
                      link: str = "", target: Model | None = None) -> bool:
    """Tell one person of one event, in the caller's transaction. False when they may not receive it."""
    if not may_receive(recipient):
        return False
    draft = draft_for(recipient, kind=kind, subject=subject, dedupe_key=dedupe_key, body=body, link=link,
                      target=target)
    Notification.objects.bulk_create([_row(draft)], ignore_conflicts=True)
    return True


def notifications_send_many(drafts: Iterable[NotificationDraft]) -> int:
    """Tell many people of many events with one query for the recipients and one insert per 1,000 rows.

    Drafts for people who are inactive or have left are dropped; an event a person was already told of
    is skipped by the database (ON CONFLICT DO NOTHING). Returns the number of drafts offered for insert.
    """
    drafts = list(drafts)
    if not drafts:
        return 0
    ids = {d.recipient_id for d in drafts if d.recipient_id is not None}
    allowed = {person.pk for person in Person.objects.filter(pk__in=ids).only("pk", "is_active", "status")
               if may_receive(person)}
    rows = [_row(d) for d in drafts if d.recipient_id in allowed]
    Notification.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)
    return len(rows)


def findings_opened_notify(*, check: Check, findings: Iterable[Finding]) -> int:
    """The sweep opened (or reopened) these findings of one check: tell each object's owner, in bulk.

    One query for the recipients and one insert per 1,000 rows, whatever the number of findings; a
    finding without an owner (its object belongs to a team only) tells nobody. The event is the opening:
    a reopened finding is told again (its reopened_count is in the key), a sweep run twice is not.
    """
    return notifications_send_many(
        NotificationDraft(
            recipient_id=f.owner_id, kind=NotificationKind.FINDING_OPENED,
            subject=f"{check.name}: {f.object_repr}", body=f"{check.get_severity_display()} finding opened by "
            f"the check {check.code}." + (" It had been resolved before." if f.reopened_count else ""),
            link=f.get_absolute_url(), object_type=FINDING_TYPE, object_id=f.pk,
            dedupe_key=f"finding:{f.pk}:opened:{f.reopened_count}")
        for f in findings if f.owner_id is not None)


def _person_of(actor: Actor | Person) -> Person | None:
    return actor.person if isinstance(actor, Actor) else actor


def notification_mark_read(*, actor: Actor | Person, notification: Notification) -> bool:
    """Mark one of the actor's own notifications read (not audited: it changes nothing governed).

    Another person's notification is refused; one already read stays as it was. True when it changed.
    """
    person = _person_of(actor)
    if person is None or notification.recipient_id != person.pk:
        raise PermissionDenied("Only its recipient marks a notification read.")
    now = timezone.now()
    changed = Notification.objects.filter(pk=notification.pk, recipient=person, read_at__isnull=True).update(
        read_at=now)
    if changed:
        notification.read_at = now
    return bool(changed)


def notifications_mark_all_read(*, actor: Actor | Person) -> int:
    """Mark every unread notification of the actor read, in one statement. Returns how many changed."""
    person = _person_of(actor)
    if person is None:
        raise PermissionDenied("Only a person has an inbox.")
    return Notification.objects.filter(recipient=person, read_at__isnull=True).update(read_at=timezone.now())


def notifications_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the notifications older than STEWARD_NOTIFICATION_RETENTION_DAYS, read or not. Safe twice.

    Ids grow with created_at, so the first id still kept bounds what goes (no index on created_at is
    needed), deleted in batches of PURGE_BATCH so that no statement holds many rows' locks for long.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.STEWARD_NOTIFICATION_RETENTION_DAYS)
    kept = Notification.objects.filter(created_at__gte=cutoff).order_by("id").values_list("id", flat=True).first()
    old = Notification.objects.filter(id__lt=kept) if kept is not None else Notification.objects.all()
    deleted = 0
    while True:
        batch = list(old.order_by("id").values_list("id", flat=True)[:PURGE_BATCH])
        if not batch:
            return deleted
        deleted += Notification.objects.filter(id__in=batch).delete()[0]
