"""Reads of the checks capability: findings, the catalogue, and posture (pass rates, trends, what is due).

Posture numbers follow what a person may see: auditors and security admins get the estate (from
each check's latest evaluation); everyone else gets their teams' objects (or, without a team,
the objects they own), from the per-team and per-owner counts the latest finished sweep of each
check wrote (CheckSummary), never aggregated over the estate per page view.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.apps import apps
from django.db.models import Count, F, Prefetch, Q, Sum
from django.utils import timezone

from governance import roles
from governance.checks import Context, NotEvaluated, QueryCheck, all_checks
from governance.checks.base import scope_lookup
from governance.checks.ranking import WORST_FIRST
from governance.choices import CredentialKind, CredentialStatus
from governance.models import AuditEvent, Credential, Team
from governance.models.checks import (
    FINDING_TYPE,
    SEVERITY_ORDER,
    UNRESOLVED_STATES,
    Check,
    CheckControl,
    CheckStatus,
    CheckSummary,
    Control,
    Finding,
    FindingState,
    Framework,
    PostureSnapshot,
    Severity,
)
from governance.permissions import CHANGE, VIEW, restrict


def finding_list(*, user, action: str = VIEW):
    return restrict(Finding.objects.all(), user, action).select_related("failed_check", "owner", "team")


def worst_first(findings):
    """Findings by risk (checks/ranking.py): the lowest rank first, the oldest first among equals."""
    return findings.order_by(*WORST_FIRST)


def changeable_finding_ids(*, user, ids) -> set[int]:
    """Which of these findings (a page's) the user may change: those whose object they may change.

    The same rule as restrict(Finding, CHANGE), asked of the page's few objects per type (one query each)
    instead of building the set of every finding the user may change and intersecting it with the page."""
    findings = list(Finding.objects.filter(pk__in=list(ids)).values_list("pk", "object_type", "object_id"))
    by_type: dict[str, set[int]] = defaultdict(set)
    for _pk, object_type, object_id in findings:
        by_type[object_type].add(object_id)
    changeable: set[tuple[str, int]] = set()
    for object_type, object_ids in by_type.items():
        model = apps.get_model(object_type)
        visible = restrict(model.objects.filter(pk__in=object_ids), user, CHANGE).values_list("pk", flat=True)
        changeable.update((object_type, pk) for pk in visible)
    return {pk for pk, object_type, object_id in findings if (object_type, object_id) in changeable}


def finding_history(*, finding: Finding):
    """Audit events of one finding. Callers pass a finding the user was already allowed to see."""
    return AuditEvent.objects.filter(object_type=FINDING_TYPE, object_id=str(finding.pk)).order_by(
        "-sequence"
    )


def finding_object(*, user, finding: Finding):
    """The object a finding is about, when it still exists and the user may see it (else None)."""

    if finding.object_type not in ("governance.credential", "governance.workflow", "governance.system"):
        return None
    model = apps.get_model(finding.object_type)
    return restrict(model.objects.all(), user, VIEW).filter(pk=finding.object_id).first()


def check_controls(*, check: Check):
    """The controls a check evidences, grouped by framework, in catalogue order."""
    mappings = (
        CheckControl.objects.filter(mapped_check=check)
        .select_related("control__framework")
        .order_by("control__framework__sort_order", "strength", "control__sort_order")
    )
    grouped: dict[Framework, list[CheckControl]] = {}
    for mapping in mappings:
        grouped.setdefault(mapping.control.framework, []).append(mapping)
    return grouped


def check_list():
    mappings = CheckControl.objects.select_related("control__framework").order_by(
        "control__framework__sort_order", "strength", "control__sort_order"
    )
    return Check.objects.prefetch_related(Prefetch("mappings", queryset=mappings)).order_by("sort_order")


def framework_list():
    return Framework.objects.annotate(
        control_count=Count("controls", distinct=True),
        mapped_control_count=Count("controls", filter=Q(controls__mappings__isnull=False), distinct=True),
        check_count=Count("controls__mappings__mapped_check", distinct=True),
    ).order_by("sort_order")


# Posture


@dataclass
class Result:
    """How many subjects one check evaluated in a scope, and how many failed (accepted: risk accepted)."""

    evaluated: int = 0
    failed: int = 0
    accepted: int = 0
    status: str = CheckStatus.EVALUATED
    sweep_id: int | None = None  # the sweep these counts are as of (team and owner scopes)
    as_of: dt.datetime | None = None

    @property
    def passed(self) -> int:
        return max(self.evaluated - self.failed, 0)

    @property
    def open_failed(self) -> int:
        return max(self.failed - self.accepted, 0)

    @property
    def pass_rate(self) -> float | None:
        return round(100.0 * self.passed / self.evaluated, 1) if self.evaluated else None

    def add(self, other: Result) -> None:
        self.evaluated += other.evaluated
        self.failed += other.failed
        self.accepted += other.accepted


@dataclass
class Scope:
    """Whose posture: the estate, some teams, or one person's own objects."""

    kind: str  # "estate", "team", "owner"
    label: str
    team_ids: list[int] = field(default_factory=list)
    owner_id: int | None = None

    def q(self, model) -> Q | None:
        lookup = scope_lookup(model, "team" if self.kind == "team" else "owner")
        if self.kind == "team":
            return Q(**{f"{lookup}__in": self.team_ids})
        return Q(**{lookup: self.owner_id})

    def findings(self):
        if self.kind == "estate":
            return Finding.objects.all()
        if self.kind == "team":
            return Finding.objects.filter(team_id__in=self.team_ids)
        return Finding.objects.filter(owner_id=self.owner_id)


def posture_scope(*, user, team: Team | None = None) -> Scope:
    member_of = list(Team.objects.filter(group__user=user).values_list("pk", flat=True))
    if team is not None and (roles.reads_everything(user) or team.pk in member_of):
        return Scope("team", team.name, [team.pk])
    if roles.reads_everything(user):
        return Scope("estate", "the whole estate")
    if member_of:
        names = ", ".join(Team.objects.filter(pk__in=member_of).values_list("name", flat=True))
        return Scope("team", f"your teams ({names})", member_of)
    return Scope("owner", "the objects you own", owner_id=user.pk)


def _accepted_counts(scope: Scope) -> dict[str, int]:
    rows = (
        scope.findings()
        .filter(state=FindingState.RISK_ACCEPTED)
        .values("failed_check__code")
        .annotate(n=Count("pk"))
    )
    return {row["failed_check__code"]: row["n"] for row in rows}


def check_results(*, scope: Scope) -> dict[str, Result]:
    """Per check code: evaluated, failed, accepted in the scope."""
    accepted = _accepted_counts(scope)
    checks = Check.objects.order_by("sort_order")
    results: dict[str, Result] = {}
    if scope.kind == "estate":
        for check in checks:
            results[check.code] = Result(
                check.last_evaluated_count,
                check.last_failed_count,
                accepted.get(check.code, 0),
                check.last_status,
            )
        return results
    summaries = _latest_summaries(scope)
    registry = all_checks()
    for check in checks:
        if not isinstance(registry.get(check.code), QueryCheck):
            continue  # estate-level checks have no team or owner
        if check.last_status != CheckStatus.EVALUATED:
            results[check.code] = Result(status=check.last_status)
            continue
        sweep_id, as_of, evaluated, failed = summaries.get(check.pk, (None, None, 0, 0))
        results[check.code] = Result(evaluated, failed, accepted.get(check.code, 0), sweep_id=sweep_id, as_of=as_of)
    return results


def _latest_summaries(scope: Scope) -> dict[int, tuple[int, dt.datetime, int, int]]:
    """Check pk -> (sweep id, finished at, evaluated, failed) in the scope, from the latest finished sweep of it."""
    scope_type, ids = ((CheckSummary.TEAM, scope.team_ids) if scope.kind == "team"
                       else (CheckSummary.OWNER, [scope.owner_id]))
    rows = (
        CheckSummary.objects.filter(scope_type=scope_type, scope_id__in=ids, sweep__finished_at__isnull=False)
        .order_by()
        .values_list("summarised_check_id", "sweep_id", "sweep__finished_at")
        .annotate(evaluated=Sum("evaluated"), failed=Sum("failed"))
    )
    latest: dict[int, tuple[int, dt.datetime, int, int]] = {}
    for check_id, sweep_id, finished_at, evaluated, failed in rows:
        if check_id not in latest or sweep_id > latest[check_id][0]:
            latest[check_id] = (sweep_id, finished_at, evaluated, failed)
    return latest


def results_as_of(results: dict[str, Result]) -> dict | None:
    """The sweep the scope's results are as of (the latest), and whether some checks are older."""
    sweeps = {(r.sweep_id, r.as_of) for r in results.values() if r.sweep_id is not None}
    if not sweeps:
        return None
    sweep_id, at = max(sweeps, key=lambda item: item[0])
    return {"sweep_id": sweep_id, "at": at, "mixed": len(sweeps) > 1}


def open_findings_by_check(*, results: dict[str, Result]) -> dict[str, int]:
    """Open (or acknowledged) findings per check code in the scope check_results() read (as of its sweep)."""
    return {code: result.open_failed for code, result in results.items()}


def open_findings_by_severity(*, results: dict[str, Result]) -> dict[str, int]:
    """Open (or acknowledged) findings by severity in the scope check_results() read: each check's failed
    objects less its risk-accepted ones, as of the sweep those results are (never a live count over findings)."""
    severities = dict(Check.objects.values_list("code", "severity"))
    counts: dict[str, int] = defaultdict(int)
    for code, result in results.items():
        if code in severities:
            counts[severities[code]] += result.open_failed
    return {severity: counts.get(severity, 0) for severity in sorted(Severity.values, key=SEVERITY_ORDER.get)}


@dataclass
class ControlPosture:
    control: Control
    mappings: list[CheckControl]
    result: Result
    open_by_severity: dict[str, int]


def framework_posture(
    *, framework: Framework, results: dict[str, Result], open_counts: dict[str, int] | None = None
) -> tuple[list[ControlPosture], Result]:
    """Per control (in catalogue order): its checks, their summed results and open findings by severity;
    and the framework's total over the distinct checks that evidence it."""
    open_counts = open_counts or {}
    mappings = (
        CheckControl.objects.filter(control__framework=framework)
        .select_related("mapped_check")
        .order_by("strength", "mapped_check__sort_order")
    )
    by_control: dict[int, list[CheckControl]] = defaultdict(list)
    for mapping in mappings:
        by_control[mapping.control_id].append(mapping)
    rows, total, seen = [], Result(), set()
    for control in framework.controls.order_by("sort_order"):
        result, severities = Result(), defaultdict(int)
        for mapping in by_control.get(control.pk, []):
            severities[mapping.mapped_check.severity] += open_counts.get(mapping.mapped_check.code, 0)
            check_result = results.get(mapping.mapped_check.code)
            if check_result is not None:
                result.add(check_result)
                if mapping.mapped_check.code not in seen:
                    seen.add(mapping.mapped_check.code)
                    total.add(check_result)
        ordered = {k: severities[k] for k in sorted(severities, key=SEVERITY_ORDER.get) if severities[k]}
        rows.append(ControlPosture(control, by_control.get(control.pk, []), result, ordered))
    return rows, total


def frameworks_summary(*, results: dict[str, Result]) -> list[tuple[Framework, Result]]:
    codes_by_framework: dict[int, set[str]] = defaultdict(set)
    for framework_id, code in CheckControl.objects.values_list("control__framework_id", "mapped_check__code"):
        codes_by_framework[framework_id].add(code)
    summary = []
    for framework in Framework.objects.order_by("sort_order"):
        total = Result()
        for code in sorted(codes_by_framework.get(framework.pk, ())):
            if code in results:
                total.add(results[code])
        summary.append((framework, total))
    return summary


def posture_trend(*, scope: Scope, days: int = 90) -> dict[str, list[tuple[dt.date, float]]]:
    """Daily pass rate, overall and per framework, from the snapshots ("overall" and framework keys)."""
    since = timezone.localdate() - dt.timedelta(days=days)
    snapshots = PostureSnapshot.objects.filter(date__gte=since)
    if scope.kind == "estate":
        snapshots = snapshots.filter(scope_type=PostureSnapshot.ESTATE)
    elif scope.kind == "team":
        snapshots = snapshots.filter(
            scope_type=PostureSnapshot.TEAM, scope_key__in=[str(t) for t in scope.team_ids]
        )
    else:
        return {}
    totals: dict[tuple[str, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    frameworks: dict[str, set[str]] = defaultdict(set)
    for key, code in CheckControl.objects.values_list("control__framework__key", "mapped_check__code"):
        frameworks[code].add(key)
    for date, code, passed, failed, accepted in snapshots.values_list(
        "date", "check_code", "passed", "failed", "accepted"
    ):
        for series in ("overall", *frameworks.get(code, ())):
            totals[(series, date)][0] += passed
            totals[(series, date)][1] += passed + failed + accepted
    trend: dict[str, list[tuple[dt.date, float]]] = defaultdict(list)
    for (series, date), (passed, evaluated) in sorted(totals.items(), key=lambda item: item[0][1]):
        if evaluated:
            trend[series].append((date, round(100.0 * passed / evaluated, 1)))
    return dict(trend)


def upcoming_certificate_expiries(*, user, days: int = 60, limit: int = 10):
    horizon = timezone.now() + dt.timedelta(days=days)
    return (
        restrict(Credential.objects.all(), user, VIEW)
        .filter(
            status=CredentialStatus.ACTIVE,
            kind=CredentialKind.CERTIFICATE,
            expires_at__lte=horizon,
        )
        .select_related("system", "owner")
        .order_by("expires_at")[:limit]
    )


def rotations_due(*, user, days: int = 14, limit: int = 10):
    """Active credentials whose rotation is overdue or falls due within the next `days` days, as of the last
    sweep (Credential.swept_rotation_due_at: the rotation rule's date, stored and indexed by the sweep's risk
    pass), so the posture page reads an index instead of computing the rule over every credential."""
    horizon = timezone.now() + dt.timedelta(days=days)
    return (
        restrict(Credential.objects.filter(status=CredentialStatus.ACTIVE), user, VIEW)
        .filter(swept_rotation_due_at__lte=horizon)
        .annotate(rotation_due_at=F("swept_rotation_due_at"))
        .select_related("system", "owner")
        .order_by("swept_rotation_due_at", "pk")[:limit]
    )


def object_posture(*, obj, ctx: Context | None = None) -> list[dict]:
    """For one workflow, credential or system: each check that applies to it, and whether it passes."""
    ctx = ctx or Context.current()
    object_type = obj._meta.label_lower
    findings = {
        f.failed_check.code: f
        for f in Finding.objects.filter(
            object_type=object_type, object_id=obj.pk, state__in=UNRESOLVED_STATES
        ).select_related("failed_check")
    }
    rows = []
    for check in Check.objects.order_by("sort_order"):
        definition = all_checks().get(check.code)
        if not isinstance(definition, QueryCheck) or type(obj) not in definition.subject_models:
            continue
        try:
            applies = definition.evaluated(type(obj), ctx).filter(pk=obj.pk).exists()
            fails = applies and definition.failing_queryset(type(obj), ctx, Q(pk=obj.pk)).exists()
        except NotEvaluated:
            rows.append({"check": check, "state": "not evaluated", "finding": None})
            continue
        if applies:
            rows.append(
                {
                    "check": check,
                    "state": "failed" if fails else "passed",
                    "finding": findings.get(check.code),
                }
            )
    return rows
