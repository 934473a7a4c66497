"""The workflow inventory report: every workflow in scope with its four governance items (owner,
credential source, approval path, shutdown procedure), as governance.selectors judges them.

The pages list the workflows that need attention first and are capped (PAGE_ROWS); the attached
JSON and CSV hold every workflow, so the page count does not grow with the estate.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.db.models import Prefetch

from governance.models import Binding, Workflow
from governance.selectors import MISSING, PRESENT, STALE, workflow_governance_record
from reports.builders import Built, Progress, cover_context, metadata_for, title_for
from reports.evidence_files import CsvEvidenceWriter, JsonEvidenceWriter
from reports.models import ReportKind
from reports.parameters import scope_of
from reports.rendering import AttachmentFile, render_html

PAGE_ROWS = 400
TABLE_ROWS = 40  # WeasyPrint lays out long tables in more than linear time: several short ones are faster
ITEMS = ("Owner", "Credential source", "Approval path", "Shutdown procedure")
CSV_COLUMNS = [
    "workflow_id", "name", "kind", "platform", "status", "criticality", "privileged", "owner", "team",
    "credentials", *[f"{item.lower().replace(' ', '_')}_state" for item in ITEMS],
    *[f"{item.lower().replace(' ', '_')}_detail" for item in ITEMS],
]
STATE_ORDER = {MISSING: 0, STALE: 1, PRESENT: 2}


def _workflow_rows(scope):
    bindings = Binding.objects.select_related("credential__store").order_by("credential__name", "pk")
    related = ["owner", "team"]
    if any(f.name == "approval_policy" for f in Workflow._meta.get_fields()):
        related.append("approval_policy")  # read by workflow_governance_record for every workflow
    workflows = (
        scope.workflows()
        .select_related(*related)
        .prefetch_related(Prefetch("bindings", queryset=bindings))
        .order_by("name", "pk")
    )
    for workflow in workflows.iterator(chunk_size=2000):
        links = list(workflow.bindings.all())
        items = workflow_governance_record(workflow=workflow, bindings=links)
        yield workflow, links, items


def _row(workflow, links, items) -> dict[str, Any]:
    states = {item["name"]: item for item in items}
    row = {
        "workflow_id": workflow.pk, "name": workflow.name, "kind": workflow.kind, "platform": workflow.platform,
        "status": workflow.status, "criticality": workflow.criticality, "privileged": workflow.is_privileged,
        "owner": workflow.owner.get_username() if workflow.owner_id else None,
        "team": workflow.team.name if workflow.team_id else None, "credentials": len(links),
    }
    for name in ITEMS:
        key = name.lower().replace(" ", "_")
        row[f"{key}_state"] = states.get(name, {}).get("state")
        row[f"{key}_detail"] = states.get(name, {}).get("detail")
    return row


def build_inventory_report(parameters: dict[str, Any], *, requester: str, workdir: Path,
                           progress: Progress) -> Built:
    scope = scope_of(parameters)
    context = cover_context(ReportKind.INVENTORY, parameters, requester)
    progress(10)
    json_path, csv_path = workdir / "inventory.json", workdir / "inventory.csv"
    json_out = JsonEvidenceWriter(json_path)
    json_out.value("report", {"kind": ReportKind.INVENTORY, "parameters": parameters, "requester": requester,
                              "steward_version": context["steward_version"], "audit_chain": context["chain"].as_dict()})
    csv_out = CsvEvidenceWriter(csv_path, CSV_COLUMNS)
    counts = {name: Counter() for name in ITEMS}
    complete = 0
    attention: list[dict[str, Any]] = []
    total = 0

    def rows():
        nonlocal complete, total
        for workflow, links, items in _workflow_rows(scope):
            row = _row(workflow, links, items)
            csv_out.row(row)
            total += 1
            for item in items:
                counts[item["name"]][item["state"]] += 1
            worst = min((STATE_ORDER.get(item["state"], 2) for item in items), default=2)
            if worst == 2:
                complete += 1
            attention.append({"worst": worst, "name": workflow.name, "row": row, "items": items})
            if len(attention) > PAGE_ROWS * 2:
                attention.sort(key=lambda r: (r["worst"], r["name"]))
                del attention[PAGE_ROWS:]
            yield {**row, "items": items}

    json_out.rows("workflows", rows())
    json_out.value("summary", {"workflows": total, "complete": complete,
                               "items": {name: dict(sorted(c.items())) for name, c in counts.items()}})
    json_out.close()
    csv_out.close()
    progress(60)
    attention.sort(key=lambda r: (r["worst"], r["name"]))
    shown = attention[:PAGE_ROWS]
    context.update({
        "title": title_for(ReportKind.INVENTORY, parameters),
        "running_title": f"Workflow inventory · as of {parameters['as_of'][:10]}",
        "total": total,
        "complete": complete,
        "needs_attention": total - complete,
        "item_counts": [
            {"name": name, "present": counts[name][PRESENT], "stale": counts[name][STALE],
             "missing": counts[name][MISSING]} for name in ITEMS
        ],
        "workflow_tables": [shown[i:i + TABLE_ROWS] for i in range(0, len(shown), TABLE_ROWS)],
        "truncated": total - len(shown),
        "page_rows": PAGE_ROWS,
        "attachments": [
            {"name": "inventory.json", "rows": total}, {"name": "inventory.csv", "rows": total},
        ],
    })
    metadata = metadata_for(ReportKind.INVENTORY, parameters, requester, title=context["title"],
                            subject=f"Workflow governance inventory for {scope.label}",
                            keywords=("Steward", "inventory", scope.key))
    html = render_html("reports/inventory.html", context, metadata)
    return Built(
        html=html, metadata=metadata,
        attachments=[
            AttachmentFile("inventory.json", json_path, "Every workflow in scope with its governance record"),
            AttachmentFile("inventory.csv", csv_path, "Every workflow in scope, one row each"),
        ],
        file_stem=f"inventory-{scope.slug}-{parameters['as_of'][:10]}",
    )
