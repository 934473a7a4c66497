"""The home page, per role: what each person should look at first.

Owners: their workflows' four governance items, their open findings, attestation items and
requests. Approvers: their queue with counts and the oldest waiting time. Auditors: posture per
framework and the reports. Security admins: the estate's posture, sweeps, connector health and
the kill switch. A person with several roles sees each section.
"""

from __future__ import annotations

from django.db.models import Count, F, Prefetch, Q, Window
from django.utils import timezone

from governance import roles
from governance.models import Binding, Team
from governance.models.approvals import ApprovalPolicy
from governance.models.checks import FindingState, SweepRun
from governance.models.lifecycle import AttemptOutcome, RotationAttempt
from governance.selectors import (
    MISSING,
    STALE,
    UNMANAGED_NAMES_SHOWN,
    related_count,
    unmanaged_binding,
    workflow_list,
    workflow_record_items,
)
from governance.selectors.approvals import approval_queue, my_approval_requests
from governance.selectors.attestation import my_open_items
from governance.selectors.checks import (
    check_results,
    finding_list,
    frameworks_summary,
    open_findings_by_severity,
    posture_scope,
    results_as_of,
    worst_first,
)
from governance.selectors.lifecycle import kill_switch_list
from governance.services.approvals import decision_blockers
from reports.selectors import report_job_list

SECTION_ROWS = 6

def _owner_section(user) -> dict:
    # Counts per workflow and only the few unmanaged credentials' names each record shows: an owner's
    # fifty workflows hold a thousand bindings, which the record does not need as rows.
    unmanaged = Binding.objects.filter(unmanaged_binding())
    shown = unmanaged.order_by("credential__name", "pk").annotate(credential_name=F("credential__name"))
    workflows = list(
        workflow_list(user=user).filter(owner=user).select_related("approval_policy")
        .annotate(unmanaged_count=related_count(unmanaged, "workflow"))
        .prefetch_related(Prefetch("bindings", to_attr="unmanaged_shown",
                                   queryset=shown.only("id", "workflow_id")[:UNMANAGED_NAMES_SHOWN]))
        .order_by("name")
    )
    rows = []
    for workflow in workflows:
        record = workflow_record_items(workflow=workflow, credential_count=workflow.credential_count,
                                       unmanaged_count=workflow.unmanaged_count,
                                       unmanaged_names=[b.credential_name for b in workflow.unmanaged_shown])
        rows.append({"workflow": workflow, "record": record,
                     "gaps": sum(item["state"] in (MISSING, STALE) for item in record)})
    rows.sort(key=lambda row: (-row["gaps"], row["workflow"].name))
    findings = finding_list(user=user).filter(owner=user, state__in=[FindingState.OPEN, FindingState.ACKNOWLEDGED])
    attestation_items = my_open_items(user=user)
    requests = my_approval_requests(user=user).filter(status="pending")
    # The count rides on the rows (COUNT(*) OVER ()): the visibility rule is evaluated once, not twice.
    worst = list(worst_first(findings.select_related("failed_check"))
                 .annotate(matching=Window(Count("pk")))[:SECTION_ROWS])
    return {
        "workflows": rows,
        "findings": worst,
        "finding_count": worst[0].matching if worst else 0,
        "attestation_items": attestation_items[:SECTION_ROWS],
        "attestation_count": attestation_items.count(),
        "requests": requests[:SECTION_ROWS],
        "request_count": requests.count(),
    }


QUEUE_SCAN = 200


def _approver_section(user) -> dict | None:
    """Only the requests this person may decide now (not their own, not those they already decided)."""

    queue = list(approval_queue(user=user)[:QUEUE_SCAN])
    blockers = decision_blockers(person=user, requests=queue)
    decidable = [request for request in queue if blockers.get(request.pk) is None]
    is_approver = ApprovalPolicy.objects.filter(
        Q(approver_groups__user=user) | Q(escalation_group__user=user)).exists()
    if not decidable and not is_approver:
        return None
    return {
        "queue": decidable[:SECTION_ROWS],
        "count": len(decidable),
        "oldest_waiting": timezone.now() - decidable[0].created_at if decidable else None,
    }


def _posture_section(user) -> dict:
    scope = posture_scope(user=user)
    results = check_results(scope=scope)
    return {
        "scope": scope,
        "as_of": results_as_of(results),
        "frameworks": frameworks_summary(results=results),
        "severity": open_findings_by_severity(results=results),
        "last_sweep": SweepRun.objects.order_by("-started_at").first(),
    }


def _admin_section(user) -> dict:
    since = timezone.now() - timezone.timedelta(days=7)
    attempts = RotationAttempt.objects.filter(started_at__gte=since)
    return {
        "kill_switches": kill_switch_list(user=user).select_related("workflow").order_by("-pk")[:SECTION_ROWS],
        "rotations_week": attempts.count(),
        # A connection error is a failed attempt too, even while its job will retry it.
        "rotation_failures_week": attempts.filter(
            outcome__in=[AttemptOutcome.FAILED, AttemptOutcome.RETRYING]).count(),
        "rotation_connection_errors_week": attempts.filter(error_code="unreachable").count(),
    }


def home_context(*, user) -> dict:
    owns_or_member = workflow_list(user=user).filter(owner=user).exists() or \
        Team.objects.filter(group__user=user).exists()
    context = {
        "is_owner": owns_or_member or not roles.reads_everything(user),
        "approver": _approver_section(user),
        "posture": _posture_section(user),
    }
    if context["is_owner"]:
        context["owner"] = _owner_section(user)
    if roles.reads_everything(user):
        context["reports"] = {"jobs": report_job_list(user=user).order_by("-pk")[:SECTION_ROWS]}
    if roles.is_security_admin(user):
        context["admin"] = _admin_section(user)
    return context
