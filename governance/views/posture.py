"""Posture pages: the dashboard, frameworks and their controls, the checks, and one object's posture."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils import timezone

from governance import charts, roles
from governance.checks import thresholds
from governance.models import Credential, System, Team, Workflow
from governance.models.checks import CatalogueVersion, Framework, SweepRun
from governance.selectors import checks as selectors
from governance.views.common import deny_unless, get_restricted_or_404

OBJECT_KINDS = {"workflows": Workflow, "credentials": Credential, "systems": System}


def _scope(request):
    team = None
    if request.GET.get("team"):
        team = get_object_or_404(Team, pk=request.GET["team"]) if request.GET["team"].isdigit() else None
        deny_unless(team is not None)
    scope = selectors.posture_scope(user=request.user, team=team)
    deny_unless(team is None or scope.team_ids == [team.pk])
    return scope


@login_required
def posture_dashboard(request):
    scope = _scope(request)
    results = selectors.check_results(scope=scope)
    trend = selectors.posture_trend(scope=scope)
    frameworks = [
        {
            "framework": fw,
            "result": result,
            "sparkline": charts.sparkline(
                trend.get(fw.key, []), label=f"{fw.short_name or fw.name} pass rate trend"
            ),
        }
        for fw, result in selectors.frameworks_summary(results=results)
    ]
    severity = selectors.open_findings_by_severity(results=results)
    checks = [{"check": check, "result": results.get(check.code)} for check in selectors.check_list()]
    return render(
        request,
        "governance/checks/posture.html",
        {
            "scope": scope,
            "as_of": selectors.results_as_of(results),
            "frameworks": frameworks,
            "checks": checks,
            "severity": severity,
            "severity_chart": charts.bar_chart(severity, label="Open findings by severity"),
            "trend_chart": charts.line_chart(
                trend.get("overall", []), label="Overall pass rate, per day (%)"
            ),
            "trend": trend.get("overall", [])[-14:],
            "expiries": selectors.upcoming_certificate_expiries(user=request.user),
            "rotations": selectors.rotations_due(user=request.user),
            "now": timezone.now(),
            "sweeps": SweepRun.objects.order_by("-started_at")[:5]
            if roles.reads_everything(request.user)
            else [],
            "teams": Team.objects.order_by("name")
            if roles.reads_everything(request.user)
            else Team.objects.filter(group__user=request.user).order_by("name"),
        },
    )


@login_required
def framework_list(request):
    return render(
        request,
        "governance/checks/framework_list.html",
        {
            "frameworks": selectors.framework_list(),
            "catalogue": CatalogueVersion.objects.order_by("-loaded_at", "-pk").first(),
        },
    )


@login_required
def framework_detail(request, key: str):
    framework = get_object_or_404(Framework, key=key)
    scope = _scope(request)
    results = selectors.check_results(scope=scope)
    controls, total = selectors.framework_posture(
        framework=framework,
        results=results,
        open_counts=selectors.open_findings_by_check(results=results),
    )
    return render(
        request,
        "governance/checks/framework_detail.html",
        {
            "framework": framework,
            "controls": controls,
            "total": total,
            "scope": scope,
            "as_of": selectors.results_as_of(results),
            "show_unmapped": request.GET.get("all") == "1",
        },
    )


@login_required
def check_list(request):
    return render(
        request,
        "governance/checks/check_list.html",
        {
            "checks": selectors.check_list(),
            "thresholds": thresholds(),
        },
    )


@login_required
def object_posture(request, kind: str, pk: int):
    model = OBJECT_KINDS.get(kind)
    deny_unless(model is not None)
    obj = get_restricted_or_404(model, request.user, pk)
    rows = selectors.object_posture(obj=obj)
    passed = sum(1 for row in rows if row["state"] == "passed")
    evaluated = sum(1 for row in rows if row["state"] in ("passed", "failed"))
    severity: dict[str, int] = {}
    for row in rows:
        if row["finding"] is not None and row["finding"].state in ("open", "acknowledged"):
            severity[row["check"].severity] = severity.get(row["check"].severity, 0) + 1
    return render(
        request,
        "governance/checks/object_posture.html",
        {
            "object": obj,
            "kind": kind,
            "rows": rows,
            "passed": passed,
            "evaluated": evaluated,
            "severity": severity,
            "pass_rate": round(100.0 * passed / evaluated, 1) if evaluated else None,
            "findings": selectors.finding_list(user=request.user)
            .filter(object_type=obj._meta.label_lower, object_id=obj.pk)
            .order_by("state", "-last_seen_at")[:50],
        },
    )


urlpatterns = [
    path("posture/", posture_dashboard, name="posture-dashboard"),
    path("posture/<str:kind>/<int:pk>/", object_posture, name="posture-object"),
    path("frameworks/", framework_list, name="framework-list"),
    path("frameworks/<slug:key>/", framework_detail, name="framework-detail"),
    path("checks/", check_list, name="check-list"),
]
