"""The framework evidence pack: per control of one framework, what was checked, how many objects
passed and failed, the exceptions with their approvals, and the supporting evidence of the period.

The page count depends on the framework (one page or more per control that checks evidence),
not on the estate: a control page lists the first FAILING_ON_PAGE failing objects and
ACCEPTED_ON_PAGE accepted risks; the attachments hold all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.models.checks import Check
from reports import catalogue, charts
from reports.builders import Built, Progress, cover_context, metadata_for, title_for
from reports.evaluation import CheckEvidence, chain_verified_start, evaluate
from reports.models import ReportKind
from reports.pack_files import CheckResultCollector, write_pack_files
from reports.parameters import Period, scope_of
from reports.rendering import render_html
from reports.supporting import approval_requests_summary, supporting_sections

FAILING_ON_PAGE = 36
ACCEPTED_ON_PAGE = 24
SEVERITIES = ("critical", "high", "medium", "low")
SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES)}


def _rate(passed: int, checked: int) -> float | None:
    return None if not checked else passed / checked


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _catalogue_checks(controls) -> list:

    codes = sorted({m.code for c in controls for m in c.checks})
    return list(Check.objects.filter(code__in=codes).order_by("sort_order", "code"))


def _accepted_risk(failure, requests: dict[int, dict]) -> dict[str, Any]:
    request = requests.get(failure.finding.request_id, {}) if failure.finding else {}
    return {
        "check": failure.check, "object_type": failure.object_type, "object_id": failure.object_id,
        "object": failure.name, "owner": failure.owner, "team": failure.team,
        "finding_id": failure.finding.finding_id if failure.finding else None,
        "request": request.get("request") or (f"#{failure.finding.request_id}" if failure.finding else ""),
        "request_id": failure.finding.request_id if failure.finding else None,
        "approvers": request.get("approvers", ""), "decided_at": request.get("decided_at"),
        "expires_at": failure.finding.risk_accepted_until if failure.finding else None,
    }


def _control_evidence(control, evidence: dict[str, CheckEvidence], requests: dict[int, dict]) -> dict[str, Any]:
    rows, failures, accepted_failures = [], [], []
    for mapped in control.checks:
        ev = evidence[mapped.code]
        rows.append({"code": ev.code, "name": ev.name, "severity": ev.severity, "strength": mapped.strength,
                     "status": ev.status, "detail": ev.detail, "checked": ev.checked, "passed": ev.passed,
                     "failed": ev.failed, "accepted": ev.accepted, "pass_rate": _percent(ev.pass_rate),
                     "by_type": ev.by_type})
        failures.extend(ev.first_failures)
        accepted_failures.extend(ev.accepted_failures)
    checked = sum(r["checked"] for r in rows)
    failed = sum(r["failed"] for r in rows)
    # Each check kept its first FAILING_ON_PAGE by (name, id): the control's first ones are among them.
    failures.sort(key=lambda f: (SEVERITY_RANK.get(f.severity, 9), f.check, f.name, f.object_id))
    rate = _rate(checked - failed, checked)
    return {
        "identifier": control.identifier, "title": control.title, "category": control.category,
        "aliases": control.aliases, "anchor": control.anchor, "checks": rows,
        "checked": checked, "passed": checked - failed, "failed": failed, "accepted": len(accepted_failures),
        "rate": rate, "pass_rate": _percent(rate),
        "failing": failures[:FAILING_ON_PAGE], "failing_more": max(failed - FAILING_ON_PAGE, 0),
        "accepted_risks": [_accepted_risk(f, requests) for f in accepted_failures[:ACCEPTED_ON_PAGE]],
        "accepted_more": max(len(accepted_failures) - ACCEPTED_ON_PAGE, 0),
    }


def _severity_summary(evidence: dict[str, CheckEvidence]) -> list[dict[str, Any]]:
    counts = {s: {"severity": s, "open": 0, "accepted": 0} for s in SEVERITIES}
    for ev in evidence.values():
        bucket = counts.setdefault(ev.severity, {"severity": ev.severity, "open": 0, "accepted": 0})
        bucket["accepted"] += ev.accepted
        bucket["open"] += ev.failed - ev.accepted
    return list(counts.values())


def build_framework_pack(parameters: dict[str, Any], *, requester: str, workdir: Path,
                         progress: Progress) -> Built:
    scope = scope_of(parameters)
    period = Period(parameters)
    context = cover_context(ReportKind.FRAMEWORK_PACK, parameters, requester)
    framework, controls = catalogue.framework_controls(parameters["framework"])
    version = catalogue.catalogue_version()
    checks = _catalogue_checks(controls)
    progress(5)

    results = CheckResultCollector(workdir / "check-results.csv")
    evidence = evaluate(checks, scope, period.as_of, results, keep_failures=FAILING_ON_PAGE,
                        starts=chain_verified_start(context["chain"], period.as_of),
                        progress=lambda done: progress(5 + int(50 * done / max(len(checks), 1))))
    accepted_all = [f for ev in evidence.values() for f in ev.accepted_failures]
    requests = approval_requests_summary([f.finding.request_id for f in accepted_all])
    evidenced = [_control_evidence(c, evidence, requests) for c in controls if c.checks]
    unmapped = [c for c in controls if not c.checks]
    sections = supporting_sections(scope, period)
    progress(60)

    unique_checked = sum(ev.checked for ev in evidence.values())
    unique_failed = sum(ev.failed for ev in evidence.values())
    severity = _severity_summary(evidence)
    summary = {
        "controls": len(controls), "controls_with_evidence": len(evidenced), "checks": len(checks),
        "check_results": unique_checked, "passed": unique_checked - unique_failed, "failed": unique_failed,
        "risk_accepted": len(accepted_all), "pass_rate": _percent(_rate(unique_checked - unique_failed,
                                                                        unique_checked)),
        "open_findings_by_severity": severity,
    }
    framework_facts = {"key": framework.key, "name": framework.name, "version": framework.version,
                       "source": framework.source, "catalogue": version}
    report_facts = {"kind": ReportKind.FRAMEWORK_PACK, "parameters": parameters, "requester": requester,
                    "steward_version": context["steward_version"], "audit_chain": context["chain"].as_dict(),
                    "method": "checks evaluated by the check registry in scope at as_of; findings give states"}
    control_rows = [{"framework": framework.key, "control": c["identifier"], "title": c["title"],
                     "aliases": c["aliases"], "checks": [r["code"] for r in c["checks"]], "checked": c["checked"],
                     "passed": c["passed"], "failed": c["failed"], "risk_accepted": c["accepted"],
                     "pass_rate": c["pass_rate"]} for c in evidenced]
    check_rows = [{"code": ev.code, "name": ev.name, "severity": ev.severity, "status": ev.status,
                   "detail": ev.detail, "checked": ev.checked, "passed": ev.passed, "failed": ev.failed,
                   "risk_accepted": ev.accepted, "by_type": ev.by_type} for ev in evidence.values()]
    attachments, row_counts = write_pack_files(
        workdir=workdir, report=report_facts, framework=framework_facts, summary=summary, controls=control_rows,
        checks=check_rows, results=results, accepted_risks=[_accepted_risk(f, requests) for f in accepted_all],
        sections=sections, scope=scope, period=period, head_sequence=context["chain"].sequence,
    )
    progress(75)

    title = title_for(ReportKind.FRAMEWORK_PACK, parameters)
    context.update({
        "title": title, "running_title": f"{framework.name} · {period.start} to {period.end}",
        "framework": framework, "catalogue_version": version, "summary": summary,
        "controls": evidenced, "unmapped": unmapped, "checks": check_rows, "sections": sections,
        "severity": severity, "failing_on_page": FAILING_ON_PAGE,
        "rate_chart": charts.pass_rate_bars([(c["identifier"], c["rate"]) for c in evidenced]),
        "severity_chart": charts.severity_bars([(s["severity"], s["open"], s["accepted"]) for s in severity]),
        "attachments": [{"name": a.name, "description": a.description, "rows": row_counts.get(a.name)}
                        for a in attachments],
    })
    metadata = metadata_for(
        ReportKind.FRAMEWORK_PACK, parameters, requester, title=title,
        subject=f"{framework.name} evidence for {scope.label}, {period.start} to {period.end}",
        keywords=("Steward", "evidence", framework.key, scope.key),
    )
    html = render_html("reports/framework_pack.html", context, metadata)
    return Built(html=html, metadata=metadata, attachments=attachments,
                 file_stem=f"{framework.key}-{scope.slug}-{period.start}-{period.end}")

