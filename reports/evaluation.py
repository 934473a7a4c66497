"""The numbers of a framework evidence pack: each check evaluated in the report's scope.

Choice (and why): the counts come from running the check registry's own evaluation
(governance.checks), narrowed to the scope, with time thresholds measured at the report's as_of,
not from the findings the last sweep left behind. So the report matches the database when it is
rendered even if the last sweep is old, and it is reproducible from its parameters. Findings are
then read for what only they know: the state of each failing object's finding (open,
acknowledged, risk accepted) and, for accepted risks, the approving request and the expiry.

Every result (check, object, pass/fail) is handed to a sink as it is produced, so the attached
CSV/JSON hold every result without the builder keeping them all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from governance.checks import Context, NotEvaluated, QueryCheck, all_checks
from governance.checks.base import ESTATE_OBJECT_TYPE
from governance.models import Person, Team
from governance.models.checks import UNRESOLVED_STATES, Finding
from reports.scopes import ESTATE, Scope

PASS, FAIL = "pass", "fail"
NEW = "new"  # failing now, no finding recorded yet (no sweep since)


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
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[FailingObject] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def accepted(self) -> int:
        return sum(1 for f in self.failures if f.accepted)

    @property
    def passed(self) -> int:
        return self.checked - self.failed

    @property
    def pass_rate(self) -> float | None:
        return None if not self.checked else self.passed / self.checked


# sink(check code, object type, evaluated ids in order, failing id -> FailingObject): once per check and type.
ResultSink = Callable[[str, str, list[int], dict[int, FailingObject]], None]


def findings_in_scope(codes: list[str], scope: Scope) -> dict[tuple[str, str, int], FindingInfo]:
    """Unresolved findings of these checks on in-scope objects: (code, type, id) -> info."""

    qs = Finding.objects.filter(failed_check__code__in=codes, state__in=UNRESOLVED_STATES)
    if scope.kind != ESTATE:
        qs = qs.filter(scope.object_condition(text_ids=False))
    rows = qs.values_list("failed_check__code", "object_type", "object_id", "pk", "state", "risk_accepted_until",
                          "risk_acceptance_request_id").iterator(chunk_size=5000)
    return {(code, otype, oid): FindingInfo(pk, state, until, req) for code, otype, oid, pk, state, until, req in rows}


def evaluate(
    checks: list, scope: Scope, as_of: dt.datetime, sink: ResultSink,
    progress: Callable[[int], None] = lambda i: None,
) -> dict[str, CheckEvidence]:
    """checks: catalogue Check rows (code, name, severity). Returns code -> CheckEvidence."""

    implementations = all_checks()
    ctx = Context.current(now=as_of)
    findings = findings_in_scope([c.code for c in checks], scope)
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
                _evaluate_query_check(impl, evidence, scope, ctx, findings, sink)
            else:
                _evaluate_outcome(impl, evidence, scope, ctx, findings, sink)
        except NotEvaluated as exc:
            evidence.status, evidence.detail = "not_evaluated", str(exc)[:300]
            evidence.checked, evidence.by_type, evidence.failures = 0, {}, []
        progress(index + 1)
    _fill_names(results, Person, Team)
    return results


def _evaluate_query_check(impl, evidence, scope, ctx, findings, sink) -> None:
    for model in impl.subject_models:
        label = model._meta.label_lower
        condition = scope.model_condition(model)
        evaluated = impl.evaluated(model, ctx)
        if condition is not None:
            evaluated = evaluated.filter(condition)
        failing_rows = impl.failing_queryset(model, ctx, condition).values_list("pk", "name", "owner_id", "team_id")
        failing: dict[int, FailingObject] = {}
        for pk, name, owner_id, team_id in failing_rows.iterator(chunk_size=5000):
            if pk in failing:
                continue
            failing[pk] = FailingObject(
                evidence.code, evidence.severity, label, pk, str(name), owner_id or "", team_id or "",
                findings.get((evidence.code, label, pk)),
            )
        # Ordered, distinct ids (a join in the scope condition may repeat a row); ids only, so a plain
        # fetch (100,000 ints is a few MB) beats a server-side cursor's round trips.
        pks = list(dict.fromkeys(evaluated.order_by("pk").values_list("pk", flat=True)))
        sink(evidence.code, label, pks, failing)
        evidence.checked += len(pks)
        evidence.by_type[label] = {"checked": len(pks), "failed": len(failing)}
        evidence.failures.extend(sorted(failing.values(), key=lambda f: (f.name, f.object_id)))


def _evaluate_outcome(impl, evidence, scope, ctx, findings, sink) -> None:
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
        evidence.failures.append(failing)
        evidence.by_type.setdefault(otype, {"checked": 0, "failed": 0})["failed"] += 1
        by_type.setdefault(otype, {})[oid] = failing
    if subject_types == (ESTATE_OBJECT_TYPE,) and outcome.evaluated == 1:
        by_type.setdefault(ESTATE_OBJECT_TYPE, {})
        sink(evidence.code, ESTATE_OBJECT_TYPE, [0], by_type.pop(ESTATE_OBJECT_TYPE))
    for otype, failing in by_type.items():  # only the failures are known by id for such checks
        sink(evidence.code, otype, sorted(failing), failing)


def _fill_names(results, Person, Team) -> None:
    """Owner and team ids of the failing objects to names, in two queries for the whole report."""
    failures = [f for evidence in results.values() for f in evidence.failures]
    people_ids = sorted({f.owner for f in failures if isinstance(f.owner, int)})
    team_ids = sorted({f.team for f in failures if isinstance(f.team, int)})
    names = _lookup(Person, people_ids, "username")
    team_names = _lookup(Team, team_ids, "name")
    for evidence in results.values():
        for failure in evidence.failures:
            failure.owner = names.get(failure.owner, "") if isinstance(failure.owner, int) else failure.owner
            failure.team = team_names.get(failure.team, "") if isinstance(failure.team, int) else failure.team


def _lookup(model, ids: list[int], field_name: str, chunk: int = 2000) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(ids), chunk):
        found.update(model.objects.filter(pk__in=ids[start:start + chunk]).values_list("pk", field_name))
    return found
