"""Sweep now: a security admin starts a sweep of every check (or some) from the portal or the API.

The run is written in the request's transaction, running but held by nobody, with its message in the
outbox; a worker claims it under its lease (services.sweep.sweep_run_resume) and records each check's
counts as it goes, which is the progress the caller polls. A run whose message never reached a worker
is taken over by the lease recovery once its lease lapses. While any sweep is running (queued, started
by beat or by a person) a second one is refused with the running one named: a transaction-level
advisory lock makes two requests at the same moment queue, so only one of them is accepted.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from governance import leases, task_names
from governance.audit import Actor, audit_append
from governance.checks import all_checks
from governance.models.checks import SweepRun, SweepStatus
from governance.outbox import enqueue
from governance.services.common import ensure_security_admin
from governance.services.operations import ensure_acts_for

SWEEP_NOW_LOCK = (0x57E3C5, 0)  # a two-key advisory lock of its own (services.sweep uses 0x57E3C4)
TRIGGER = "manual"


class SweepAlreadyRunning(ValidationError):
    """A sweep is running: the new one is refused, naming the one to follow instead."""

    def __init__(self, run: SweepRun):
        self.run = run
        done = len(run.counts) + len(run.errors)
        super().__init__({"sweep": f"Sweep #{run.pk} ({run.trigger}) is still running, started "
                                   f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC, {done} of {len(run.checks)} checks "
                                   "done: follow it instead of starting another."})


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(SWEEP_NOW_LOCK))


def sweep_now_request(*, actor: Actor, checks: list[str] | None = None) -> SweepRun:
    """Queue a sweep of the given check codes (all by default); refused while another sweep runs."""
    ensure_security_admin(actor)
    ensure_acts_for(actor)
    registry = all_checks()
    codes = list(dict.fromkeys(checks or []))
    unknown = sorted(set(codes) - set(registry))
    if unknown:
        raise ValidationError({"checks": f"Unknown check code(s): {', '.join(unknown)}. "
                                         f"The codes are: {', '.join(sorted(registry))}."})
    codes = codes or sorted(registry)
    with transaction.atomic():
        _lock()
        running = SweepRun.objects.filter(status=SweepStatus.RUNNING).order_by("started_at", "pk").first()
        if running is not None:
            raise SweepAlreadyRunning(running)
        now = timezone.now()
        # Held by nobody: the worker that receives the message claims it; the lease's expiry gives the
        # message time to arrive, after which the lease recovery runs it.
        run = SweepRun.objects.create(started_at=now, trigger=TRIGGER, checks=codes,
                                      lease_expires_at=now + leases.lease_duration())
        audit_append(actor=actor, action="sweep.request", target=run,
                     summary=f"Sweep #{run.pk} requested ({len(codes)} check(s))",
                     changes={"sweep_run": {"before": None, "after": run.pk}})
        enqueue(task_names.SWEEP_NOW_RUN, run.pk)
    return run


def sweep_progress(run: SweepRun) -> dict:
    """What a poller needs: the run's state and how many of its checks are done."""
    done = len(run.counts) + len(run.errors)
    return {"id": run.pk, "status": run.status, "trigger": run.trigger, "finished": run.status != SweepStatus.RUNNING,
            "started": bool(run.lease_token) or done > 0 or run.status != SweepStatus.RUNNING,
            "done": done, "total": len(run.checks), "errors": dict(run.errors)}
