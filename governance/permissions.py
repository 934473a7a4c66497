"""The one permission choke point: restrict(queryset, user, action).

Every list, detail, form, export, API endpoint, task acting for a user and report narrows its
queryset here. What a user may not see answers 404.

For the hot models (credentials, workflows, systems) the rule is one `pk IN (... UNION ...)` over
the id sets that make an object visible: owned by me, granted to me, granted to one of my groups,
plus the id sets other capabilities register (an approver's pending queue). Each branch is served
by an index (owner; guardian's unique (user|group, permission, object) keys), and the planner
joins the few thousand ids an owner may see to the table instead of testing a million rows
against ORed EXISTS subqueries. tests/governance/test_visibility_property.py holds the former
definition (owner OR EXISTS user grant OR EXISTS group grant) as the oracle it must equal.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Exists, Model, Q, QuerySet
from guardian.shortcuts import assign_perm, remove_perm

from governance import roles

VIEW, CHANGE = "view", "change"
ACTIONS = (VIEW, CHANGE)

# Other capabilities (approvals, checks) add visibility rules for the hot models here, so the
# rule stays in this one function rather than spreading into views. A rule returns a queryset of
# one integer column (the visible objects' ids: the fast path, joined into the UNION) or a
# condition on the model (Q / Exists, ORed onto the filter: correct, but a scan at scale), or None.
VisibilityRule = Callable[[object, str], QuerySet | Q | Exists | None]
EXTRA_VISIBILITY: dict[type[Model], list[VisibilityRule]] = {}


def register_visibility(model: type[Model], rule: VisibilityRule) -> None:
    EXTRA_VISIBILITY.setdefault(model, []).append(rule)


def _grant_models(model):
    # cycle: the models import this module to register their rules
    from governance import models as m

    return {
        m.Workflow: (m.WorkflowUserObjectPermission, m.WorkflowGroupObjectPermission),
        m.Credential: (m.CredentialUserObjectPermission, m.CredentialGroupObjectPermission),
        m.System: (m.SystemUserObjectPermission, m.SystemGroupObjectPermission),
    }.get(model)


def _visible_ids(model, user, action: str) -> tuple[QuerySet, list[Q | Exists]]:
    """The ids user may act on (one UNION) and the conditions of rules that have no id set."""
    user_table, group_table = _grant_models(model)
    codename = f"{action}_{model._meta.model_name}"
    branches = [
        model._base_manager.filter(owner=user).order_by().values("pk"),
        user_table.objects.filter(user=user, permission__codename=codename).order_by().values("content_object_id"),
        group_table.objects.filter(group__user=user, permission__codename=codename).order_by()
        .values("content_object_id"),
    ]
    conditions = []
    if action == VIEW:
        for rule in EXTRA_VISIBILITY.get(model, []):
            extra = rule(user, action)
            if isinstance(extra, QuerySet):
                branches.append(extra.order_by())
            elif extra is not None:
                conditions.append(extra)
    return branches[0].union(*branches[1:]), conditions


def _owned_condition(model, user, action: str) -> Q:
    ids, conditions = _visible_ids(model, user, action)
    condition = Q(pk__in=ids)
    for extra in conditions:
        condition |= extra
    return condition


def visible_ids(model, user, action: str = VIEW) -> QuerySet:
    """The ids of the model's objects user may act on, for `__in` subqueries of other models' rules.

    For a hot model whose visibility is only id sets this is the UNION itself: wrapping it in
    restrict(model).values("pk") would look each of an owner's thousands of ids up in the table
    again (20 of the 54 ms of an owner's open findings at 1M credentials).
    """
    if _grant_models(model) is not None and roles.is_signed_in(user) and not roles.is_security_admin(user) \
            and not roles.is_auditor(user):
        ids, conditions = _visible_ids(model, user, action)
        if not conditions:
            return ids
    return restrict(model.objects.all(), user, action).values("pk")


def restrict(queryset: QuerySet, user, action: str = VIEW) -> QuerySet:
    """Narrow queryset to the objects user may perform action on."""
    # cycle: the models import this module to register their rules
    from governance import models as m

    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not roles.is_signed_in(user):
        return queryset.none()
    model = queryset.model
    if roles.is_security_admin(user):
        return queryset
    if action == VIEW and roles.is_auditor(user):
        return queryset
    if action == CHANGE and roles.is_auditor(user):
        return queryset.none()

    if _grant_models(model) is not None:
        return queryset.filter(_owned_condition(model, user, action))
    if model is m.Binding:
        return queryset.filter(workflow_id__in=visible_ids(m.Workflow, user, action))
    if model in (m.Person, m.Team, m.SecretStore):
        # The directory and the list of stores are visible to every signed-in person;
        # changing them is for security admins (handled above).
        return queryset if action == VIEW else queryset.none()
    if model is m.AuditEvent:
        return queryset.none()  # the global log is for auditors and security admins (above)
    rule = MODEL_RULES.get(model)
    if rule is not None:
        return rule(queryset, user, action)
    return queryset.none()


# Rules for models of later capabilities, registered by their modules: model -> function.
MODEL_RULES: dict[type[Model], Callable[[QuerySet, object, str], QuerySet]] = {}


def register_model_rule(model: type[Model], rule: Callable[[QuerySet, object, str], QuerySet]) -> None:
    MODEL_RULES[model] = rule


def can(user, action: str, obj: Model) -> bool:
    return restrict(type(obj).objects.all(), user, action).filter(pk=obj.pk).exists()


def grant_team(obj: Model, team) -> None:
    """Give a team view and change on an object it backs up (one group row per permission)."""
    if team is None:
        return
    name = obj._meta.model_name
    for action in ACTIONS:
        assign_perm(f"{action}_{name}", team.group, obj)


def revoke_team(obj: Model, team) -> None:
    if team is None:
        return
    name = obj._meta.model_name
    for action in ACTIONS:
        remove_perm(f"{action}_{name}", team.group, obj)
