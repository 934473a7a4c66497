"""What an approver needs beside a request to decide it well: the approver context panel.

The target's criticality, its open findings by severity, its blast radius, the current and the
proposed scopes with the destructive ones flagged, and the requester's recent requests. A constant
number of queries whatever the target's size: counts are aggregates, the blast radius reads the
bindings once, and a finding's or a credential's related rows come in one query each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q

from governance.connectors.scopes import destructive_reason
from governance.models import Binding, Credential, System, Workflow
from governance.models.approvals import ApprovalRequest
from governance.models.checks import SEVERITY_ORDER, Finding, FindingState, Severity
from governance.selectors import workflow_bindings
from governance.selectors.approvals import approval_request_list
from governance.selectors.blast_radius import workflow_blast_radius
from governance.selectors.object_tabs import related_credential_ids

RECENT_REQUESTS = 5
OPEN_STATES = (FindingState.OPEN, FindingState.ACKNOWLEDGED)


@dataclass(frozen=True)
class ScopeRow:
    scope: str
    change: str  # "kept", "added", "removed"
    destructive: str  # why it is destructive, or ""


@dataclass
class ApprovalContext:
    subject: object | None  # the inventory object the request is about (a finding's object)
    criticality: str = ""
    privilege: str = ""
    findings_by_severity: list[tuple[str, int]] = field(default_factory=list)
    open_findings: int = 0
    blast_radius: dict = field(default_factory=dict)  # summary, and counts of what it touches
    scopes: list[ScopeRow] = field(default_factory=list)
    has_scope_change: bool = False
    recent_requests: list = field(default_factory=list)

    @property
    def destructive_count(self) -> int:
        return sum(1 for row in self.scopes if row.destructive and row.change != "removed")


def _subject(target):
    """The inventory object behind the target: a finding stands for the object it is about."""
    if isinstance(target, Finding):
        model = {"governance.workflow": Workflow, "governance.credential": Credential,
                 "governance.system": System}.get(target.object_type)
        if model is None:
            return None
        return model.objects.select_related("system").filter(pk=target.object_id).first() if model is Credential \
            else model.objects.filter(pk=target.object_id).first()
    return target if isinstance(target, Workflow | Credential | System) else None


def _criticality(subject) -> tuple[str, str]:
    if isinstance(subject, Credential):
        return subject.system.get_criticality_display(), subject.get_privilege_level_display()
    if isinstance(subject, Workflow):
        return subject.get_criticality_display(), "privileged automation" if subject.is_privileged else ""
    if isinstance(subject, System):
        return subject.get_criticality_display(), ""
    return "", ""


def _findings(subject) -> list[tuple[str, int]]:
    """Counts, not findings: the approver asked to decide sees how many there are by severity, even of
    findings they may not open (as the blast radius counts reuse they may not see)."""
    condition = Q(object_type=subject._meta.label_lower, object_id=subject.pk)
    credential_ids = related_credential_ids(subject)
    if credential_ids:
        condition |= Q(object_type=Credential._meta.label_lower, object_id__in=credential_ids)
    rows = (Finding.objects.filter(condition, state__in=OPEN_STATES).order_by().values("failed_check__severity")
            .annotate(n=Count("pk")).values_list("failed_check__severity", "n"))
    counts = dict(rows)
    return [(Severity(sev).label, counts[sev]) for sev in sorted(counts, key=lambda s: SEVERITY_ORDER.get(s, 9))]


def _blast_radius(user, subject) -> dict:
    if isinstance(subject, Workflow):
        graph = workflow_blast_radius(workflow=subject,
                                      bindings=list(workflow_bindings(user=user, workflow=subject)))
        return {"summary": graph["summary"], "counts": graph["counts"], "workflow_graph": graph}
    if isinstance(subject, Credential):
        workflows = Binding.objects.filter(credential=subject).values("workflow").distinct().count()
        return {"summary": f"{subject.name} opens {subject.system} and is used by {workflows} "
                           f"workflow{'s' if workflows != 1 else ''}",
                "counts": {"workflow": workflows, "system": 1}}
    if isinstance(subject, System):
        counts = Credential.objects.filter(system=subject).aggregate(
            credentials=Count("pk", distinct=True), workflows=Count("bindings__workflow", distinct=True))
        return {"summary": f"{subject.name} is opened by {counts['credentials']} credential"
                           f"{'s' if counts['credentials'] != 1 else ''} used by {counts['workflows']} workflow"
                           f"{'s' if counts['workflows'] != 1 else ''}",
                "counts": {"credential": counts["credentials"], "workflow": counts["workflows"]}}
    return {}


def _scopes(approval: ApprovalRequest, subject) -> tuple[list[ScopeRow], bool]:
    payload = approval.payload or {}
    proposed = payload.get("scopes")
    current = list(subject.scopes or []) if isinstance(subject, Credential) else []
    if not isinstance(proposed, list):
        return [ScopeRow(str(s), "kept", destructive_reason(str(s))) for s in current], False
    proposed = [str(s) for s in proposed]
    rows = [ScopeRow(s, "kept" if s in current else "added", destructive_reason(s)) for s in proposed]
    rows += [ScopeRow(s, "removed", destructive_reason(s)) for s in current if s not in proposed]
    return rows, True


def approval_context(*, user, approval: ApprovalRequest, target) -> ApprovalContext:
    """The panel for one request, for a viewer who may already see it (the detail page's request)."""
    subject = _subject(target)
    recent = list(approval_request_list(user=user).filter(requested_by_id=approval.requested_by_id)
                  .exclude(pk=approval.pk).order_by("-created_at", "-pk")[:RECENT_REQUESTS])
    context = ApprovalContext(subject=subject, recent_requests=recent)
    context.scopes, context.has_scope_change = _scopes(approval, subject)
    if subject is None:
        return context
    context.criticality, context.privilege = _criticality(subject)
    context.findings_by_severity = _findings(subject)
    context.open_findings = sum(n for _, n in context.findings_by_severity)
    context.blast_radius = _blast_radius(user, subject)
    return context

