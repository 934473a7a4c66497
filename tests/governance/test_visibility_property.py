"""restrict()'s fast shape (pk IN a UNION of id sets) returns exactly what its former definition returned.

Findings too: visible (or changeable) exactly when their object is under the former definition; an
estate-level finding only to those who read everything.

The oracle below is the definition restrict() had before #20, kept verbatim in shape: owner OR an
Exists over the user grants OR an Exists over the group grants OR (for view) an Exists over the
pending approval requests in the user's queues. Hypothesis draws small random estates (owners,
teams, direct and group grants of either action, memberships, pending and decided requests,
escalations, a target id that is not a number) and every persona, model and action must agree.
"""

from datetime import timedelta

import hypothesis
import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Cast
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import strategies as st

from governance import roles
from governance.checks.base import ESTATE_OBJECT_TYPE
from governance.models import (
    Binding,
    Credential,
    CredentialGroupObjectPermission,
    CredentialUserObjectPermission,
    Person,
    SecretStore,
    System,
    SystemGroupObjectPermission,
    SystemUserObjectPermission,
    Team,
    Workflow,
    WorkflowGroupObjectPermission,
    WorkflowUserObjectPermission,
)
from governance.models.approvals import ApprovalPolicy, ApprovalRequest, ApprovalStatus, queue_condition
from governance.models.checks import Check, Finding
from governance.permissions import ACTIONS, CHANGE, VIEW, restrict

GRANTS = {
    Credential: (CredentialUserObjectPermission, CredentialGroupObjectPermission),
    Workflow: (WorkflowUserObjectPermission, WorkflowGroupObjectPermission),
    System: (SystemUserObjectPermission, SystemGroupObjectPermission),
}
PEOPLE, GROUPS, OBJECTS = 5, 3, 6
OBJECT_MODELS = {m._meta.label_lower: m for m in GRANTS}


def oracle(model, user, action: str) -> set[int]:
    """restrict() as it was defined before the fast shape (governance/permissions.py at main, #20)."""
    queryset = model.objects.all()
    if not roles.is_signed_in(user):
        return set()
    if roles.is_security_admin(user) or (action == VIEW and roles.is_auditor(user)):
        return set(queryset.values_list("pk", flat=True))
    if action == CHANGE and roles.is_auditor(user):
        return set()
    if model is Finding:
        return {pk for pk, object_type, object_id in queryset.values_list("pk", "object_type", "object_id")
                if object_type in OBJECT_MODELS and object_id in oracle(OBJECT_MODELS[object_type], user, action)}
    if model is Binding:
        visible = restrict_oracle_queryset(Workflow, user, action)
        return set(queryset.filter(Exists(visible.filter(pk=OuterRef("workflow_id")))).values_list("pk", flat=True))
    return set(restrict_oracle_queryset(model, user, action).values_list("pk", flat=True))


def restrict_oracle_queryset(model, user, action: str):
    user_table, group_table = GRANTS[model]
    codename = f"{action}_{model._meta.model_name}"
    condition = (
        Q(owner=user)
        | Exists(user_table.objects.filter(content_object=OuterRef("pk"), user=user, permission__codename=codename))
        | Exists(group_table.objects.filter(content_object=OuterRef("pk"), group__user=user,
                                            permission__codename=codename))
    )
    if action == VIEW:
        condition |= Exists(ApprovalRequest.objects.filter(
            queue_condition(user), status=ApprovalStatus.PENDING,
            target_content_type__app_label=model._meta.app_label,
            target_content_type__model=model._meta.model_name,
            target_object_id=Cast(OuterRef("pk"), output_field=models.CharField())))
    return model.objects.filter(condition)


person_index = st.integers(0, PEOPLE - 1)
group_index = st.integers(0, GROUPS - 1)
maybe_person = st.none() | person_index
maybe_group = st.none() | group_index
kinds = st.sampled_from([Credential, Workflow, System])
action = st.sampled_from(ACTIONS)

estates = st.fixed_dictionaries({
    "objects": st.lists(st.tuples(kinds, maybe_person, maybe_group), min_size=1, max_size=OBJECTS * 3),
    "memberships": st.lists(st.tuples(person_index, group_index), max_size=8),
    "user_grants": st.lists(st.tuples(st.integers(0, 100), person_index, action), max_size=8),
    "group_grants": st.lists(st.tuples(st.integers(0, 100), group_index, action), max_size=8),
    "requests": st.lists(st.tuples(st.integers(0, 100), st.sampled_from(["pending", "rejected"]), group_index,
                                   maybe_group, st.booleans(), st.booleans()), max_size=5),
    "bindings": st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=6),
    "findings": st.lists(st.integers(0, 100), max_size=6),
    "roles": st.tuples(st.sampled_from([None, roles.AUDITORS, roles.SECURITY_ADMINS]),
                       st.sampled_from([None, roles.AUDITORS, roles.SECURITY_ADMINS])),
    "inactive": maybe_person,
})


def build(estate) -> list:
    for name in roles.ROLE_GROUPS:
        Group.objects.get_or_create(name=name)
    groups = [Group.objects.create(name=f"prop-group-{i}") for i in range(GROUPS)]
    teams = [Team.objects.create(name=f"Prop team {i}", slug=f"prop-team-{i}", group=g) for i, g in enumerate(groups)]
    people = [Person.objects.create_user(f"prop-{i}", password="!") for i in range(PEOPLE)]
    for (role, person) in zip(estate["roles"], people[-2:], strict=True):
        if role:
            person.groups.add(Group.objects.get(name=role))
    if estate["inactive"] is not None:
        Person.objects.filter(pk=people[estate["inactive"]].pk).update(is_active=False)
    for person, group in estate["memberships"]:
        people[person].groups.add(groups[group])
    store = SecretStore.objects.create(name="prop-store", kind="openbao_kv")
    system0 = System.objects.create(name="prop-system-base")
    objects = []
    for n, (model, owner, team) in enumerate(estate["objects"]):
        fields = {"name": f"prop-{n}", "owner": people[owner] if owner is not None else None,
                  "team": teams[team] if team is not None else None}
        if model is Credential:
            fields.update(kind="api_key", system=system0, store=store, store_path=f"secret/{n}", identifier=f"id-{n}")
        if model is Workflow:
            fields.update(kind="cicd_pipeline")
        objects.append(model.objects.create(**fields))
    permissions = {(m, a): Permission.objects.get(content_type=ContentType.objects.get_for_model(m),
                                                  codename=f"{a}_{m._meta.model_name}")
                   for m in GRANTS for a in ACTIONS}
    for index, person, act in estate["user_grants"]:
        obj = objects[index % len(objects)]
        GRANTS[type(obj)][0].objects.get_or_create(permission=permissions[type(obj), act], user=people[person],
                                                   content_object=obj)
    for index, group, act in estate["group_grants"]:
        obj = objects[index % len(objects)]
        GRANTS[type(obj)][1].objects.get_or_create(permission=permissions[type(obj), act], group=groups[group],
                                                   content_object=obj)
    workflows = [o for o in objects if isinstance(o, Workflow)]
    credentials = [o for o in objects if isinstance(o, Credential)]
    for w, c in estate["bindings"]:
        if workflows and credentials:
            Binding.objects.get_or_create(workflow=workflows[w % len(workflows)],
                                          credential=credentials[c % len(credentials)], defaults={"purpose": "x"})
    now = timezone.now()
    for n, (index, status, group, escalation, escalated, not_a_number) in enumerate(estate["requests"]):
        obj = objects[index % len(objects)]
        policy = ApprovalPolicy.objects.create(
            name=f"prop-policy-{n}", escalation_group=groups[escalation] if escalation is not None else None,
            escalation_after_hours=1 if escalation is not None else None)
        policy.approver_groups.add(groups[group])
        ApprovalRequest.objects.create(
            action="privileged_scope_change", status=status, policy=policy,
            target_content_type=ContentType.objects.get_for_model(obj),
            target_object_id=f"{obj.pk}x" if not_a_number else str(obj.pk), requested_by=people[0],
            justification="prop", created_at=now, expires_at=now + timedelta(days=1),
            decided_at=None if status == "pending" else now, executed_at=None if status == "pending" else now,
            escalated_at=now if escalated else None)
    check = Check.objects.create(code="prop-check", name="Prop check", severity="high", explanation="-",
                                 remediation="-")
    for n in estate["findings"]:  # a finding on some objects (at most one per object and check)
        obj = objects[n % len(objects)]
        Finding.objects.get_or_create(failed_check=check, object_type=obj._meta.label_lower, object_id=obj.pk,
                                      defaults={"first_seen_at": now, "last_seen_at": now})
    Finding.objects.create(failed_check=check, object_type=ESTATE_OBJECT_TYPE, object_id=0, first_seen_at=now,
                           last_seen_at=now)
    return [*Person.objects.filter(pk__in=[p.pk for p in people]), AnonymousUser()]


@pytest.mark.django_db
@hypothesis.settings(max_examples=30, deadline=None, database=None, derandomize=True,
                     phases=[hypothesis.Phase.generate], suppress_health_check=list(HealthCheck))
@hypothesis.given(estate=estates)
def test_fast_visibility_equals_the_former_definition(estate):
    with transaction.atomic():
        users = build(estate)
        for user in users:
            for model in (Credential, Workflow, System, Binding, Finding):
                for act in ACTIONS:
                    fast = set(restrict(model.objects.all(), user, act).values_list("pk", flat=True))
                    assert fast == oracle(model, user, act), (model.__name__, act, getattr(user, "username", None))
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_team_member_sees_the_team_object_and_not_another_team_s(personas):
    """A hand-written case next to the property: the group branch and the owner branch both count."""
    from tests.factories import CredentialFactory

    mine = CredentialFactory(owner=personas.outsider, team=personas.team)
    theirs = CredentialFactory(owner=personas.approver, team=personas.other_team)
    visible = set(restrict(Credential.objects.all(), personas.backup_owner).values_list("pk", flat=True))
    assert mine.pk in visible and theirs.pk not in visible
    assert set(restrict(Credential.objects.all(), personas.approver).values_list("pk", flat=True)) >= {theirs.pk}
