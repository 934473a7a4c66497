"""What an inventory object's detail page shows beyond its overview: its findings and requests.

A workflow's or a system's page also shows the findings and requests about its credentials: an
owner looking at a workflow wants to see that its key is overdue for rotation without opening
each credential. The counts on the tabs are what needs attention (unresolved findings, pending
requests), and the lists are restricted to what the user may see.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, IntegerField, Q, Value, When

from governance.models import Binding, Credential, System, Workflow
from governance.models.approvals import ApprovalStatus
from governance.models.checks import FindingState
from governance.selectors.approvals import approval_request_list, attach_targets
from governance.selectors.checks import finding_list

TAB_ROWS = 200
CREDENTIAL_TYPE = "governance.credential"


def related_credential_ids(obj) -> list[int]:
    """Credentials whose findings and requests also belong on this object's page."""
    if isinstance(obj, Workflow):
        return list(Binding.objects.filter(workflow=obj).values_list("credential_id", flat=True))
    if isinstance(obj, System):
        return list(Credential.objects.filter(system=obj).values_list("pk", flat=True))
    return []


def _finding_condition(obj, credential_ids: list[int]) -> Q:
    condition = Q(object_type=obj._meta.label_lower, object_id=obj.pk)
    if credential_ids:
        condition |= Q(object_type=CREDENTIAL_TYPE, object_id__in=credential_ids)
    return condition


def _request_condition(obj, credential_ids: list[int]) -> Q:
    condition = Q(target_content_type=ContentType.objects.get_for_model(obj), target_object_id=str(obj.pk))
    if credential_ids:
        condition |= Q(target_content_type=ContentType.objects.get_for_model(Credential),
                       target_object_id__in=[str(pk) for pk in credential_ids])
    return condition


def object_findings(*, user, obj, credential_ids: list[int] | None = None):
    """Findings about the object (and its credentials): unresolved first, newest first within."""
    ids = related_credential_ids(obj) if credential_ids is None else credential_ids
    resolved_last = Case(When(state=FindingState.RESOLVED, then=Value(1)), default=Value(0),
                         output_field=IntegerField())
    return finding_list(user=user).filter(_finding_condition(obj, ids)).order_by(resolved_last, "-last_seen_at",
                                                                                 "-pk")


def object_requests(*, user, obj, credential_ids: list[int] | None = None) -> list:
    """Approval requests about the object (and its credentials), pending first, newest first within."""
    ids = related_credential_ids(obj) if credential_ids is None else credential_ids
    pending_first = Case(When(status=ApprovalStatus.PENDING, then=Value(0)), default=Value(1),
                         output_field=IntegerField())
    rows = approval_request_list(user=user).filter(_request_condition(obj, ids)) \
        .order_by(pending_first, "-created_at", "-pk")[:TAB_ROWS]
    return attach_targets(list(rows))


def object_tab_counts(*, user, obj, credential_ids: list[int] | None = None) -> dict[str, int]:
    """What needs attention on each tab: unresolved findings and pending requests."""
    ids = related_credential_ids(obj) if credential_ids is None else credential_ids
    return {
        "findings": object_findings(user=user, obj=obj, credential_ids=ids)
        .exclude(state=FindingState.RESOLVED).count(),
        "requests": approval_request_list(user=user).filter(_request_condition(obj, ids),
                                                            status=ApprovalStatus.PENDING).count(),
    }
