"""Reads of the approval engine: the approver's queue, the requester's list, a request's detail."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q

from governance.audit import object_type_of
from governance.models import AuditEvent, OwnedModel, Person, Team
from governance.models.approvals import (
    ApprovalAction,
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


@dataclass(frozen=True)
class DecisionFacts:
    """What the separation-of-duties rule needs to know about one person and one request.

    counted_ids: everyone a decision on the request already counts for (each approver, and the owner
    of the integration each decision was made through); requester_ids: the requester and the owner of
    the integration that filed it; owner_ids: everyone who owned the object, or managed its backup
    team, at any time while the request was pending (and the recipient of a transfer).
    """

    person_group_ids: frozenset[int]
    allowed_group_ids: frozenset[int]
    counted_ids: frozenset[int]
    requester_ids: frozenset[int]
    owner_ids: frozenset[int]


def _person_ids(*values) -> set[int]:
    return {v for v in values if isinstance(v, int) and not isinstance(v, bool)}


def _is_finding(target) -> bool:
    """A target that points at another object (a finding: object_type, object_id) rather than owning itself."""
    return target is not None and not isinstance(target, OwnedModel) and isinstance(
        getattr(target, "object_type", None), str)


def _load_objects(keys) -> dict[tuple[str, int], OwnedModel]:
    """(object type label, pk) -> object, one query per type."""
    wanted, loaded = defaultdict(set), {}
    for label, pk in keys:
        wanted[label].add(pk)
    for label, ids in wanted.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            continue
        if issubclass(model, OwnedModel):
            for obj in model.objects.filter(pk__in=ids).select_related("team"):
                loaded[(label, obj.pk)] = obj
    return loaded


def _owned_objects(requests) -> dict[int, OwnedModel | None]:
    """request pk -> the object whose owner and backup team count: the target, or a finding's object."""
    loaded = _load_objects({(r.loaded_target.object_type, r.loaded_target.object_id)
                            for r in requests if _is_finding(r.loaded_target)})
    result = {}
    for request in requests:
        target = request.loaded_target
        if _is_finding(target):
            target = loaded.get((target.object_type, target.object_id))
        result[request.pk] = target if isinstance(target, OwnedModel) else None
    return result


def owners_while_pending(requests) -> dict[int, frozenset[int]]:
    """Everyone who owned each request's object, or managed its backup team, at any time while it was pending.

    The one place of the rule "owners at filing time count": the owner and manager recorded at filing,
    the current ones, and every before/after of the object's audited owner and team changes since the
    request was filed (whatever write path made them), with the managers of each of those teams and
    their audited manager changes in the same window. A constant number of queries for any number
    of requests (the queue page); requests must have loaded_target (attach_targets).
    """
    requests = list(requests)
    if not requests:
        return {}
    objects = _owned_objects(requests)
    result = {r.pk: set(_person_ids(*(r.owners_at_filing or []))) for r in requests}
    teams = {r.pk: set() for r in requests}
    since = min(r.created_at for r in requests)
    keys = defaultdict(set)
    for request in requests:
        obj = objects[request.pk]
        if obj is None:
            continue
        result[request.pk] |= _person_ids(getattr(obj, "owner_id", None))
        teams[request.pk] |= _person_ids(getattr(obj, "team_id", None))
        keys[object_type_of(obj)].add(str(obj.pk))
        if request.loaded_target is not obj:  # a finding: its own denormalised owner too
            result[request.pk] |= _person_ids(getattr(request.loaded_target, "owner_id", None))
    if keys:
        where = Q()
        for label, ids in keys.items():
            where |= Q(object_type=label, object_id__in=ids)
        events = AuditEvent.objects.filter(where, occurred_at__gte=since).filter(
            Q(changes__has_key="owner") | Q(changes__has_key="team")).values_list(
            "object_type", "object_id", "occurred_at", "changes")
        by_object = defaultdict(list)
        for label, object_id, occurred_at, changes in events:
            by_object[(label, object_id)].append((occurred_at, changes))
        for request in requests:
            obj = objects[request.pk]
            if obj is None:
                continue
            for occurred_at, changes in by_object.get((object_type_of(obj), str(obj.pk)), ()):
                if _in_window(request, occurred_at):
                    result[request.pk] |= _before_after(changes.get("owner"))
                    teams[request.pk] |= _before_after(changes.get("team"))
    all_teams = set().union(*teams.values())
    if all_teams:
        managers = defaultdict(set)
        for team_id, manager_id in Team.objects.filter(pk__in=all_teams).values_list("pk", "manager_id"):
            managers[team_id] |= _person_ids(manager_id)
        changes_of = defaultdict(list)
        for object_id, occurred_at, changes in AuditEvent.objects.filter(
                object_type=object_type_of(Team), object_id__in=[str(t) for t in all_teams],
                occurred_at__gte=since, changes__has_key="manager").values_list("object_id", "occurred_at",
                                                                                  "changes"):
            changes_of[int(object_id)].append((occurred_at, changes))
        for request in requests:
            for team_id in teams[request.pk]:
                result[request.pk] |= managers[team_id]
                for occurred_at, changes in changes_of.get(team_id, ()):
                    if _in_window(request, occurred_at):
                        result[request.pk] |= _before_after(changes.get("manager"))
    return {pk: frozenset(ids) for pk, ids in result.items()}


def _in_window(request: ApprovalRequest, when) -> bool:
    return when >= request.created_at and (request.decided_at is None or when <= request.decided_at)


def _before_after(change) -> set[int]:
    if not isinstance(change, dict):
        return set()
    return _person_ids(change.get("before"), change.get("after"))


def owners_at_filing(*, target) -> list[int]:
    """Ids of the owner and backup team manager of a target's object as a request on it is filed."""
    obj = target
    if _is_finding(target):
        obj = _load_objects({(target.object_type, target.object_id)}).get((target.object_type, target.object_id))
    if not isinstance(obj, OwnedModel):
        return []
    team = obj.team if obj.team_id else None
    ids = _person_ids(obj.owner_id, getattr(team, "manager_id", None), getattr(target, "owner_id", None))
    return sorted(ids)


def decision_facts(*, person: Person, requests) -> dict[int, DecisionFacts]:
    """The facts of decision_blocker() for one person and many requests, in a constant number of queries."""
    requests = list(requests)
    attach_targets([r for r in requests if not hasattr(r, "loaded_target")])  # sets loaded_target in place
    if not requests:
        return {}
    pks = [r.pk for r in requests]
    person_groups = frozenset(person.groups.values_list("pk", flat=True))
    counted = defaultdict(set)
    for request_id, approver_id, owner_id in ApprovalDecision.objects.filter(request__in=pks).values_list(
            "request_id", "approver_id", "integration_owner_id"):
        counted[request_id] |= _person_ids(approver_id, owner_id)
    groups_by_policy = defaultdict(set)
    through = ApprovalPolicy.approver_groups.through.objects.filter(approvalpolicy__in={r.policy_id for r in requests})
    for policy_id, group_id in through.values_list("approvalpolicy_id", "group_id"):
        groups_by_policy[policy_id].add(group_id)
    owners = owners_while_pending(requests)
    facts = {}
    for request in requests:
        allowed = set(groups_by_policy[request.policy_id])
        if request.escalated_at is not None and request.policy.escalation_group_id:
            allowed.add(request.policy.escalation_group_id)
        owner_ids = set(owners.get(request.pk, ()))
        if request.action == ApprovalAction.OWNERSHIP_TRANSFER:  # the person receiving it is an interested party
            owner_ids |= _person_ids((request.payload or {}).get("new_owner"))
        facts[request.pk] = DecisionFacts(
            person_group_ids=person_groups, allowed_group_ids=frozenset(allowed),
            counted_ids=frozenset(counted[request.pk]),
            requester_ids=frozenset(_person_ids(request.requested_by_id, request.filed_by_integration_owner_id)),
            owner_ids=frozenset(owner_ids))
    return facts



def approval_request_timeline(*, request: ApprovalRequest):
    """The audit events of one request (filed, decisions, escalation, execution), oldest first."""
    return AuditEvent.objects.filter(changes__approval_request__after=request.pk).order_by("sequence")
