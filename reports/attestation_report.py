"""The attestation campaign report: one campaign's progress and every item's answer, as of the report's time.

As of: an item records when each thing happened to it (answered, reminded, escalated, consequence
applied) and the campaign when it closed, so whatever happened after as_of is left out: an answer
given later shows as pending, a later close as open. The items themselves, their assignees and
teams are as recorded now (items are written when the campaign opens; an assignee changes only
when a departed person's open items are handed on).

The pages list the items that need attention first and are capped (PAGE_ROWS); the attached JSON
and CSV hold every item, so the page count does not grow with the campaign.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

from django.utils.text import slugify

from governance.models.attestation import AttestationCampaign, AttestationItem, Consequence, ItemAnswer
from reports import charts
from reports.builders import Built, Progress, cover_context, metadata_for, title_for
from reports.evidence_files import CsvEvidenceWriter, JsonEvidenceWriter
from reports.models import ReportKind
from reports.parameters import Period, scope_of
from reports.rendering import AttachmentFile, render_html

PAGE_ROWS = 400
TABLE_ROWS = 40  # WeasyPrint lays out long tables in more than linear time: several short ones are faster
NOTE_CHARS = 160  # a long comment is cut on the page; the attachments hold it whole
OVERDUE, PENDING, ANSWERED = "overdue", "pending", "answered"
ANSWER_LABELS = {
    ItemAnswer.CONFIRM: "Confirmed",
    ItemAnswer.TRANSFER: "Transfer ownership",
    ItemAnswer.CHANGE_SCOPES: "Change scopes",
    ItemAnswer.FLAG_STORAGE: "Storage flagged",
    ItemAnswer.REVOKE: "Retire or revoke",
}
ANSWERS = [answer for answer in ItemAnswer.values if answer]
CONSEQUENCES = [kind for kind in Consequence.values if kind]
CSV_COLUMNS = [
    "item_id", "object_type", "object_id", "object", "team", "original_owner", "assignee", "state", "answer",
    "comment", "answered_at", "answered_by", "resulting_request_id", "ticket", "reminded_at", "escalated_at",
    "escalated_to", "consequence", "consequence_applied_at", "consequence_ref",
]


def _by(as_of: dt.datetime, stamp: dt.datetime | None) -> dt.datetime | None:
    """The stamp if it happened at or before as_of, else None (it had not happened yet)."""
    return stamp if stamp is not None and stamp <= as_of else None


def _username(person) -> str | None:
    return person.get_username() if person is not None else None


def _item_row(item: AttestationItem, campaign: AttestationCampaign, as_of: dt.datetime) -> dict[str, Any]:
    answered = _by(as_of, item.answered_at) is not None
    escalated_at = _by(as_of, item.escalated_at)
    consequence_at = _by(as_of, item.consequence_applied_at)
    ticket = f"{item.ticket_system} {item.ticket_key}".strip()
    return {
        "item_id": item.pk, "object_type": item.object_type, "object_id": item.object_id, "object": item.object_repr,
        "team": item.team.name if item.team_id else None,
        "original_owner": _username(item.original_owner), "assignee": _username(item.assignee),
        "state": ANSWERED if answered else OVERDUE if campaign.due_at <= as_of else PENDING,
        "answer": item.answer if answered else None,
        "comment": (item.comment or None) if answered else None,
        "answered_at": item.answered_at if answered else None,
        "answered_by": _username(item.answered_by) if answered else None,
        "resulting_request_id": item.resulting_request_id if answered else None,
        "ticket": (ticket or None) if answered else None,
        "reminded_at": _by(as_of, item.reminded_at),
        "escalated_at": escalated_at,
        "escalated_to": _username(item.escalated_to) if escalated_at else None,
        "consequence": item.consequence if consequence_at else None,
        "consequence_applied_at": consequence_at,
        "consequence_ref": (item.consequence_ref or None) if consequence_at else None,
    }


def _attention(row: dict[str, Any]) -> int:
    """Overdue, then pending, then answers that change something, then confirmations."""
    if row["state"] != ANSWERED:
        return 0 if row["state"] == OVERDUE else 1
    return 3 if row["answer"] == ItemAnswer.CONFIRM else 2


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if value else ""


def _notes(row: dict[str, Any]) -> list[str]:
    notes = []
    if row["comment"]:
        comment = row["comment"]
        notes.append(comment if len(comment) <= NOTE_CHARS else comment[:NOTE_CHARS - 1] + "…")
    if row["resulting_request_id"]:
        notes.append(f"filed approval request #{row['resulting_request_id']}")
    if row["ticket"]:
        notes.append(f"ticket {row['ticket']}")
    if row["escalated_at"]:
        notes.append(f"escalated to {row['escalated_to'] or 'the security admins'} {_when(row['escalated_at'])}")
    if row["consequence"]:
        notes.append(f"{Consequence(row['consequence']).label.lower()} {_when(row['consequence_applied_at'])}")
    return notes


def _campaign_facts(campaign: AttestationCampaign, as_of: dt.datetime) -> dict[str, Any]:
    closed_at = _by(as_of, campaign.closed_at)
    if closed_at:
        phase = "closed"
    elif as_of < campaign.due_at:
        phase = "open, not yet due"
    elif as_of < campaign.grace_until:
        phase = "open, past its due date (grace period)"
    else:
        phase = "open, past its grace deadline"
    return {
        "id": campaign.pk, "key": campaign.key, "name": campaign.name, "scope": campaign.scope_label,
        "scope_type": campaign.scope_type, "status": "closed" if closed_at else "open", "phase": phase,
        "period_start": campaign.period_start, "period_end": campaign.period_end,
        "opened_at": campaign.created_at, "opened_by": _username(campaign.opened_by),
        "scheduled": campaign.scheduled, "due_at": campaign.due_at, "grace_until": campaign.grace_until,
        "closed_at": closed_at, "consequence_configured": campaign.consequence,
    }


def _item_rows(campaign: AttestationCampaign):
    return (
        AttestationItem.objects.filter(campaign=campaign)
        .select_related("team", "assignee", "original_owner", "answered_by", "escalated_to")
        .order_by("object_type", "object_repr", "pk")
        .iterator(chunk_size=2000)
    )


def build_attestation_report(parameters: dict[str, Any], *, requester: str, workdir: Path,
                             progress: Progress) -> Built:
    scope = scope_of(parameters)
    as_of = Period(parameters).as_of
    campaign = AttestationCampaign.objects.select_related("scope_team", "scope_system", "opened_by").get(
        pk=parameters["campaign"])
    context = cover_context(ReportKind.ATTESTATION_CAMPAIGN, parameters, requester)
    facts = _campaign_facts(campaign, as_of)
    progress(10)
    json_path, csv_path = workdir / "attestation.json", workdir / "attestation.csv"
    json_out = JsonEvidenceWriter(json_path)
    json_out.value("report", {
        "kind": ReportKind.ATTESTATION_CAMPAIGN, "parameters": parameters, "requester": requester,
        "steward_version": context["steward_version"], "audit_chain": context["chain"].as_dict(),
        "method": "each item as it stood at as_of: answers, reminders, escalations, consequences and the close "
                  "after as_of are left out; items, assignees and teams as recorded now",
    })
    json_out.value("campaign", facts)
    csv_out = CsvEvidenceWriter(csv_path, CSV_COLUMNS)
    states, answers, consequences = Counter(), Counter(), Counter()
    flags = Counter()
    attention: list[dict[str, Any]] = []
    total = 0

    def rows():
        nonlocal total
        for item in _item_rows(campaign):
            row = _item_row(item, campaign, as_of)
            csv_out.row(row)
            total += 1
            states[row["state"]] += 1
            answers[row["answer"]] += 1
            consequences[row["consequence"]] += 1
            flags["reminded"] += row["reminded_at"] is not None
            flags["escalated"] += row["escalated_at"] is not None
            flags["requests_filed"] += row["resulting_request_id"] is not None
            flags["pending_unassigned"] += row["state"] != ANSWERED and row["assignee"] is None
            attention.append({"rank": _attention(row), "key": (item.object_type, item.object_repr, item.pk),
                              "row": row, "type_label": item.get_object_type_display(), "notes": _notes(row),
                              "answer_label": ANSWER_LABELS.get(row["answer"], ""),
                              "answered_at": _when(row["answered_at"])})
            if len(attention) > PAGE_ROWS * 2:
                attention.sort(key=lambda r: (r["rank"], r["key"]))
                del attention[PAGE_ROWS:]
            yield row

    json_out.rows("items", rows())
    answered = states[ANSWERED]
    pending = states[PENDING] + states[OVERDUE]
    summary = {
        "items": total, "answered": answered, "pending": pending, "overdue": states[OVERDUE],
        "completion_percent": round(100 * answered / total, 1) if total else None,
        "answers": {answer: answers[answer] for answer in ANSWERS},
        "reminded": flags["reminded"], "escalated": flags["escalated"],
        "consequences": {kind: consequences[kind] for kind in CONSEQUENCES},
        "requests_filed": flags["requests_filed"], "pending_unassigned": flags["pending_unassigned"],
    }
    json_out.value("summary", summary)
    json_out.close()
    csv_out.close()
    progress(60)
    attention.sort(key=lambda r: (r["rank"], r["key"]))
    shown = attention[:PAGE_ROWS]
    changed = answered - answers[ItemAnswer.CONFIRM]
    title = title_for(ReportKind.ATTESTATION_CAMPAIGN, parameters)
    context.update({
        "title": title,
        "running_title": f"Attestation campaign {campaign.name} · as of {parameters['as_of'][:10]}",
        "campaign": facts,
        "summary": summary,
        "completion": "—" if summary["completion_percent"] is None else f"{summary['completion_percent']:.1f}%",
        "changed": changed,
        "answer_counts": [{"label": ANSWER_LABELS[a], "count": answers[a]} for a in ANSWERS],
        "consequence_counts": [{"label": Consequence(k).label, "count": consequences[k]} for k in CONSEQUENCES],
        "completion_chart": charts.completion_bar([
            ("Confirmed", answers[ItemAnswer.CONFIRM], charts.OK),
            ("Answered with a change", changed, charts.WARN),
            ("Pending, not yet due", states[PENDING], charts.GREY),
            ("Overdue", states[OVERDUE], charts.BAD),
        ]),
        "item_tables": [shown[i:i + TABLE_ROWS] for i in range(0, len(shown), TABLE_ROWS)],
        "truncated": total - len(shown),
        "page_rows": PAGE_ROWS,
    })
    metadata = metadata_for(ReportKind.ATTESTATION_CAMPAIGN, parameters, requester, title=title,
                            subject=f"Attestation campaign {campaign.name} ({campaign.scope_label})",
                            keywords=("Steward", "attestation", f"campaign:{campaign.pk}", scope.key))
    html = render_html("reports/attestation.html", context, metadata)
    return Built(
        html=html, metadata=metadata,
        attachments=[
            AttachmentFile("attestation.json", json_path, "The campaign and every item with its answer at as_of"),
            AttachmentFile("attestation.csv", csv_path, "Every item of the campaign at as_of, one row each"),
        ],
        file_stem=f"attestation-{campaign.pk}-{slugify(campaign.name)[:60]}-{parameters['as_of'][:10]}",
    )
