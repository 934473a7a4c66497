"""Discovery's write services: sources, run requests, the run itself, and recording what a run saw.

A run reads its source with no database transaction open (a source talks to the network), holding a
lease on its DiscoveryRun row (governance.leases) that it renews as it goes; then it records everything it
saw, reconciles it with the inventory and finishes the run in one short transaction, guarded by the lease,
so a run taken over after its worker was lost records once. Run requests are outbox work written in the
requesting transaction (governance.outbox). Facts pass through the secret guard before they are stored:
a value that looks like a secret is withheld, so no secret value reaches the database, a log or the audit
trail even when a source's metadata holds one (an owner tag with a pasted token).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from fast_update.fast import fast_update

from governance import leases, permissions, roles, task_names
from governance.audit import Actor, PendingEvent, audit_append, audit_append_many
from governance.discovery.reconcile import reconcile_source
from governance.discovery.sources.base import Observed, SourceError
from governance.discovery.sources.registry import source_reader, source_settings
from governance.models.discovery import (
    DISCOVERY_RUN_OPEN,
    DiscoveredItem,
    DiscoveredKind,
    DiscoveryRun,
    DiscoveryRunStatus,
    DiscoverySource,
    DiscoverySourceKind,
    Reconciliation,
    ReviewState,
)
from governance.outbox import enqueue
from governance.secret_guard import reject_secret_values, secret_kind
from governance.services.common import ensure_may_write, ensure_security_admin
from governance.services.lifecycle import request_sweep

logger = logging.getLogger(__name__)

WITHHELD = "[withheld: looks like a secret value]"
# Facts that move without the thing changing (a new commit, a shifted line, a TTL counting down): a
# dismissed item does not come back for these.
VOLATILE_FACTS = frozenset({"commit", "line", "ttl", "expire_time", "found_in"})
HEX_FACTS = frozenset({"commit", "serial", "accessor"})
HEX_VALUE = re.compile(r"^[0-9a-f]{7,64}$|^[0-9a-f]{2}(?:[:-][0-9a-f]{2})+$", re.I)
ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SOURCE_FIELDS = ("name", "kind", "settings", "credential_env_var", "system", "store", "schedule_seconds", "enabled")
PROGRESS_EVERY_SECONDS = 2.0
DISCOVERY_CHECKS = ["discovery-undeclared-identity", "discovery-undeclared-workflow", "discovery-hard-coded-secret",
                    "discovery-privileged-undeclared-identity", "discovery-declared-missing"]


def discovery_actor(task_id: str = "") -> Actor:
    return Actor.system(task_id=task_id, label="steward discovery")


# Facts --------------------------------------------------------------------------------------------

def facts_safe(value: Any, *, key: str = "") -> Any:
    """The facts with every text that looks like a secret value replaced by WITHHELD (recursively)."""
    if isinstance(value, Mapping):
        return {str(k): facts_safe(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [facts_safe(v, key=key) for v in value]
    if isinstance(value, str):
        if key in HEX_FACTS and HEX_VALUE.match(value):
            return value
        return WITHHELD if secret_kind(value) else value[:2000]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def facts_digest(facts: Mapping[str, Any]) -> str:
    stable = {k: v for k, v in facts.items() if k not in VOLATILE_FACTS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


# Sources ------------------------------------------------------------------------------------------

def _source_values(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(data) - set(SOURCE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in sorted(unknown)})
    values = dict(data)
    if "kind" in values and values["kind"] not in DiscoverySourceKind.values:
        raise ValidationError({"kind": f"Choose one of {', '.join(DiscoverySourceKind.values)}."})
    if not isinstance(values.get("settings", {}), dict):
        raise ValidationError({"settings": "Give the settings as a JSON object."})
    reject_secret_values({"settings": values.get("settings", {})}, ["settings"])
    env_var = values.get("credential_env_var", "")
    if env_var and not ENV_VAR.match(env_var):
        raise ValidationError({"credential_env_var": "Give the name of an environment variable (A-Z, 0-9, _), "
                                                     "never the value."})
    if "schedule_seconds" in values and int(values["schedule_seconds"]) < 60:
        raise ValidationError({"schedule_seconds": "Run at most once a minute (60 seconds or more)."})
    return values


def _validate_settings(source: DiscoverySource) -> None:
    try:
        source_settings(source)
    except SourceError as error:
        raise ValidationError({"settings": error.reason}) from None


def discovery_source_create(*, actor: Actor, data: Mapping[str, Any]) -> DiscoverySource:
    """Register a place to look (security admins). Settings are non-secret; credentials by variable name."""
    ensure_security_admin(actor)
    values = _source_values(data)
    source = DiscoverySource(**values)
    _validate_settings(source)
    source.full_clean()
    with transaction.atomic():
        source.save()
        audit_append(actor=actor, action="discovery.source_create", target=source,
                     summary=f"Discovery source {source.name} ({source.get_kind_display()}) registered",
                     changes={"kind": {"before": None, "after": source.kind},
                              "settings": {"before": None, "after": source.settings}})
    return source


def discovery_source_update(*, actor: Actor, source: DiscoverySource, data: Mapping[str, Any]) -> DiscoverySource:
    ensure_security_admin(actor)
    values = _source_values(data)
    before = {name: getattr(source, f"{name}_id" if name in ("system", "store") else name) for name in values}
    for name, value in values.items():
        setattr(source, name, value)
    _validate_settings(source)
    source.full_clean()
    after = {name: getattr(source, f"{name}_id" if name in ("system", "store") else name) for name in values}
    with transaction.atomic():
        source.save()
        audit_append(actor=actor, action="discovery.source_update", target=source,
                     summary=f"Discovery source {source.name} changed",
                     changes={k: {"before": before[k], "after": after[k]} for k in values if before[k] != after[k]})
    return source


# Run requests -------------------------------------------------------------------------------------

def discovery_may_run(user, source: DiscoverySource) -> bool:
    """Who may ask for a run: security admins, and the people who may change the source's system."""
    if roles.is_security_admin(user):
        return True
    if roles.is_auditor(user):
        return False
    return source.system_id is not None and permissions.can(user, permissions.CHANGE, source.system)


def _ensure_may_run(actor: Actor, source: DiscoverySource) -> None:
    if actor.kind == "system":
        return
    ensure_may_write(actor)
    if not discovery_may_run(actor.user, source):
        raise PermissionDenied("Only security admins and the owners of the source's system may run discovery.")


def discovery_run_request(*, actor: Actor, source: DiscoverySource, trigger: str = "manual") -> DiscoveryRun:
    """Ask for a run of the source after commit; an open run of the same source is returned instead."""
    _ensure_may_run(actor, source)
    with transaction.atomic():
        existing = DiscoveryRun.objects.filter(source=source, status__in=DISCOVERY_RUN_OPEN).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                run = DiscoveryRun.objects.create(
                    source=source, trigger=trigger[:40], requested_by=actor.user if actor.kind != "system" else None)
        except IntegrityError:  # a concurrent request created the open run first
            return DiscoveryRun.objects.get(source=source, status__in=DISCOVERY_RUN_OPEN)
        enqueue(task_names.DISCOVERY_RUN, run_id=run.pk)
        if actor.kind != "system":
            audit_append(actor=actor, action="discovery.run_request", target=source,
                         summary=f"Discovery run #{run.pk} of {source.name} requested")
    return run


def discovery_runs_schedule(*, now: dt.datetime | None = None) -> list[int]:
    """Beat: a run for every enabled source whose schedule is due and that has no open run."""
    now = now or timezone.now()
    started = []
    open_sources = set(DiscoveryRun.objects.filter(status__in=DISCOVERY_RUN_OPEN).values_list("source_id", flat=True))
    for source in DiscoverySource.objects.filter(enabled=True).order_by("pk"):
        if source.pk in open_sources:
            continue
        if source.last_run_at and now - source.last_run_at < dt.timedelta(seconds=source.schedule_seconds):
            continue
        started.append(discovery_run_request(actor=discovery_actor("beat"), source=source, trigger="schedule").pk)
    return started


# The run --------------------------------------------------------------------------------------------

def _safe_reason(error: Exception) -> str:
    reason = error.reason if isinstance(error, SourceError) else f"{type(error).__name__}: {error}"
    return (WITHHELD if secret_kind(reason) else reason)[:1000]


def _fail(run: DiscoveryRun, lease: leases.Lease, reason: str) -> None:
    finished = timezone.now()
    with transaction.atomic():
        if lease.release(target=DiscoveryRunStatus.FAILED, finished_at=finished, errors=[reason], progress="failed"):
            DiscoverySource.objects.filter(pk=run.source_id).update(last_error=reason, last_error_at=finished)
    run.refresh_from_db()


def discovery_run_execute(*, run_id: int, task_id: str = "") -> DiscoveryRun:
    """Do one run: read the source, record and reconcile what it saw, finish the run (once, under its lease)."""
    lease = leases.lease_claim(DiscoveryRun, run_id, sources=DISCOVERY_RUN_OPEN, running=DiscoveryRunStatus.RUNNING,
                               owner=leases.lease_owner(task_id), started_at=timezone.now())
    run = DiscoveryRun.objects.select_related("source__system").get(pk=run_id)
    if lease is None:
        return run  # finished, or another worker holds it
    source = run.source
    DiscoverySource.objects.filter(pk=source.pk).update(last_run_at=run.started_at)
    clock = time.monotonic()
    last_progress = [clock]

    def progress(text: str, **counts: int) -> None:
        lease.heartbeat()
        if time.monotonic() - last_progress[0] >= PROGRESS_EVERY_SECONDS:
            last_progress[0] = time.monotonic()
            DiscoveryRun.objects.filter(pk=run_id, lease_token=lease.token).update(progress=text[:200], counts=counts)

    observed: dict[tuple[str, str], Observed] = {}
    try:
        reader = source_reader(source)
        for item in reader.observe(progress):
            observed[(item.kind, item.natural_key)] = item
            if len(observed) % 1000 == 0:
                progress(f"{len(observed)} items read", items=len(observed))
    except leases.LeaseLost:
        return run
    except SourceError as error:
        _fail(run, lease, _safe_reason(error))
        return run
    except Exception as error:  # a bug in a parser must fail the run visibly, not leave it running
        logger.exception("discovery run %s of source %s failed", run_id, source.pk)
        _fail(run, lease, _safe_reason(error))
        return run
    read_seconds = time.monotonic() - clock
    stats = getattr(reader, "stats", None)
    warnings = list(getattr(stats, "parse_errors", []))[:50]
    with transaction.atomic():
        if not lease.holds():
            return run
        now = timezone.now()
        actor = discovery_actor(task_id)
        counts = items_record(actor=actor, source=source, observed=list(observed.values()), now=now)
        counts.update(reconcile_source(actor=actor, source=source, now=now))
        if stats is not None:
            counts.update({k: v for k, v in vars(stats).items() if isinstance(v, int)})
        counts["read_seconds"] = round(read_seconds, 3)
        finished = timezone.now()
        lease.release(target=DiscoveryRunStatus.SUCCEEDED, finished_at=finished, counts=counts, errors=warnings,
                      progress="finished")
        DiscoverySource.objects.filter(pk=source.pk).update(last_success_at=finished)
        request_sweep(DISCOVERY_CHECKS, trigger="discovery")
    run.refresh_from_db()
    return run


def discovery_runs_recover(run_ids: list[int]) -> dict:
    """Lease recovery: a run whose worker was lost is read again from the start (it recorded nothing yet),
    unless it was taken over too often, then it fails with the reason."""
    counts: dict[str, int] = {}
    for run_id in run_ids:
        lease = leases.lease_claim(DiscoveryRun, run_id, sources=[DiscoveryRunStatus.RUNNING],
                                   running=DiscoveryRunStatus.RUNNING, owner=leases.lease_owner("lease-recovery"))
        if lease is None:
            continue
        run = DiscoveryRun.objects.get(pk=run_id)
        if lease.exhausted():
            _fail(run, lease, f"worker lost {lease.takeovers[run_id]} times; the run was given up")
            counts["failed"] = counts.get("failed", 0) + 1
            continue
        with transaction.atomic():  # hand it back as pending and run it again through the outbox
            if lease.release(target=DiscoveryRunStatus.PENDING, progress="resumed after its worker was lost"):
                enqueue(task_names.DISCOVERY_RUN, run_id=run_id, dedupe_key=f"discovery-run-{run_id}")
        counts["resumed"] = counts.get("resumed", 0) + 1
    return counts


# Recording ------------------------------------------------------------------------------------------

def _chunks(items: list, size: int = 5000) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def items_record(*, actor: Actor, source: DiscoverySource, observed: list[Observed], now: dt.datetime) -> dict:
    """Insert new items, refresh changed ones, mark the unseen ones absent; a dismissed item that changed
    is back in the queue (audited). Set-based: a few statements per 5,000 items."""
    owner_id = source.system.owner_id if source.system_id else None
    team_id = source.system.team_id if source.system_id else None
    existing = {
        (kind, key): rest for kind, key, *rest in DiscoveredItem.objects.filter(source=source).values_list(
            "kind", "natural_key", "pk", "facts_digest", "name", "privileged", "fingerprint", "present", "review",
            "dismissed_digest", "owner_id", "team_id", "reconciliation").iterator(chunk_size=5000)
    }
    new, changed, seen, resurfaced = [], [], [], []
    for item in observed:
        facts = facts_safe(item.facts)
        digest = facts_digest(facts)
        row = existing.get((item.kind, item.natural_key))
        if row is None:
            new.append(DiscoveredItem(
                source=source, kind=item.kind, natural_key=item.natural_key[:500], name=item.name[:300], facts=facts,
                facts_digest=digest, privileged=item.privileged, fingerprint=item.fingerprint, present=True,
                first_seen_at=now, last_seen_at=now, owner_id=owner_id, team_id=team_id,
                reconciliation=(Reconciliation.HARD_CODED_SECRET if item.kind == DiscoveredKind.HARD_CODED_SECRET
                                else Reconciliation.UNDECLARED)))
            continue
        (pk, old_digest, name, privileged, fingerprint, present, review, dismissed_digest, old_owner, old_team,
         state) = row
        if review == ReviewState.DISMISSED and dismissed_digest and dismissed_digest != digest:
            resurfaced.append((pk, item.name))
        if (old_digest, name, privileged, fingerprint, present, old_owner, old_team) != (
                digest, item.name[:300], item.privileged, item.fingerprint, True, owner_id, team_id) or (
                state == Reconciliation.MISSING):
            changed.append(DiscoveredItem(pk=pk, name=item.name[:300], facts=facts, facts_digest=digest,
                                          privileged=item.privileged, fingerprint=item.fingerprint, present=True,
                                          last_seen_at=now, owner_id=owner_id, team_id=team_id))
        else:
            seen.append(pk)
    DiscoveredItem.objects.bulk_create(new, batch_size=1000)
    if changed:
        fast_update(DiscoveredItem.objects.all(), changed, ["name", "facts", "facts_digest", "privileged",
                                                            "fingerprint", "present", "last_seen_at", "owner",
                                                            "team"], batch_size=1000)
    for chunk in _chunks(seen):
        DiscoveredItem.objects.filter(pk__in=chunk).update(last_seen_at=now)
    absent = (DiscoveredItem.objects.filter(source=source, present=True, last_seen_at__lt=now)
              .exclude(reconciliation=Reconciliation.MISSING).update(present=False))
    if resurfaced:
        DiscoveredItem.objects.filter(pk__in=[pk for pk, _ in resurfaced]).update(
            review=ReviewState.PENDING, dismissed_until=None, dismissed_digest="")
        audit_append_many(actor=actor, events=[
            PendingEvent(action="discovery.item_resurfaced", object_type="governance.discovereditem", object_id=pk,
                         object_repr=name[:300], summary=f"{name[:200]} changed since it was dismissed: back in review",
                         changes={"review": {"before": ReviewState.DISMISSED, "after": ReviewState.PENDING}})
            for pk, name in resurfaced])
    return {"items": len(observed), "new": len(new), "changed": len(changed), "unchanged": len(seen),
            "absent": absent, "resurfaced": len(resurfaced)}
