"""The transactional outbox: every piece of background work is a row written in the caller's transaction.

Why: a task published straight to the broker is lost when the broker is away, and the request that
published it answered 500 after its change had committed (a suspended workflow whose kill switch
never ran, report jobs queued for ever). Here enqueue() writes an OutboxMessage in the caller's
transaction, so the intent commits exactly when the change does. Right after the commit one publish
attempt is made (low latency; a failure is recorded on the row, never raised into the request), and
the relay (`manage.py outbox_relay`) publishes whatever is still unpublished, with backoff, until the
broker takes it.

Publishing is at least once: a publisher that dies between handing the message to the broker and
marking the row published leaves the row to be published again once its claim lapses. So every
publish of a row carries the row's message_id as the Celery task id, and the tasks claim their unit
of work with compare-and-set, so that a second delivery changes nothing twice.

Core infrastructure: this module imports no capability. A task is given by its registered name
(governance.task_names, so services need not import the tasks) or as the Celery task object.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from governance.models.outbox import OutboxMessage

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 60  # a claimed row is its publisher's for this long; then another publisher may take it
BATCH_SIZE = 100
CONNECT_TIMEOUT = 2.0  # seconds; a broker that does not answer costs the request at most this, once
ERROR_LIMIT = 2000
BROKER_ERRORS = (BrokerOperationalError, OSError)  # OSError: refused, reset, timed out



def _eta(countdown: float | None, now: dt.datetime) -> dt.datetime | None:
    return now + dt.timedelta(seconds=float(countdown)) if countdown else None


def _row(task, args: Sequence, kwargs: dict, *, dedupe_key: str | None, eta: dt.datetime | None,
         now: dt.datetime) -> OutboxMessage:
    task_name = task if isinstance(task, str) else task.name
    return OutboxMessage(task_name=task_name, args=list(args), kwargs=dict(kwargs), dedupe_key=dedupe_key or None,
                         eta=eta, created_at=now, next_attempt_at=now)


def _publish_after_commit(ids: list[int]) -> None:
    transaction.on_commit(partial(outbox_publish, ids=ids), robust=True)


def enqueue(task, *args, dedupe_key: str | None = None, countdown: float | None = None, **kwargs) -> OutboxMessage:
    """Run task(*args, **kwargs) once the caller's transaction commits, even if the broker is away now.

    task: a name from governance.task_names, or the Celery task object.

    dedupe_key: while a message with this key is still unpublished, enqueueing another with the same
    key returns that one instead (for work that reads the current state when it runs: recoveries).
    countdown: the task runs no earlier than this many seconds from now.
    """
    now = timezone.now()
    row = _row(task, args, kwargs, dedupe_key=dedupe_key, eta=_eta(countdown, now), now=now)
    if dedupe_key:
        existing = OutboxMessage.objects.filter(dedupe_key=dedupe_key, published_at__isnull=True).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:  # a concurrent transaction wrote the same key first (the partial unique index)
            existing = OutboxMessage.objects.filter(dedupe_key=dedupe_key, published_at__isnull=True).first()
            if existing is not None:
                return existing
            row.save()
    else:
        row.save()
    _publish_after_commit([row.pk])
    return row


def enqueue_many(task, calls: Iterable[Sequence]) -> list[OutboxMessage]:
    """One message per argument list (a sweep's deliveries), written in one insert and published together."""
    now = timezone.now()
    rows = OutboxMessage.objects.bulk_create(
        [_row(task, args, {}, dedupe_key=None, eta=None, now=now) for args in calls], batch_size=1000)
    if rows:
        _publish_after_commit([r.pk for r in rows])
    return rows


def retry_delay(attempts: int) -> float:
    """1 s, 2 s, 4 s ... with jitter, at most STEWARD_OUTBOX_RETRY_MAX_SECONDS (60 s)."""
    cap = float(settings.STEWARD_OUTBOX_RETRY_MAX_SECONDS)
    return min(cap, 2.0 ** max(0, attempts - 1)) * (0.5 + random.random() / 2)  # noqa: S311 - jitter


def _claim(queryset, *, limit: int) -> list[OutboxMessage]:
    """Take due, unpublished rows for this publisher: their next attempt moves past the claim's end.

    On PostgreSQL the rows are locked with SKIP LOCKED, so concurrent relays take disjoint rows; SQLite
    serialises writing transactions (BEGIN IMMEDIATE), which gives the same result.
    """
    now = timezone.now()
    due = queryset.filter(published_at__isnull=True, next_attempt_at__lte=now).order_by("id")
    if not due.exists():  # a read: an idle relay takes no write lock (SQLite) on each poll
        return []
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due[:limit])
        if rows:
            OutboxMessage.objects.filter(pk__in=[r.pk for r in rows]).update(
                next_attempt_at=now + dt.timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1)
    for row in rows:
        row.attempts += 1
    return rows


def _send(row: OutboxMessage, connection) -> None:
    """Hand one message to the broker (or, with task_always_eager, run it here), with the row's id as task id."""
    app = current_app
    options = {"task_id": str(row.message_id), "retry": False, "connection": connection}
    if row.eta is not None and row.eta > timezone.now():
        options["eta"] = row.eta
    task = app.tasks.get(row.task_name)
    if task is None:  # not imported in this process: publish by name
        app.send_task(row.task_name, args=row.args, kwargs=row.kwargs, **options)
    else:
        task.apply_async(args=row.args, kwargs=row.kwargs, **options)


def _mark_published(row: OutboxMessage) -> None:
    OutboxMessage.objects.filter(pk=row.pk, published_at__isnull=True).update(published_at=timezone.now(),
                                                                              last_error="")


def _record_failure(rows: list[OutboxMessage], error: str) -> None:
    now = timezone.now()
    for row in rows:
        OutboxMessage.objects.filter(pk=row.pk, published_at__isnull=True).update(
            last_error=error[:ERROR_LIMIT], next_attempt_at=now + dt.timedelta(seconds=retry_delay(row.attempts)))


def _publish(rows: list[OutboxMessage]) -> dict[str, int]:
    """Publish claimed rows over one broker connection that fails at once (the relay does the retrying)."""
    counts = {"published": 0, "failed": 0}
    if not rows:
        return counts
    with current_app.connection_for_write(connect_timeout=CONNECT_TIMEOUT,
                                          transport_options={"max_retries": 0}) as broker:
        for index, row in enumerate(rows):
            try:
                _send(row, broker)
            except Exception as exc:  # noqa: BLE001 - whatever the broker said goes into the row, for the next try
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("outbox message %s (%s) not published: %s", row.message_id, row.task_name, error)
                if isinstance(exc, BROKER_ERRORS):  # the broker is away: the rest of the batch waits too
                    _record_failure(rows[index:], error)
                    counts["failed"] += len(rows) - index
                    return counts
                _record_failure([row], error)
                counts["failed"] += 1
                continue
            _mark_published(row)
            counts["published"] += 1
    return counts


def outbox_publish(*, ids: list[int]) -> dict[str, int]:
    """The attempt right after commit: publish these rows unless another publisher holds them."""
    try:
        return _publish(_claim(OutboxMessage.objects.filter(pk__in=ids), limit=len(ids)))
    except Exception:  # the change has committed; the relay publishes what this attempt could not
        logger.exception("outbox: publishing after commit failed; the relay will publish")
        return {"published": 0, "failed": len(ids)}


def outbox_relay_once(*, limit: int = BATCH_SIZE) -> dict[str, int]:
    """Publish one batch of due, unpublished rows (oldest first); the counts say what happened."""
    rows = _claim(OutboxMessage.objects.all(), limit=limit)
    return {"claimed": len(rows), **_publish(rows)}


def outbox_purge(*, now: dt.datetime | None = None) -> int:
    """Forget published rows after STEWARD_OUTBOX_RETAIN_DAYS (7); unpublished rows are never purged."""
    now = now or timezone.now()
    before = now - dt.timedelta(days=float(settings.STEWARD_OUTBOX_RETAIN_DAYS))
    deleted, _ = OutboxMessage.objects.filter(published_at__lt=before).delete()
    return deleted


def outbox_backlog() -> dict:
    """What an operator looks at: how many rows wait, the oldest one's age, and the last error."""
    waiting = OutboxMessage.objects.filter(published_at__isnull=True)
    oldest = waiting.order_by("created_at").first()
    return {
        "unpublished": waiting.count(),
        "oldest_seconds": int((timezone.now() - oldest.created_at).total_seconds()) if oldest else 0,
        "last_error": oldest.last_error if oldest else "",
    }


def outbox_relay(*, poll_seconds: float, should_stop: Callable[[], bool], sleep: Callable[[float], None] = time.sleep,
                 purge_every: float = 3600.0) -> None:
    """The relay's loop: publish due rows, purge old published ones hourly, sleep when nothing is due.

    The loop outlives a database restart (it logs, reconnects and goes on) as well as a broker outage.
    """
    next_purge = time.monotonic()
    while not should_stop():
        claimed = 0
        try:
            claimed = outbox_relay_once()["claimed"]
            if time.monotonic() >= next_purge:
                outbox_purge()
                next_purge = time.monotonic() + purge_every
        except DatabaseError:
            logger.exception("outbox relay: the database did not answer; trying again")
            close_old_connections()
        if claimed < BATCH_SIZE:
            sleep(poll_seconds)
