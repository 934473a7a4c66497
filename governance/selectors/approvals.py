"""Reads of the approval engine: the approver's queue, the requester's list, a request's detail."""

from __future__ import annotations

from collections import defaultdict

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q

from governance.models import AuditEvent, Person
from governance.models.approvals import (
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    DecisionKind,
    queue_condition,
)
from governance.permissions import VIEW, restrict


def approval_request_list(*, user):
    return (
        restrict(ApprovalRequest.objects.all(), user, VIEW)
        .select_related("policy", "requested_by", "target_content_type")
        .annotate(approval_count=Count("decisions", filter=Q(decisions__decision=DecisionKind.APPROVE)))
    )


def approval_queue(*, user):
    """Pending requests in the user's queues (their approver groups, or escalated to them), oldest first."""
    return approval_request_list(user=user).filter(queue_condition(user), status=ApprovalStatus.PENDING) \
        .order_by("created_at", "pk")


def my_approval_requests(*, user):
    return approval_request_list(user=user).filter(requested_by=user).order_by("-created_at", "-pk")


def approval_policy_list(*, user):
    return restrict(ApprovalPolicy.objects.all(), user, VIEW).prefetch_related("approver_groups") \
        .select_related("escalation_group").annotate(workflow_count=Count("workflows", distinct=True))


def attach_targets(requests) -> list[ApprovalRequest]:
    """Load every row's target in one query per type (request.target would cost one query per row)."""
    requests = list(requests)
    wanted = defaultdict(set)
    for request in requests:
        if request.target_content_type_id:
            wanted[request.target_content_type_id].add(request.target_object_id)
    loaded = {}
    for ct_id, ids in wanted.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        for obj in model.objects.filter(pk__in=ids):
            loaded[(ct_id, str(obj.pk))] = obj
    for request in requests:
        request.loaded_target = loaded.get((request.target_content_type_id, request.target_object_id))
    return requests


def decision_blockers(*, person: Person, requests) -> dict[int, str | None]:
    """decision_blocker() for many requests at once, with the facts read in a few queries."""
    from governance.services.approvals import DecisionFacts, _owner_ids, decision_blocker

    requests = attach_targets(requests)
    if not requests:
        return {}
    pks = [r.pk for r in requests]
    person_groups = frozenset(person.groups.values_list("pk", flat=True))
    decided = set(ApprovalDecision.objects.filter(request__in=pks, approver=person).values_list("request", flat=True))
    groups_by_policy = defaultdict(set)
    through = ApprovalPolicy.approver_groups.through.objects.filter(approvalpolicy__in={r.policy_id for r in requests})
    for policy_id, group_id in through.values_list("approvalpolicy_id", "group_id"):
        groups_by_policy[policy_id].add(group_id)
    result = {}
    for request in requests:
        allowed = set(groups_by_policy[request.policy_id])
        if request.escalated_at is not None and request.policy.escalation_group_id:
            allowed.add(request.policy.escalation_group_id)
        facts = DecisionFacts(person_group_ids=person_groups, allowed_group_ids=frozenset(allowed),
                              already_decided=request.pk in decided,
                              owner_ids=frozenset(_owner_ids(request, target=request.loaded_target)))
        result[request.pk] = decision_blocker(person=person, request=request, facts=facts)
    return result


def approval_request_timeline(*, request: ApprovalRequest):
    """The audit events of one request (filed, decisions, escalation, execution), oldest first."""
    return AuditEvent.objects.filter(changes__approval_request__after=request.pk).order_by("sequence")


def pending_requests_for(*, user, obj):
    """Pending requests about one object, as far as the user may see them (for object pages)."""
    return approval_request_list(user=user).filter(
        status=ApprovalStatus.PENDING, target_content_type=ContentType.objects.get_for_model(obj),
        target_object_id=str(obj.pk)).order_by("created_at")
