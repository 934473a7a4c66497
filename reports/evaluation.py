"""The numbers of a framework evidence pack: each check evaluated in the report's scope.

Choice (and why): the counts come from running the check registry's own evaluation
(governance.checks), narrowed to the scope, with time thresholds measured at the report's as_of,
not from the findings the last sweep left behind. So the report matches the database when it is
rendered even if the last sweep is old, and it is reproducible from its parameters. Findings are
then read for what only they know: the state of each failing object's finding (open,
acknowledged, risk accepted) and, for accepted risks, the approving request and the expiry.

Every result (check, object, pass/fail) is handed to a sink as it is produced, so the attached
CSV/JSON hold every result without the builder keeping them all. What stays in memory does not
follow the estate: per check the counts, the first failures by (name, id) that a page can show,
and the accepted risks. The evaluated ids, the failing rows and the findings are read as three
streams ordered by id and merged a chunk at a time.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain

from django.core.exceptions import EmptyResultSet
from django.db import connections

from governance.checks import Context, NotEvaluated, QueryCheck, all_checks
from governance.checks.base import ESTATE_OBJECT_TYPE
from governance.checks.estate import audit_trail_state
from governance.models import Person, Team
from governance.models.checks import UNRESOLVED_STATES, Finding
from reports.scopes import ESTATE, Scope

PASS, FAIL = "pass", "fail"
NEW = "new"  # failing now, no finding recorded yet (no sweep since)
CHUNK = 20_000  # ids merged and handed to the sink at a time
AUDIT_TRAIL = "audit-trail"


@dataclass(slots=True)
class FindingInfo:
    finding_id: int
    state: str
    risk_accepted_until: dt.datetime | None
    request_id: int | None


@dataclass(slots=True)
class FailingObject:
    check: str
    severity: str
    object_type: str
    object_id: int
    name: str
    owner: str
    team: str
    finding: FindingInfo | None

    @property
    def state(self) -> str:
        return self.finding.state if self.finding else NEW

    @property
    def state_label(self) -> str:
        return self.state.replace("_", " ")

    @property
    def accepted(self) -> bool:
        return self.finding is not None and self.finding.state == "risk_accepted"


@dataclass
class CheckEvidence:
    code: str
    name: str
    severity: str
    status: str = "evaluated"  # evaluated | not_evaluated | not_applicable | no_implementation
    detail: str = ""
    checked: int = 0
    failed: int = 0
    accepted: int = 0
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    # The first failures by (name, id, type), as many as a page shows; the sink has every one.
    first_failures: list[FailingObject] = field(default_factory=list)
    # Every accepted risk: type by type (in the check's order), by (name, id) within a type.
    accepted_failures: list[FailingObject] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return self.checked - self.failed

    @property
    def pass_rate(self) -> float | None:
        return None if not self.checked else self.passed / self.checked

    def count_failures(self, failures: list[FailingObject], keep: int, order: Callable) -> None:
        """Count a batch of failures; keep the first `keep` by order overall, and the accepted ones."""
        self.failed += len(failures)
        self.first_failures = heapq.nsmallest(keep, chain(self.first_failures, failures), key=order)
        self.accepted_failures.extend(f for f in failures if f.accepted)
        self.accepted = len(self.accepted_failures)

    def reset(self) -> None:
        self.checked = self.failed = self.accepted = 0
        self.by_type, self.first_failures, self.accepted_failures = {}, [], []


# sink(check code, object type, evaluated ids in order, failing id -> FailingObject): once or more per check
# and type, each call's ids after the previous call's.
ResultSink = Callable[[str, str, list[int], dict[int, FailingObject]], None]


def findings_in_scope(codes: list[str], scope: Scope) -> dict[tuple[str, str, int], FindingInfo]:
    """Unresolved findings of these checks on in-scope objects: (code, type, id) -> info. For the checks
    that are not plain queries (their failures are in memory already)."""

    qs = Finding.objects.filter(failed_check__code__in=codes, state__in=UNRESOLVED_STATES)
    if scope.kind != ESTATE:
        qs = qs.filter(scope.object_condition(text_ids=False))
    rows = qs.values_list("failed_check__code", "object_type", "object_id", "pk", "state", "risk_accepted_until",
                          "risk_acceptance_request_id").iterator(chunk_size=5000)
    return {(code, otype, oid): FindingInfo(pk, state, until, req) for code, otype, oid, pk, state, until, req in rows}


def findings_of(code: str, object_type: str) -> Iterator[tuple[int, FindingInfo]]:
    """Unresolved findings of one check on one type, by object id (at most one per object: a unique
    constraint). Not narrowed to the scope: only in-scope failing objects' findings are looked up."""
    rows = (Finding.objects.filter(failed_check__code=code, object_type=object_type, state__in=UNRESOLVED_STATES)
            .order_by("object_id")
            .values_list("object_id", "pk", "state", "risk_accepted_until", "risk_acceptance_request_id"))
    for oid, pk, state, until, request in rows.iterator(chunk_size=CHUNK):
        yield oid, FindingInfo(pk, state, until, request)


def distinct_by_first(rows: Iterable[tuple]) -> Iterator[tuple]:
    """Rows ordered by their id, each id once: a join in a scope condition may repeat a row."""
    previous = None
    for row in rows:
        if row[0] != previous:
            yield row
            previous = row[0]


def ordered_ids(queryset) -> Iterator[list[int]]:
    """The queryset's ids in order, each once, in lists of up to CHUNK, from a server-side cursor's fetchmany:
    Django's row iterator (generators over generators, per row) costs more than the query at a million rows."""
    try:
        sql, params = queryset.order_by("pk").values_list("pk").query.sql_with_params()
    except EmptyResultSet:  # a condition that matches nothing (pk__in=[]): Django's own iterators yield nothing
        return
    previous = None
    with connections[queryset.db].chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            ids = [row[0] for row in rows]
            if len(set(ids)) != len(ids) or ids[0] == previous:  # ordered: repeats are adjacent
                ids = [pk for pk, before in zip(ids, [previous, *ids], strict=False) if pk != before]
            if ids:
                previous = ids[-1]
                yield ids


def chain_verified_start(head, as_of: dt.datetime) -> dict[str, dict]:
    """The audit-trail check's start when the chain up to a head (reports.chain.ChainHead) was just verified in
    full, as the cover of every report does: the check then verifies only the events after it (its incremental
    mode, from the state it keeps: sequence, hash and when the full verification was), not the whole chain a
    second time. Nothing when that verification failed: the check verifies everything itself."""
    if not (head.intact and head.sequence):
        return {}
    # Verified in full at the evaluation's now (as_of), so the check takes it as fresh whatever the period.
    return {AUDIT_TRAIL: audit_trail_state(sequence=head.sequence, head_hash=head.hash, full_verified_at=as_of)}


def evaluate(
    checks: list, scope: Scope, as_of: dt.datetime, sink: ResultSink, *, keep_failures: int,
    starts: dict[str, dict] | None = None, progress: Callable[[int], None] = lambda i: None,
) -> dict[str, CheckEvidence]:
    """checks: catalogue Check rows (code, name, severity). Returns code -> CheckEvidence, each keeping its
    first keep_failures failures by (name, id) and its accepted risks. starts: check code -> the state an
    outcome check starts from (chain_verified_start)."""

    implementations = all_checks()
    ctx = Context.current(now=as_of)
    outcome_codes = [c.code for c in checks
                     if c.code in implementations and not isinstance(implementations[c.code], QueryCheck)]
    outcome_findings = findings_in_scope(outcome_codes, scope) if outcome_codes and scope.kind == ESTATE else {}
    results: dict[str, CheckEvidence] = {}
    for index, check in enumerate(checks):
        evidence = CheckEvidence(check.code, check.name, check.severity)
        results[check.code] = evidence
        impl = implementations.get(check.code)
        if impl is None:
            evidence.status, evidence.detail = "no_implementation", "No rule is registered for this check."
            continue
        try:
            if isinstance(impl, QueryCheck):
                _evaluate_query_check(impl, evidence, scope, ctx, sink, keep_failures)
            else:
                start = (starts or {}).get(check.code)
                check_ctx = Context(now=ctx.now, thresholds=ctx.thresholds, state=dict(start)) if start else ctx
                _evaluate_outcome(impl, evidence, scope, check_ctx, outcome_findings, sink, keep_failures)
        except NotEvaluated as exc:
            evidence.status, evidence.detail = "not_evaluated", str(exc)[:300]
            evidence.reset()
        progress(index + 1)
    _fill_names(results, Person, Team)
    return results


def _evaluate_query_check(impl, evidence: CheckEvidence, scope, ctx, sink, keep: int) -> None:
    """Per subject type, merge by id the evaluated ids, the failing rows and the findings, and hand the
    results to the sink a chunk of ids at a time."""
    type_order = {model._meta.label_lower: i for i, model in enumerate(impl.subject_models)}

    def order(failure: FailingObject):
        return failure.name, failure.object_id, type_order[failure.object_type]

    for model in impl.subject_models:
        label = model._meta.label_lower
        condition = scope.model_condition(model)
        evaluated = impl.evaluated(model, ctx)
        if condition is not None:
            evaluated = evaluated.filter(condition)
        failing_rows = distinct_by_first(impl.failing_queryset(model, ctx, condition).order_by("pk").values_list(
            "pk", "name", "owner_id", "team_id").iterator(chunk_size=CHUNK))
        findings = findings_of(evidence.code, label)
        finding_id, finding = next(findings, (None, None))
        pending = next(failing_rows, None)
        checked, failed_before, accepted_before = 0, evidence.failed, len(evidence.accepted_failures)
        # A last, empty chunk takes the failing rows after the last evaluated id (counted, as they always were).
        for chunk in chain(ordered_ids(evaluated), [[]]):
            last = chunk[-1] if chunk else None
            failing: dict[int, FailingObject] = {}
            while pending is not None and (last is None or pending[0] <= last):
                pk, name, owner_id, team_id = pending
                while finding_id is not None and finding_id < pk:
                    finding_id, finding = next(findings, (None, None))
                failing[pk] = FailingObject(evidence.code, evidence.severity, label, pk, str(name), owner_id or "",
                                            team_id or "", finding if finding_id == pk else None)
                pending = next(failing_rows, None)
            if chunk or not checked:  # every type is handed over, if only with no ids
                sink(evidence.code, label, chunk, failing)
            checked += len(chunk)
            evidence.count_failures(list(failing.values()), keep, order)
        accepted = evidence.accepted_failures
        accepted[accepted_before:] = sorted(accepted[accepted_before:], key=lambda f: (f.name, f.object_id))
        evidence.checked += checked
        evidence.by_type[label] = {"checked": checked, "failed": evidence.failed - failed_before}


def _evaluate_outcome(impl, evidence: CheckEvidence, scope, ctx, findings, sink, keep: int) -> None:
    """Checks that are not plain queries (the estate's own checks) count in the estate scope only."""

    subject_types = tuple(getattr(impl, "subject_types", ()) or ())
    if scope.kind != ESTATE:
        evidence.status = "not_applicable"
        evidence.detail = "Evaluated for the whole estate only; see the estate-wide report."
        return
    outcome = impl.evaluate(ctx)
    evidence.checked = outcome.evaluated
    evidence.by_type = {t: {"checked": n, "failed": 0} for t, n in outcome.evaluated_by_type.items()}
    by_type: dict[str, dict[int, FailingObject]] = {}
    for (otype, oid), failure in sorted(outcome.failures.items()):
        failing = FailingObject(evidence.code, evidence.severity, otype, oid, failure.object_repr,
                                failure.owner_id or "", failure.team_id or "",
                                findings.get((evidence.code, otype, oid)))
        evidence.by_type.setdefault(otype, {"checked": 0, "failed": 0})["failed"] += 1
        by_type.setdefault(otype, {})[oid] = failing
    for failing in by_type.values():  # in (type, id) order, the order of its accepted risks
        evidence.count_failures(list(failing.values()), keep, lambda f: (f.name, f.object_id, f.object_type))
    if subject_types == (ESTATE_OBJECT_TYPE,) and outcome.evaluated == 1:
        by_type.setdefault(ESTATE_OBJECT_TYPE, {})
        sink(evidence.code, ESTATE_OBJECT_TYPE, [0], by_type.pop(ESTATE_OBJECT_TYPE))
    for otype, failing in by_type.items():  # only the failures are known by id for such checks
        sink(evidence.code, otype, sorted(failing), failing)


def _fill_names(results, Person, Team) -> None:
    """Owner and team ids of the kept failures to names, in two queries for the whole report."""
    failures = [f for evidence in results.values() for f in (*evidence.first_failures, *evidence.accepted_failures)]
    people_ids = sorted({f.owner for f in failures if isinstance(f.owner, int)})
    team_ids = sorted({f.team for f in failures if isinstance(f.team, int)})
    names = _lookup(Person, people_ids, "username")
    team_names = _lookup(Team, team_ids, "name")
    for failure in failures:  # a failure both kept and accepted is one object: its second pass finds names
        failure.owner = names.get(failure.owner, "") if isinstance(failure.owner, int) else failure.owner
        failure.team = team_names.get(failure.team, "") if isinstance(failure.team, int) else failure.team


def _lookup(model, ids: list[int], field_name: str, chunk: int = 2000) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(ids), chunk):
        found.update(model.objects.filter(pk__in=ids[start:start + chunk]).values_list("pk", field_name))
    return found
