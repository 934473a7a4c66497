"""Reads of owner attestation: the owner's inbox, campaign progress and the evidence rows.

Everything goes through restrict(): items are visible to their assignee, the object's owner,
team and team manager, auditors and security admins; campaigns to auditors and security admins.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, F, Prefetch, Q
from django.utils import timezone

from governance.choices import PrivilegeLevel
from governance.models import Binding, Credential, Workflow
from governance.models.attestation import (
    AttestationCampaign,
    AttestationItem,
    AttestedObjectType,
    CampaignStatus,
    ItemAnswer,
    ItemState,
)
from governance.models.checks import Finding
from governance.permissions import VIEW, restrict

INBOX_LIMIT = 100
ANSWERED = Q(items__state=ItemState.ANSWERED)


def my_open_items(*, user):
    return (restrict(AttestationItem.objects.all(), user, VIEW)
            .filter(assignee=user, state=ItemState.OPEN, campaign__status=CampaignStatus.OPEN)
            .select_related("campaign", "team")
            .order_by("campaign__due_at", "object_type", "object_repr", "pk"))


def _open_finding_counts(object_type: str, ids: list[int]) -> Counter:
    """Open findings per object."""
    if not ids:
        return Counter()
    rows = Finding.objects.filter(object_type=object_type, object_id__in=ids).exclude(state="resolved")
    return Counter(int(pk) for pk in rows.values_list("object_id", flat=True))


# Risk signals: what makes "confirm, unchanged" a statement that needs its reason.
UNUSED_AFTER_DAYS = 90


@dataclass(frozen=True)
class RiskSignals:
    """An attested object's risk signals, shown as the inbox's columns and gating a bare confirm."""

    open_findings: int = 0
    unmanaged_storage: bool = False  # a secret outside a managed store (or in none)
    privilege: str = ""  # "admin" for a credential, "privileged automation" for a workflow, else ""
    last_used_at: dt.datetime | None = None
    unused: bool = False  # last used longer ago than UNUSED_AFTER_DAYS

    @property
    def labels(self) -> list[str]:
        labels = []
        if self.open_findings:
            labels.append(f"{self.open_findings} open finding{'s' if self.open_findings != 1 else ''}")
        if self.unmanaged_storage:
            labels.append("stored outside a managed store")
        if self.privilege:
            labels.append(self.privilege)
        if self.unused:
            labels.append(f"not used for over {UNUSED_AFTER_DAYS} days")
        return labels

    @property
    def risky(self) -> bool:
        return bool(self.labels)


def _unmanaged(credential) -> bool:
    return credential.store is None or not credential.store.is_managed


def object_risk_signals(obj, *, open_findings: int, now: dt.datetime) -> RiskSignals:
    """Signals of a loaded workflow (bindings with credential__store prefetched) or credential (store)."""
    if obj is None:
        return RiskSignals()
    if isinstance(obj, Workflow):
        credentials = [b.credential for b in obj.bindings.all()]
        last_used = max((c.last_used_at for c in credentials if c.last_used_at), default=None)
        privileged = obj.is_privileged or any(c.privilege_level == PrivilegeLevel.ADMIN for c in credentials)
        privilege = "privileged automation" if privileged else ""
        unmanaged = any(_unmanaged(c) for c in credentials)
    else:
        last_used = obj.last_used_at
        privilege = "admin privilege" if obj.privilege_level == PrivilegeLevel.ADMIN else ""
        unmanaged = _unmanaged(obj)
    unused = last_used is not None and last_used < now - dt.timedelta(days=UNUSED_AFTER_DAYS)
    return RiskSignals(open_findings=open_findings, unmanaged_storage=unmanaged, privilege=privilege,
                       last_used_at=last_used, unused=unused)


def _load_attested(items) -> tuple[dict, dict]:
    workflow_ids = [i.object_id for i in items if i.object_type == AttestedObjectType.WORKFLOW]
    credential_ids = [i.object_id for i in items if i.object_type == AttestedObjectType.CREDENTIAL]
    bindings = Binding.objects.select_related("credential__store", "credential__system")
    workflows = Workflow.objects.prefetch_related(Prefetch("bindings", queryset=bindings),
                                                  "systems").in_bulk(workflow_ids)
    credentials = (Credential.objects.select_related("store", "system")
                   .prefetch_related(Prefetch("bindings", queryset=Binding.objects.select_related("workflow")
                                              .order_by("workflow__name")))
                   .in_bulk(credential_ids))
    return workflows, credentials


def item_risk_signals(items) -> dict[int, RiskSignals]:
    """item pk -> the risk signals of its object, for any number of items in a constant number of queries."""
    items = list(items)
    workflows, credentials = _load_attested(items)
    findings = {AttestedObjectType.WORKFLOW: _open_finding_counts(AttestedObjectType.WORKFLOW, list(workflows)),
                AttestedObjectType.CREDENTIAL: _open_finding_counts(AttestedObjectType.CREDENTIAL,
                                                                    list(credentials))}
    now = timezone.now()
    loaded = {AttestedObjectType.WORKFLOW: workflows, AttestedObjectType.CREDENTIAL: credentials}
    return {item.pk: object_risk_signals(loaded.get(item.object_type, {}).get(item.object_id),
                                         open_findings=findings.get(item.object_type, Counter())[item.object_id],
                                         now=now)
            for item in items}


def inbox(*, user, limit: int = INBOX_LIMIT) -> dict:
    """The owner's open items grouped by workflow, each with what the portal knows about the object.

    Only the first `limit` items are rendered; `rendered_ids` are exactly those, so "confirm all
    unchanged" can never reach an item the owner has not seen.
    """
    queryset = my_open_items(user=user)
    total = queryset.count()
    items = list(queryset[:limit])
    workflow_ids = [i.object_id for i in items if i.object_type == AttestedObjectType.WORKFLOW]
    credential_ids = [i.object_id for i in items if i.object_type == AttestedObjectType.CREDENTIAL]
    workflows, credentials = _load_attested(items)
    now = timezone.now()
    workflow_findings = _open_finding_counts(AttestedObjectType.WORKFLOW, workflow_ids)
    credential_findings = _open_finding_counts(AttestedObjectType.CREDENTIAL, credential_ids)
    groups: dict[object, dict] = {}

    def group_for(key, workflow):
        return groups.setdefault(key, {"workflow": workflow, "workflow_item": None, "credential_items": []})

    for item in items:
        if item.object_type == AttestedObjectType.WORKFLOW:
            item.obj = workflows.get(item.object_id)
            item.open_findings = workflow_findings[item.object_id]
            item.signals = object_risk_signals(item.obj, open_findings=item.open_findings, now=now)
            group_for(item.object_id, item.obj)["workflow_item"] = item
    for item in items:
        if item.object_type != AttestedObjectType.CREDENTIAL:
            continue
        item.obj = credentials.get(item.object_id)
        item.open_findings = credential_findings[item.object_id]
        item.signals = object_risk_signals(item.obj, open_findings=item.open_findings, now=now)
        uses = [b.workflow for b in item.obj.bindings.all()] if item.obj else []
        mine = [w for w in uses if w.pk in workflows]
        workflow = (mine or uses or [None])[0]
        item.used_by = uses
        group_for(workflow.pk if workflow else None, workflow)["credential_items"].append(item)
    ordered = sorted(groups.values(), key=lambda g: (g["workflow"] is None, str(g["workflow"] or "")))
    risky = sum(1 for i in items if getattr(i, "signals", None) is not None and i.signals.risky)
    return {"groups": ordered, "rendered_ids": [i.pk for i in items], "total": total,
            "hidden": max(total - len(items), 0), "risky_count": risky,
            "plain_count": len(items) - risky, "unused_after_days": UNUSED_AFTER_DAYS}


def campaign_list(*, user):
    return (restrict(AttestationCampaign.objects.all(), user, VIEW)
            .select_related("scope_team", "scope_system")
            .annotate(total=Count("items"), answered=Count("items", filter=ANSWERED))
            .order_by("status", "-period_start", "name"))


def _percent(done: int, total: int) -> int:
    return round(100 * done / total) if total else 100


def campaign_progress(*, campaign: AttestationCampaign, now: dt.datetime | None = None) -> dict:
    """Completion per team and per owner, with the overdue, escalated and lapsed items."""
    now = now or timezone.now()
    items = campaign.items.all()
    totals = items.aggregate(total=Count("pk"), answered=Count("pk", filter=Q(state=ItemState.ANSWERED)),
                             escalated=Count("pk", filter=Q(escalated_at__isnull=False)),
                             lapsed=Count("pk", filter=Q(consequence_applied_at__isnull=False)),
                             requests=Count("pk", filter=Q(resulting_request_id__isnull=False)))
    per = {}
    for key, field, label in (("teams", "team", "team__name"), ("owners", "assignee", "assignee__username")):
        rows = (items.values(f"{field}_id", label)
                .annotate(name=F(label), total=Count("pk"),
                          answered=Count("pk", filter=Q(state=ItemState.ANSWERED)))
                .order_by(label))
        per[key] = [{**r, "percent": _percent(r["answered"], r["total"]), "open": r["total"] - r["answered"]}
                    for r in rows]
    open_items = items.filter(state=ItemState.OPEN).select_related("assignee", "team", "escalated_to")
    overdue = open_items.filter(campaign__due_at__lte=now) if campaign.due_at <= now else open_items.none()
    answers = dict(items.filter(state=ItemState.ANSWERED).values_list("answer").annotate(n=Count("pk")))
    return {
        **totals,
        "percent": _percent(totals["answered"], totals["total"]),
        "overdue_now": campaign.status == CampaignStatus.OPEN and campaign.due_at <= now,
        "teams": per["teams"],
        "owners": per["owners"],
        "overdue": overdue.order_by("assignee__username", "object_repr")[:200],
        "escalations": items.filter(escalated_at__isnull=False).select_related("assignee", "escalated_to")
                            .order_by("-escalated_at", "object_repr")[:200],
        "flags_and_requests": items.filter(state=ItemState.ANSWERED).exclude(answer=ItemAnswer.CONFIRM)
                                   .select_related("answered_by").order_by("-answered_at")[:200],
        "answers": [(ItemAnswer(a).label, n) for a, n in sorted(answers.items())],
        "unassigned": open_items.filter(assignee__isnull=True).count(),
    }


def item_list(*, user):
    return restrict(AttestationItem.objects.all(), user, VIEW).select_related(
        "campaign", "assignee", "answered_by", "team", "original_owner", "escalated_to")


def evidence_rows(*, user, campaign: AttestationCampaign) -> list[dict]:
    """Who attested what, when, with what answer and which request: one row per item."""
    rows = []
    for item in item_list(user=user).filter(campaign=campaign).order_by("object_type", "object_repr", "pk"):
        rows.append({
            "campaign": campaign.name, "campaign_key": campaign.key, "item_id": item.pk,
            "object_type": item.object_type, "object_id": item.object_id, "object": item.object_repr,
            "team": item.team.name if item.team else "",
            "original_owner": item.original_owner.username if item.original_owner else "",
            "assignee": item.assignee.username if item.assignee else "",
            "state": item.state, "answer": item.answer, "comment": item.comment,
            "answered_at": item.answered_at,
            "answered_by": item.answered_by.username if item.answered_by else "",
            "resulting_request_id": item.resulting_request_id, "details": item.details,
            "due_at": campaign.due_at, "reminded_at": item.reminded_at, "escalated_at": item.escalated_at,
            "escalated_to": item.escalated_to.username if item.escalated_to else "",
            "consequence": item.consequence, "consequence_applied_at": item.consequence_applied_at,
            "consequence_ref": item.consequence_ref,
            "ticket": f"{item.ticket_system} {item.ticket_key}".strip(),
        })
    return rows
