"""Leases on running work, and the recovery of work whose worker was lost.

A worker that takes a unit of background work (a rotation or renewal job, a revocation, a kill-switch
activation, a sweep run, a report job) holds a lease on its row: a random token, who holds it, and
until when. It renews the lease while it works (a heartbeat between steps and items), and every write
that finishes the work is a compare-and-set guarded by the token, so a worker whose lease lapsed and
was taken over cannot finish the work as well. A killed worker renews nothing: its lease lapses after
STEWARD_LEASE_SECONDS, and the recovery task (beat, every minute) hands the row to the capability that
owns it, which resumes it without doing a step twice, or fails it with the reason.

Capabilities register what they lease (register_recovery) in their AppConfig.ready(); this module is
core infrastructure and imports none of them. Celery's broker visibility timeout is set just above the
lease (portal/settings.py), so the message of a killed worker is redelivered about when its lease
lapses; either the redelivery or the recovery task may come first, and the claim decides.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone
from fast_update.fast import fast_update

from governance.transitions import compare_and_set

logger = logging.getLogger(__name__)

RECOVERY_BATCH = 100


def lease_seconds() -> int:
    return int(settings.STEWARD_LEASE_SECONDS)


def lease_duration() -> dt.timedelta:
    return dt.timedelta(seconds=lease_seconds())


def max_takeovers() -> int:
    """After this many takeovers the work is failed, not resumed: something in it kills its worker."""
    return int(settings.STEWARD_LEASE_MAX_TAKEOVERS)


def lease_owner(task_id: str = "") -> str:
    """Who holds a lease, for the operator reading the row: host, process id and task id."""
    owner = f"{socket.gethostname()} pid {os.getpid()}"
    return (f"{owner} task {task_id}" if task_id else owner)[:200]


def lapsed(now: dt.datetime) -> Q:
    """A lease that ran out, or a running row that never had one (written before leases existed)."""
    return Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)


class LeaseLost(Exception):
    """The lease lapsed and another worker took the work over: stop, and write nothing more."""


@dataclass
class Lease:
    """A held lease on one row, or on several rows claimed together with one token (a batch)."""

    model: type[models.Model]
    pks: tuple
    token: str
    running: str
    claimed_at: dt.datetime
    field: str = "status"
    took_over: frozenset = frozenset()  # the pks whose previous holder was lost
    takeovers: dict = dc_field(default_factory=dict)  # pk -> how often it was taken over
    renewed_at: dt.datetime | None = None

    def __post_init__(self):
        self.renewed_at = self.renewed_at or self.claimed_at

    @property
    def pk(self):
        if len(self.pks) != 1:
            raise ValueError("this lease holds several rows: name the one meant")
        return self.pks[0]

    def exhausted(self, pk=None) -> bool:
        """Taken over too often: fail the work instead of resuming it once more."""
        return self.takeovers.get(self.pk if pk is None else pk, 0) > max_takeovers()

    def renew(self, *, now: dt.datetime | None = None) -> int:
        """Push the expiry of every row still held forward; returns how many rows are still held."""
        now = now or timezone.now()
        values = {"lease_expires_at": now + lease_duration()}
        if any(f.name == "updated_at" for f in self.model._meta.concrete_fields):
            values["updated_at"] = now
        held = self.model.objects.filter(pk__in=self.pks, lease_token=self.token, **{self.field: self.running})
        count = held.update(**values)
        self.renewed_at = now
        return count

    def heartbeat(self) -> None:
        """Between steps: renew once a third of the lease has passed; LeaseLost when nothing is held any more."""
        now = timezone.now()
        if now - self.renewed_at < lease_duration() / 3:
            return
        if not self.renew(now=now):
            raise LeaseLost(f"{self.model.__name__} {', '.join(map(str, self.pks))}: the lease was taken over")

    def holds(self, pk=None) -> bool:
        return self.model.objects.filter(pk=self.pk if pk is None else pk, lease_token=self.token,
                                         **{self.field: self.running}).exists()

    def release_many(self, values_by_pk: dict, *, target: str) -> set:
        """Finish several rows at once, each with its own fields (the same names for all), only those this
        lease still holds; returns their pks. Two statements: the held rows locked, then one bulk update."""
        if not values_by_pk:
            return set()
        now = timezone.now()
        stamp = any(f.name == "updated_at" for f in self.model._meta.concrete_fields)
        names = sorted({name for values in values_by_pk.values() for name in values})
        with transaction.atomic(savepoint=False):
            held = set(self.model.objects.select_for_update().filter(
                pk__in=list(values_by_pk), lease_token=self.token, **{self.field: self.running},
            ).values_list("pk", flat=True))
            rows = []
            for pk in sorted(held):
                row = self.model(pk=pk, **values_by_pk[pk])
                setattr(row, self.field, target)
                row.lease_token, row.lease_expires_at = "", None
                if stamp:
                    row.updated_at = now
                rows.append(row)
            if rows:
                fast_update(self.model.objects.all(), rows,
                            [self.field, "lease_token", "lease_expires_at", *(["updated_at"] if stamp else []),
                             *names], batch_size=500)
        return held

    def release(self, pk=None, *, target: str, where: dict | None = None, **fields) -> bool:
        """Finish the work on a row (running -> target), only while this lease still holds it."""
        return compare_and_set(self.model, self.pk if pk is None else pk, field=self.field,
                               sources=[self.running], target=target,
                               where={"lease_token": self.token, **(where or {})},
                               lease_token="", lease_expires_at=None, **fields)


def _claim_one(model, pk, *, sources, running, field_name, token, owner, now, where, fields) -> tuple[bool, bool]:
    """(claimed, took_over): a free row first (not running, or running but never claimed), else a lapsed lease."""
    common = {"field": field_name, "target": running, "lease_token": token, "lease_owner": owner,
              "lease_expires_at": now + lease_duration(), **fields}
    extra = where if where is not None else Q()
    free = ~Q(**{field_name: running}) | Q(lease_token="")
    if compare_and_set(model, pk, sources=sources, where=free & extra, **common):
        return True, False
    if running not in sources:
        return False, False
    taken = Q(**{field_name: running}) & ~Q(lease_token="") & lapsed(now)
    if compare_and_set(model, pk, sources=[running], where=taken & extra,
                       lease_takeovers=F("lease_takeovers") + 1, **common):
        return True, True
    return False, False


def lease_claim_many(model: type[models.Model], pks: Iterable, *, sources: Iterable[str], running: str,
                     field: str = "status", owner: str = "", **fields) -> Lease | None:
    """Claim a batch of rows under one token, in a few statements whatever its size; None when none was free.

    The same compare-and-set as lease_claim, over a set: the rows that meet the guard are selected and
    locked (rows another worker is claiming are skipped, never waited for), then updated by pk while the
    lock holds, so the guard still holds when they are written. A row is free when its state is one of
    sources other than running, or running without a holder; a running row whose lease lapsed is taken
    over (took_over says which). fields are written with the claim.
    """
    sources = [sources] if isinstance(sources, str) else list(sources)
    token, now = uuid.uuid4().hex, timezone.now()
    free = ~Q(**{field: running}) | Q(lease_token="")
    guard = free | (Q(**{field: running}) & ~Q(lease_token="") & lapsed(now)) if running in sources else free
    values = {field: running, "lease_token": token, "lease_owner": owner or lease_owner(),
              "lease_expires_at": now + lease_duration(), **fields}
    if "updated_at" not in values and any(f.name == "updated_at" for f in model._meta.concrete_fields):
        values["updated_at"] = now
    with transaction.atomic(savepoint=False):
        rows = list(model.objects.filter(guard, pk__in=list(pks), **{f"{field}__in": sources})
                    .select_for_update(skip_locked=True).values_list("pk", field, "lease_token"))
        taken = [pk for pk, state, holder in rows if state == running and holder]
        unheld = [pk for pk, state, holder in rows if not (state == running and holder)]
        if unheld:
            model.objects.filter(pk__in=unheld).update(**values)
        takeovers = {}
        if taken:
            model.objects.filter(pk__in=taken).update(**values, lease_takeovers=F("lease_takeovers") + 1)
            takeovers = dict(model.objects.filter(pk__in=taken).values_list("pk", "lease_takeovers"))
    if not rows:
        return None
    return Lease(model=model, pks=tuple(sorted(pk for pk, *_ in rows)), token=token, running=running,
                 claimed_at=now, field=field, took_over=frozenset(taken), takeovers=takeovers)


def lease_claim(model: type[models.Model], pk, *, sources: Iterable[str], running: str, field: str = "status",
                owner: str = "", where: Q | None = None, **fields) -> Lease | None:
    """Claim one row (compare-and-set): free (waiting, or running without a holder), or its lease lapsed.

    where adds a guard of the caller's. None when the row is held, finished, or not there.
    """
    sources = [sources] if isinstance(sources, str) else list(sources)
    token, now = uuid.uuid4().hex, timezone.now()
    claimed, taken = _claim_one(model, pk, sources=sources, running=running, field_name=field, token=token,
                                owner=owner or lease_owner(), now=now, where=where, fields=fields)
    if not claimed:
        return None
    takeovers = dict(model.objects.filter(pk=pk).values_list("pk", "lease_takeovers")) if taken else {}
    return Lease(model=model, pks=(pk,), token=token, running=running, claimed_at=now, field=field,
                 took_over=frozenset({pk} if taken else ()), takeovers=takeovers)


def lease_new(*, owner: str = "") -> dict:
    """The lease fields of a row created already running by the worker that will do its work (a sweep run)."""
    return {"lease_token": uuid.uuid4().hex, "lease_owner": owner or lease_owner(),
            "lease_expires_at": timezone.now() + lease_duration()}


def lease_of(instance: models.Model, *, running: str, field: str = "status") -> Lease:
    """The Lease object for a row created with lease_new()."""
    return Lease(model=type(instance), pks=(instance.pk,), token=instance.lease_token, running=running,
                 claimed_at=timezone.now(), field=field)


# Recovery ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recovery:
    """What one capability leases, and the service that resumes (or fails) the rows whose lease lapsed."""

    name: str
    model: type[models.Model]
    running: str
    recover: Callable[[list], dict]
    field: str = "status"
    extra: Q = dc_field(default_factory=Q)


_RECOVERIES: dict[str, Recovery] = {}


def register_recovery(recovery: Recovery) -> None:
    """Called from AppConfig.ready(): the recovery task will look after this kind of work."""
    _RECOVERIES[recovery.name] = recovery


def recoveries() -> dict[str, Recovery]:
    return dict(_RECOVERIES)


def lapsed_ids(recovery: Recovery, *, now: dt.datetime | None = None, limit: int = RECOVERY_BATCH) -> list:
    """Running rows of this kind whose lease lapsed, oldest first."""
    now = now or timezone.now()
    queryset = recovery.model.objects.filter(lapsed(now), recovery.extra, **{recovery.field: recovery.running})
    return list(queryset.order_by("lease_expires_at", "pk").values_list("pk", flat=True)[:limit])


def leases_recover(*, now: dt.datetime | None = None) -> dict[str, dict]:
    """The periodic recovery: every registered kind's lapsed rows go to its recover service.

    A failure in one kind is logged and reported, and does not stop the others; the rows it left
    stay lapsed and are tried again at the next run.
    """
    results: dict[str, dict] = {}
    for name, recovery in sorted(_RECOVERIES.items()):
        ids = lapsed_ids(recovery, now=now)
        if not ids:
            continue
        try:
            results[name] = recovery.recover(ids)
        except Exception as exc:  # one kind's bug must not stop the recovery of the others
            logger.exception("lease recovery of %s failed", name)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return results
