"""Email as outbox work: a MailDelivery row written with the change, sent and retried by a worker.

Why: mail used to be sent in the request after commit, and a mail server that was down lost the
notice (logged, then forgotten). Now mail_queue() writes the delivery and its outbox message in the
caller's transaction; the task governance.mail.deliver claims the row (compare-and-set, so a second
delivery of the message sends nothing twice), sends it, and records the outcome; a failed send is
retried with backoff up to MAX_ATTEMPTS and then recorded as failed, with the error, for an operator.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.mail import EmailMessage
from django.db.models import F, Q
from django.utils import timezone

from governance import task_names
from governance.models.outbox import MailDelivery, MailStatus
from governance.outbox import enqueue

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 300  # a send that takes longer than this is presumed dead and may be tried again
ERROR_LIMIT = 2000


@dataclass(frozen=True)
class MailAttempt:
    outcome: str  # sent, retry, failed
    retry_in: float | None = None


def mail_queue(*, subject: str, body: str, recipients: Iterable[str], from_email: str = "") -> MailDelivery | None:
    """Queue one email for sending after the caller's transaction commits; None when nobody is to receive it."""
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return None
    delivery = MailDelivery.objects.create(subject=subject, body=body, recipients=recipients,
                                           from_email=from_email or "")
    enqueue(task_names.MAIL_DELIVER, delivery.pk)
    return delivery


def mail_retry_delay(attempts: int) -> float:
    """1 min, 2 min, 4 min ... with jitter, at most an hour."""
    return min(3600.0, 60.0 * 2 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter


def _claim(delivery_id: int, now: dt.datetime) -> bool:
    return MailDelivery.objects.filter(pk=delivery_id, status=MailStatus.PENDING, next_attempt_at__lte=now).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    ).update(claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1) == 1


def mail_delivery_attempt(*, delivery_id: int) -> MailAttempt | None:
    """Claim a due delivery, send it once, record the outcome. None if it is not due or not ours to send."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        return None
    delivery = MailDelivery.objects.get(pk=delivery_id)
    try:
        EmailMessage(subject=delivery.subject, body=delivery.body, from_email=delivery.from_email or None,
                     to=list(delivery.recipients)).send()
    except Exception as exc:  # noqa: BLE001 - any failure of the mail server is recorded and retried
        error = f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]
        logger.warning("mail %s (%r) not sent, attempt %s: %s", delivery.pk, delivery.subject, delivery.attempts,
                       error)
        if delivery.attempts >= MAX_ATTEMPTS:
            MailDelivery.objects.filter(pk=delivery.pk).update(status=MailStatus.FAILED, last_error=error,
                                                               claimed_until=None)
            return MailAttempt("failed")
        retry_in = mail_retry_delay(delivery.attempts)
        MailDelivery.objects.filter(pk=delivery.pk).update(
            last_error=error, claimed_until=None, next_attempt_at=timezone.now() + dt.timedelta(seconds=retry_in))
        return MailAttempt("retry", retry_in)
    MailDelivery.objects.filter(pk=delivery.pk).update(status=MailStatus.SENT, sent_at=timezone.now(),
                                                       claimed_until=None, last_error="")
    return MailAttempt("sent")


def mail_deliveries_due(*, now: dt.datetime | None = None, grace_seconds: int = 300) -> list[int]:
    """Pending deliveries past their attempt time whose message was lost (a worker died): sent again by the sweep."""
    now = now or timezone.now()
    return list(MailDelivery.objects.filter(status=MailStatus.PENDING,
                                            next_attempt_at__lte=now - dt.timedelta(seconds=grace_seconds))
                .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
                .order_by("next_attempt_at").values_list("pk", flat=True)[:1000])


def mail_deliveries_requeue(*, now: dt.datetime | None = None) -> int:
    """Enqueue the deliveries whose message was lost (the periodic mail sweep)."""
    due = mail_deliveries_due(now=now)
    for delivery_id in due:
        enqueue(task_names.MAIL_DELIVER, delivery_id, dedupe_key=f"mail:{delivery_id}")
    return len(due)
