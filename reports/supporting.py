"""Supporting evidence for a period: approvals decided, attestation campaigns and their completion,
rotations and renewals with outcomes, kill-switch drills and activations.

A capability that recorded nothing in the period and scope gives an empty section ("none in this
period"). The page shows
the first PAGE_ROWS rows of a section; the attachments hold all of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import CharField, Count, Prefetch, Q
from django.db.models.functions import Cast

from governance.models.approvals import ApprovalDecision, ApprovalRequest
from governance.models.attestation import AttestationCampaign as Campaign
from governance.models.attestation import AttestationItem as Item
from governance.models.lifecycle import KillSwitchActivation as Activation
from governance.models.lifecycle import RotationAttempt as Attempt
from reports.parameters import Period
from reports.scopes import ESTATE, Scope

PAGE_ROWS = 40


@dataclass
class Section:
    key: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]] = field(default_factory=list)  # the first PAGE_ROWS, for the page
    total: int = 0
    note: str = ""
    all_rows: Any = None  # a callable yielding every row, for the attachments

    def iter_all(self) -> Iterator[dict[str, Any]]:
        return iter(self.all_rows()) if self.all_rows else iter(())

    @property
    def more(self) -> int:
        return max(self.total - len(self.rows), 0)

    @property
    def table(self) -> list[dict[str, list[str]]]:
        """The page's rows as cells in column order, dates as YYYY-MM-DD HH:MM (UTC)."""
        return [{"cells": [_cell(row.get(key)) for key, _ in self.columns]} for row in self.rows]


def _cell(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    if value is None:
        return "—"
    return str(value)


def _content_type_in_scope(scope: Scope, type_field: str, id_field: str) -> Q:
    """Generic (content type, text id) columns pointing at an in-scope inventory object."""
    if scope.kind == ESTATE:
        return Q()
    condition = Q(pk__in=[])
    for label, qs in scope.querysets().items():
        app_label, model_name = label.split(".")
        ids = qs.annotate(_sid=Cast("pk", CharField())).values("_sid")
        condition |= Q(**{f"{type_field}__app_label": app_label, f"{type_field}__model": model_name,
                          f"{id_field}__in": ids})
    return condition


def _section(key, title, columns, queryset, to_row, note="") -> Section:
    total = queryset.count()
    section = Section(key, title, columns, total=total, note=note)
    section.rows = [to_row(obj) for obj in queryset[:PAGE_ROWS]]
    section.all_rows = lambda: (to_row(obj) for obj in queryset.iterator(chunk_size=2000))
    return section


# --- approvals --------------------------------------------------------------------------------


def _decisions_text(request) -> str:
    return "; ".join(f"{d.approver.get_username()} {d.decision}s ({d.decided_at:%Y-%m-%d})"
                     for d in request.decisions.all())


def approvals_section(scope: Scope, period: Period) -> Section:
    columns = [("request", "Request"), ("action", "Action"), ("target", "Target"), ("status", "Outcome"),
               ("requested_by", "Requested by"), ("decided_at", "Decided"), ("decisions", "Decisions")]
    decisions = ApprovalDecision.objects.select_related("approver").order_by("decided_at", "pk")
    qs = (
        ApprovalRequest.objects.filter(decided_at__isnull=False, **period.contains("decided_at"))
        .filter(_content_type_in_scope(scope, "target_content_type", "target_object_id"))
        .select_related("requested_by", "target_content_type")
        .prefetch_related(Prefetch("decisions", queryset=decisions))
        .order_by("decided_at", "pk")
    )

    def row(r):
        target = (f"{r.target_content_type.model} #{r.target_object_id}" if r.target_content_type_id
                  else "new object")
        return {"request": f"#{r.pk}", "request_id": r.pk, "action": r.get_action_display(), "target": target,
                "status": r.status, "requested_by": r.requested_by.get_username(), "decided_at": r.decided_at,
                "decisions": _decisions_text(r), "ticket": r.ticket_key or r.ticket_url}

    return _section("approvals", "Approvals decided", columns, qs, row)


def approval_requests_summary(request_ids: list[int]) -> dict[int, dict[str, Any]]:
    """For accepted risks: the approving request, its approvers and when it was decided."""
    ids = sorted({i for i in request_ids if i})
    if not ids:
        return {}
    approvals = ApprovalDecision.objects.filter(decision="approve").select_related("approver").order_by("decided_at")
    found = {}
    for start in range(0, len(ids), 2000):
        for r in (ApprovalRequest.objects.filter(pk__in=ids[start:start + 2000])
                  .prefetch_related(Prefetch("decisions", queryset=approvals))):
            found[r.pk] = {"request": f"#{r.pk}", "status": r.status, "decided_at": r.decided_at,
                           "approvers": ", ".join(d.approver.get_username() for d in r.decisions.all()),
                           "justification": r.justification[:300]}
    return found


# --- attestation ------------------------------------------------------------------------------


def attestation_section(scope: Scope, period: Period) -> Section:
    columns = [("campaign", "Campaign"), ("scope", "Scope"), ("period", "Period"), ("status", "Status"),
               ("items", "Items"), ("answered", "Answered"), ("completion", "Completion"),
               ("confirmed", "Confirmed"), ("changes", "Changes asked")]
    items = Item.objects.all()
    if scope.kind != ESTATE:
        items = items.filter(scope.object_condition(text_ids=False))
    in_scope = Q(items__in=items.values("pk"))
    qs = (
        Campaign.objects.filter(period_start__lte=period.end, period_end__gte=period.start)
        .annotate(
            n_items=Count("items", filter=in_scope, distinct=True),
            n_answered=Count("items", filter=in_scope & Q(items__state="answered"), distinct=True),
            n_confirmed=Count("items", filter=in_scope & Q(items__answer="confirm"), distinct=True),
        )
        .order_by("period_start", "pk")
    )
    if scope.kind != ESTATE:
        qs = qs.filter(n_items__gt=0)

    def row(c):
        completion = f"{100 * c.n_answered / c.n_items:.1f}%" if c.n_items else "—"
        return {"campaign": c.name, "campaign_id": c.pk, "scope": c.scope_label,
                "period": f"{c.period_start} to {c.period_end}", "status": c.status, "items": c.n_items,
                "answered": c.n_answered, "completion": completion, "confirmed": c.n_confirmed,
                "changes": c.n_answered - c.n_confirmed, "due_at": c.due_at}

    return _section("attestation", "Attestation campaigns", columns, qs, row)


# --- lifecycle: rotations, renewals, drills, kill switches ---------------------------------------


def rotations_section(scope: Scope, period: Period) -> Section:
    """Every rotation and renewal attempt that started in the period, success or failure."""
    columns = [("started_at", "Started (UTC)"), ("credential", "Credential"), ("trigger", "Trigger"),
               ("attempt", "Attempt"), ("outcome", "Outcome"), ("new_version", "New version"), ("error", "Error")]
    qs = Attempt.objects.filter(**period.contains("started_at")).select_related("job__credential")
    if scope.kind != ESTATE:
        qs = qs.filter(job__credential__in=scope.credentials().values("pk"))
    qs = qs.order_by("started_at", "pk")

    def row(a):
        return {"started_at": a.started_at, "finished_at": a.finished_at, "credential": a.job.credential.name,
                "credential_id": a.job.credential_id, "rotation_job_id": a.job_id,
                "trigger": a.job.get_trigger_display(), "attempt": a.number, "outcome": a.outcome,
                "new_version": a.new_version, "error": (a.error_code + " " + a.error).strip()[:200]}

    return _section("rotations", "Rotations and renewals", columns, qs, row,
                    note="Every attempt is listed, with its outcome; renewals are rotations of certificates.")


def drills_section(scope: Scope, period: Period) -> Section:
    """Kill-switch activations, drills (verification mode) and reactivations started in the period."""
    columns = [("started_at", "Started (UTC)"), ("workflow", "Workflow"), ("mode", "Mode"), ("status", "Result"),
               ("steps", "Steps done / failed"), ("by", "By"), ("reason", "Reason")]
    qs = (
        Activation.objects.filter(**period.contains("started_at"))
        .select_related("workflow")
        .annotate(n_done=Count("steps", filter=Q(steps__status="succeeded")),
                  n_failed=Count("steps", filter=Q(steps__status="failed")))
    )
    if scope.kind != ESTATE:
        qs = qs.filter(workflow__in=scope.workflows().values("pk"))
    qs = qs.order_by("started_at", "pk")

    def row(k):
        return {"started_at": k.started_at, "finished_at": k.finished_at, "workflow": k.workflow.name,
                "workflow_id": k.workflow_id, "mode": k.get_mode_display(), "status": k.status,
                "steps": f"{k.n_done} / {k.n_failed}", "by": k.actor_label, "reason": k.reason[:200],
                "approval_request_id": k.approval_request_id}

    return _section("drills", "Kill-switch drills and activations", columns, qs, row)


def supporting_sections(scope: Scope, period: Period) -> list[Section]:
    return [
        approvals_section(scope, period),
        attestation_section(scope, period),
        rotations_section(scope, period),
        drills_section(scope, period),
    ]
