"""The one permission choke point: restrict(queryset, user, action).

Every list, detail, form, export, API endpoint, task acting for a user and report narrows its
queryset here. Rules are Exists() subqueries over django-guardian's direct foreign-key grant
tables, so a check is one query whatever the estate's size. What a user may not see answers 404.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from guardian.shortcuts import assign_perm, remove_perm

from governance import roles

VIEW, CHANGE = "view", "change"
ACTIONS = (VIEW, CHANGE)

# Other capabilities (approvals, checks) add visibility rules for the hot models here, so the
# rule stays in this one function rather than spreading into views.
VisibilityRule = Callable[[object, str], Q | Exists | None]
EXTRA_VISIBILITY: dict[type[Model], list[VisibilityRule]] = {}


def register_visibility(model: type[Model], rule: VisibilityRule) -> None:
    EXTRA_VISIBILITY.setdefault(model, []).append(rule)


def _grant_models(model):
    from governance import models as m

    return {
        m.Workflow: (m.WorkflowUserObjectPermission, m.WorkflowGroupObjectPermission),
        m.Credential: (m.CredentialUserObjectPermission, m.CredentialGroupObjectPermission),
        m.System: (m.SystemUserObjectPermission, m.SystemGroupObjectPermission),
    }.get(model)


def _owned_condition(model, user, action: str):
    user_table, group_table = _grant_models(model)
    codename = f"{action}_{model._meta.model_name}"
    condition = (
        Q(owner=user)
        | Exists(user_table.objects.filter(content_object=OuterRef("pk"), user=user, permission__codename=codename))
        | Exists(
            group_table.objects.filter(
                content_object=OuterRef("pk"), group__user=user, permission__codename=codename
            )
        )
    )
    if action == VIEW:
        for rule in EXTRA_VISIBILITY.get(model, []):
            extra = rule(user, action)
            if extra is not None:
                condition |= extra
    return condition


def restrict(queryset: QuerySet, user, action: str = VIEW) -> QuerySet:
    """Narrow queryset to the objects user may perform action on."""
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
        visible = restrict(m.Workflow.objects.all(), user, action)
        return queryset.filter(Exists(visible.filter(pk=OuterRef("workflow_id"))))
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
