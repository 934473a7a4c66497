"""The sweep: evaluate every check over the whole estate and open, refresh and resolve findings in bulk.

Each check is evaluated and synchronised in its own transaction, under a per-check lock (a
PostgreSQL advisory lock; SQLite serialises writers anyway), so two sweeps running at once
queue per check: the second one sees the first one's findings and changes nothing. The failing
set comes from one set-based query per subject type, with each row's evidence built in SQL as
canonical JSON text; the check's unresolved findings are read once and compared with it as
strings, and only the differences are written, with a handful of bulk statements. Every finding
state change (opened, resolved, reopened, risk acceptance expired) appends one audit event,
after the row writes. An unresolved finding is confirmed by every sweep of its check
(Check.last_evaluated_at), so the sweep does not rewrite each finding's row to say so:
last_seen_at moves when the sweep opens, reopens or refreshes the finding. A run holds a lease
(governance.leases), renewed with the counts written after each check; the lease recovery takes
over a run whose worker was lost and goes on from the check it was in. With its findings, each check
writes its per-team and per-owner counts (CheckSummary); the run's last transaction, which finishes it,
publishes them for the team and owner posture pages. Each finding carries its risk rank (checks/ranking.py),
from the failing-set query, written with the finding or alone when only it changed; after the checks, one
set-based pass scores every credential's risk and stores its rotation due date and expiry (services/risk.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from governance import leases
from governance.audit import Actor, PendingEvent, audit_append_many
from governance.checks import Context, NotEvaluated, QueryCheck, all_checks
from governance.checks.base import Check as CheckDefinition
from governance.checks.base import Failure, JSONText, Outcome
from governance.checks.ranking import finding_risk_rank
from governance.models.checks import (
    FINDING_TYPE,
    UNRESOLVED_STATES,
    Check,
    CheckStatus,
    CheckSummary,
    Finding,
    FindingState,
    SweepRun,
    SweepStatus,
)
from governance.services.catalogue import catalogue_load, check_texts_sync
from governance.services.notifications import findings_opened_notify
from governance.services.risk import credential_risk_refresh
from governance.services.webhooks import webhook_events_emit, webhook_subscribers
from governance.transitions import compare_and_set

logger = logging.getLogger(__name__)

RISK_PASS = "credential-risk"  # the key of the risk pass's error in SweepRun.errors (it is not a check)
SWEEP_LOCK_CLASS = 0x57E3C4  # first key of the two-key advisory lock; the second is the check's pk
CHUNK = 5000
UPDATE_BATCH = 500
REOPEN_FIELDS = ["state", "resolved_at", "reopened_count", "last_seen_at", "evidence", "owner", "team",
                 "object_repr", "acknowledged_by", "acknowledged_at", "acknowledged_comment",
                 "risk_accepted_until", "risk_acceptance_request_id", "risk_rank"]


def lock_checks(check_ids: Iterable[int]) -> None:
    """Serialise everything that changes one check's findings (sweeps and finding services).

    Locks are taken in pk order, so two callers holding several never wait on each other in a cycle.
    """
    if connection.vendor != "postgresql":
        return  # SQLite: the IMMEDIATE transaction already holds the database's write lock.
    with connection.cursor() as cursor:
        for pk in sorted(set(check_ids)):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [SWEEP_LOCK_CLASS, pk])


def ensure_catalogue() -> None:
    """The sweep needs a Check row per implemented check: load the catalogue if any is missing."""

    codes = set(all_checks())
    if Check.objects.filter(code__in=codes).count() < len(codes):
        catalogue_load(actor=Actor.system(task_id="sweep", label="sweep"))
    else:
        check_texts_sync()


@dataclass
class _Existing:
    pk: int
    state: str
    evidence_text: str
    owner_id: int | None
    team_id: int | None
    object_repr: str
    risk_accepted_until: object
    risk_rank: int

    def differs(self, failure: Failure) -> bool:
        if failure.evidence_text is not None:
            same_evidence = self.evidence_text == failure.evidence_text
        else:
            same_evidence = json.loads(self.evidence_text) == failure.evidence_dict
        return not same_evidence or (self.owner_id, self.team_id, self.object_repr) != (
            failure.owner_id, failure.team_id, failure.object_repr)


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _existing(check: Check) -> dict[tuple[str, int], _Existing]:
    rows = Finding.objects.filter(failed_check=check, state__in=UNRESOLVED_STATES).annotate(
        evidence_text=JSONText("evidence")).values_list(
        "object_type", "object_id", "pk", "state", "evidence_text", "owner_id", "team_id", "object_repr",
        "risk_accepted_until", "risk_rank")
    return {(ot, oid): _Existing(*rest) for ot, oid, *rest in rows.iterator(chunk_size=CHUNK)}


def _latest_resolved(check: Check) -> dict[tuple[str, int], tuple[int, int]]:
    rows = Finding.objects.filter(failed_check=check, state=FindingState.RESOLVED).order_by("pk").values_list(
        "object_type", "object_id", "pk", "reopened_count")
    return {(ot, oid): (pk, count) for ot, oid, pk, count in rows.iterator(chunk_size=CHUNK)}


def _sync(check: Check, definition: CheckDefinition, outcome: Outcome, ctx: Context, actor: Actor) -> dict:
    """Make the findings of one check match its failing set. Runs inside the check's transaction."""
    now, failures = ctx.now, outcome.failures
    existing = _existing(check)

    def rank(failure: Failure) -> int:
        return finding_risk_rank(severity=check.severity, subject=failure.subject_rank)

    resolve = [(rec.pk, rec.state, key) for key, rec in existing.items() if key not in failures]
    expire = [rec.pk for key, rec in existing.items() if key in failures
              and rec.state == FindingState.RISK_ACCEPTED and rec.risk_accepted_until <= now]
    refresh = [(rec.pk, failures[key]) for key, rec in existing.items()
               if key in failures and rec.differs(failures[key])]
    refreshed = {pk for pk, _ in refresh}
    # The object's criticality or privilege (or the check's severity) changed, nothing else: the rank alone.
    rerank = [(rec.pk, rank(failures[key])) for key, rec in existing.items()
              if key in failures and rec.pk not in refreshed and rec.risk_rank != rank(failures[key])]
    new_keys = [key for key in failures if key not in existing]
    resolved = _latest_resolved(check) if new_keys else {}
    reopen = [(resolved[key], failures[key]) for key in new_keys if key in resolved]
    opening = [failures[key] for key in new_keys if key not in resolved]

    for chunk in _chunks([pk for pk, _, _ in resolve]):
        Finding.objects.filter(pk__in=chunk, state__in=UNRESOLVED_STATES).update(
            state=FindingState.RESOLVED, resolved_at=now)
    for chunk in _chunks(expire):
        Finding.objects.filter(pk__in=chunk, state=FindingState.RISK_ACCEPTED).update(state=FindingState.OPEN)
    reopened = [
        Finding(pk=pk, state=FindingState.OPEN, resolved_at=None, reopened_count=count + 1, last_seen_at=now,
                evidence=f.evidence, owner_id=f.owner_id, team_id=f.team_id, object_repr=f.object_repr,
                acknowledged_by=None, acknowledged_at=None, acknowledged_comment="", risk_accepted_until=None,
                risk_acceptance_request_id=None, risk_rank=rank(f))
        for (pk, count), f in reopen]
    Finding.objects.bulk_update(reopened, REOPEN_FIELDS, batch_size=UPDATE_BATCH)
    created = Finding.objects.bulk_create([
        Finding(failed_check=check, object_type=f.object_type, object_id=f.object_id, object_repr=f.object_repr,
                state=FindingState.OPEN, first_seen_at=now, last_seen_at=now, evidence=f.evidence,
                owner_id=f.owner_id, team_id=f.team_id, risk_rank=rank(f))
        for f in opening], batch_size=1000)
    Finding.objects.bulk_update(
        [Finding(pk=pk, evidence=f.evidence, owner_id=f.owner_id, team_id=f.team_id, object_repr=f.object_repr,
                 last_seen_at=now, risk_rank=rank(f)) for pk, f in refresh],
        ["evidence", "owner", "team", "object_repr", "last_seen_at", "risk_rank"], batch_size=UPDATE_BATCH)
    by_rank: dict[int, list[int]] = defaultdict(list)  # a few dozen ranks: one UPDATE each, not a CASE per row
    for pk, value in rerank:
        by_rank[value].append(pk)
    for value, pks in by_rank.items():
        for chunk in _chunks(pks):
            Finding.objects.filter(pk__in=chunk).update(risk_rank=value)

    started, code = time.monotonic(), check.code

    pending: list[PendingEvent] = []

    def event(action: str, pk: int, summary: str, before: str, after: str, **extra) -> None:
        changes = {"state": {"before": before, "after": after}}
        changes.update({k: {"before": None, "after": v} for k, v in extra.items()})
        pending.append(PendingEvent(action=action, object_type=FINDING_TYPE, object_id=pk, summary=summary,
                                    changes=changes))

    for finding in created:
        event("finding.open", finding.pk, f"{code} fails for {finding.object_repr}: finding opened", "", "open",
              object=f"{finding.object_type}:{finding.object_id}")
    for finding in reopened:
        event("finding.reopen", finding.pk, f"{code} fails again for {finding.object_repr}: finding reopened",
              "resolved", "open", reopened_count=finding.reopened_count)
    for pk in expire:
        event("finding.risk_acceptance_expire", pk,
              f"{code}: the accepted risk expired and the finding reopened", "risk_accepted", "open")
    in_scope = definition.still_evaluated([key for _, _, key in resolve], ctx) if resolve else set()
    for pk, state, key in resolve:
        reason = "passes" if key in in_scope else "is no longer subject to the check"
        event("finding.resolve", pk, f"{code}: {key[0]}:{key[1]} {reason}; finding resolved", state,
              "resolved", reason=reason)
    audit_append_many(actor=actor, events=pending)  # one chain lock and one insert for the whole check
    _emit_webhooks(code, opened=[*created, *reopened], resolved=[pk for pk, _, _ in resolve])
    findings_opened_notify(check=check, findings=[*created, *reopened])  # the owners' inboxes, one bulk insert
    return {"evaluated": outcome.evaluated, "failed": outcome.failed, "opened": len(created),
            "reopened": len(reopened), "resolved": len(resolve), "risk_acceptances_expired": len(expire),
            "refreshed": len(refresh), "reranked": len(rerank), "audit_seconds": round(time.monotonic() - started, 3)}


def _emit_webhooks(code: str, *, opened: list[Finding], resolved: list[int]) -> None:
    """finding.opened / finding.resolved for subscribed ticketing systems (nothing built when none is)."""

    subscribers = webhook_subscribers("finding.opened")
    if subscribers and opened:
        webhook_events_emit(event_type="finding.opened", endpoints=subscribers, payloads=(
            {"id": f.pk, "check": code, "object_type": f.object_type, "object_id": f.object_id,
             "object": f.object_repr, "evidence": f.evidence} for f in opened))
    subscribers = webhook_subscribers("finding.resolved")
    if subscribers and resolved:
        webhook_events_emit(event_type="finding.resolved", endpoints=subscribers,
                            payloads=({"id": pk, "check": code} for pk in resolved))


def _summaries_write(run: SweepRun, check: Check, definition: CheckDefinition, outcome: Outcome,
                     ctx: Context) -> int:
    """The check's CheckSummary rows of this run: per team and per owner, how many it evaluated and failed.

    One grouped query per subject model for the evaluated counts; the failed counts come from the failing
    set the sweep already holds. Estate-level checks have no team or owner and write none.
    """
    if not isinstance(definition, QueryCheck):
        return 0
    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for model in definition.subject_models:
        rows = definition.evaluated(model, ctx).order_by().values_list("team_id", "owner_id").annotate(n=Count("pk"))
        for team_id, owner_id, n in rows.iterator(chunk_size=CHUNK):
            if team_id is not None:
                counts[(CheckSummary.TEAM, team_id)][0] += n
            if owner_id is not None:
                counts[(CheckSummary.OWNER, owner_id)][0] += n
    for failure in outcome.failures.values():
        if failure.team_id is not None:
            counts[(CheckSummary.TEAM, failure.team_id)][1] += 1
        if failure.owner_id is not None:
            counts[(CheckSummary.OWNER, failure.owner_id)][1] += 1
    CheckSummary.objects.bulk_create([
        CheckSummary(sweep=run, summarised_check=check, scope_type=scope_type, scope_id=scope_id,
                     evaluated=evaluated, failed=failed)
        for (scope_type, scope_id), (evaluated, failed) in counts.items()], batch_size=1000)
    return len(counts)


def _summaries_publish(run: SweepRun, rows: list[Check]) -> None:
    """Once the run is finished: drop what earlier sweeps summarised for its checks (this run's rows now stand)."""
    CheckSummary.objects.filter(summarised_check__in=[row.pk for row in rows], sweep_id__lt=run.pk).delete()


def _sweep_check(run: SweepRun, check: Check, definition: CheckDefinition, actor: Actor) -> dict:
    started = time.monotonic()
    with transaction.atomic():
        lock_checks([check.pk])
        check.refresh_from_db(fields=["state"])
        ctx = Context.current(state=check.state)
        try:
            outcome = definition.evaluate(ctx)
        except NotEvaluated as exc:
            Check.objects.filter(pk=check.pk).update(
                last_status=CheckStatus.NOT_EVALUATED, last_evaluated_at=ctx.now, last_detail=str(exc)[:500])
            return {"status": CheckStatus.NOT_EVALUATED, "detail": str(exc)}
        evaluated_at = time.monotonic()
        counts = _sync(check, definition, outcome, ctx, actor)
        counts["summaries"] = _summaries_write(run, check, definition, outcome, ctx)
        Check.objects.filter(pk=check.pk).update(
            last_status=CheckStatus.EVALUATED, last_evaluated_at=ctx.now, last_evaluated_count=outcome.evaluated,
            last_failed_count=outcome.failed, last_detail="",
            **({"state": outcome.state} if outcome.state is not None else {}))
    return {"status": CheckStatus.EVALUATED, **counts, "evaluate_seconds": round(evaluated_at - started, 3),
            "seconds": round(time.monotonic() - started, 3)}


def sweep_run(*, checks: list[str] | None = None, trigger: str) -> SweepRun:
    """Evaluate the given checks (all by default) and synchronise their findings; record the run."""
    registry = all_checks()
    unknown = sorted(set(checks or []) - set(registry))
    if unknown:
        raise ValidationError({"checks": f"Unknown check code(s): {', '.join(unknown)}. "
                                         f"The codes are: {', '.join(sorted(registry))}."})
    ensure_catalogue()
    rows = list(Check.objects.filter(code__in=checks or list(registry)).order_by("sort_order", "code"))
    run = SweepRun.objects.create(started_at=timezone.now(), trigger=trigger[:40], checks=[r.code for r in rows],
                                  **leases.lease_new())
    return _sweep_checks(run, leases.lease_of(run, running=SweepStatus.RUNNING), rows)


@contextlib.contextmanager
def _jit_for_the_sweep():
    """The sweep's queries scan the estate, and PostgreSQL's JIT shortens them (at 1M credentials a sweep
    took 75.5 s with it, 79-82 s without): on for the sweep only. portal/settings.py turns it off for the
    sessions' short queries; RESET returns to that."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")
    try:
        yield
    finally:
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:  # a broken session is dropped
            cursor.execute("RESET jit")


def _sweep_checks(run: SweepRun, lease: leases.Lease, rows: list[Check]) -> SweepRun:
    """Evaluate the run's checks not yet done, recording each one's counts as it goes, then close the run.

    The counts written after each check are the heartbeat (the lease is renewed with them), so a run
    taken over from a lost worker goes on from the first check that was not finished.
    """
    with _jit_for_the_sweep():
        return _evaluate_and_close(run, lease, rows)


def _evaluate_and_close(run: SweepRun, lease: leases.Lease, rows: list[Check]) -> SweepRun:
    registry = all_checks()
    actor = Actor.system(task_id=f"sweep-{run.pk}", label="sweep")
    counts, errors = dict(run.counts), dict(run.errors)
    for check in rows:
        if check.code in counts or check.code in errors:
            continue
        try:
            counts[check.code] = _sweep_check(run, check, registry[check.code], actor)
        except Exception as exc:  # one failing check must not stop the others; the run records it
            logger.exception("sweep %s: check %s failed", run.pk, check.code)
            errors[check.code] = f"{type(exc).__name__}: {exc}"[:1000]
            Check.objects.filter(pk=check.pk).update(last_status=CheckStatus.ERROR,
                                                     last_detail=errors[check.code][:500])
        if not compare_and_set(SweepRun, run.pk, field="status", sources=[SweepStatus.RUNNING],
                               target=SweepStatus.RUNNING, where={"lease_token": lease.token}, counts=counts,
                               errors=errors, lease_expires_at=timezone.now() + leases.lease_duration()):
            logger.warning("sweep %s: the lease was taken over; this worker stops", run.pk)
            run.refresh_from_db()
            return run
    if not errors:
        status = SweepStatus.SUCCEEDED
    else:
        status = SweepStatus.FAILED if len(errors) == len(rows) else SweepStatus.PARTIAL
    started = time.monotonic()
    try:  # after the checks: their findings are its input
        changed = credential_risk_refresh(now=timezone.now())
    except Exception as exc:  # the findings stand; the run says the scores were not refreshed
        logger.exception("sweep %s: the credential risk pass failed", run.pk)
        errors[RISK_PASS] = f"{type(exc).__name__}: {exc}"[:1000]
        status = SweepStatus.PARTIAL if status == SweepStatus.SUCCEEDED else status
    else:
        logger.info("sweep %s: %s credential risk scores changed in %.2f s", run.pk, changed,
                    time.monotonic() - started)
    with transaction.atomic():  # the run's last transaction: finished, and its summaries the ones pages read
        if lease.release(target=status, counts=counts, errors=errors, finished_at=timezone.now()):
            _summaries_publish(run, rows)
    run.refresh_from_db()
    return run


def sweep_runs_recover(run_ids: list[int]) -> dict:
    """Lease recovery: a run whose worker was lost is taken over and goes on from the check it was in.

    A check is evaluated in one transaction, so the one the worker died in left nothing and is evaluated
    again; those it finished are not. A run taken over too often is failed with the reason ("worker lost").
    """
    counts: dict[str, int] = {}
    for run_id in run_ids:
        lease = leases.lease_claim(SweepRun, run_id, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING,
                                   owner=leases.lease_owner("lease-recovery"))
        if lease is None:
            continue
        run = SweepRun.objects.get(pk=run_id)
        if lease.exhausted():
            left = [code for code in run.checks if code not in run.counts and code not in run.errors]
            errors = {**run.errors, **{code: f"worker lost {lease.takeovers[run_id]} times; not evaluated"
                                       for code in left}}
            lease.release(target=SweepStatus.FAILED, errors=errors, finished_at=timezone.now())
            status = SweepStatus.FAILED
        else:
            ensure_catalogue()  # a queued run (services.sweep_now) may reach its first worker here
            rows = list(Check.objects.filter(code__in=run.checks).order_by("sort_order", "code"))
            status = _sweep_checks(run, lease, rows).status
        counts[status] = counts.get(status, 0) + 1
    return counts


def sweep_run_resume(*, run_id: int, task_id: str = "") -> SweepRun:
    """Run a sweep that was queued (services.sweep_now) or left by a lost worker, under its lease. Safe twice.

    A queued run is born running without a holder; the first worker to claim it evaluates its checks,
    a second delivery of the message finds it held or finished and changes nothing.
    """
    lease = leases.lease_claim(SweepRun, run_id, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING,
                               owner=leases.lease_owner(task_id))
    run = SweepRun.objects.get(pk=run_id)
    if lease is None:
        return run
    if lease.exhausted():
        left = [code for code in run.checks if code not in run.counts and code not in run.errors]
        lease.release(target=SweepStatus.FAILED, finished_at=timezone.now(), errors={
            **run.errors, **{code: f"worker lost {lease.takeovers[run_id]} times; not evaluated" for code in left}})
        run.refresh_from_db()
        return run
    ensure_catalogue()
    rows = list(Check.objects.filter(code__in=run.checks).order_by("sort_order", "code"))
    return _sweep_checks(run, lease, rows)
