"""A report's scope (the whole estate, one team, or one system): parsing, who may report on it, and
the objects inside it.

Scopes are written as text so that parameters stay plain JSON: "estate", "team:<name>",
"system:<name>". Auditors and security admins may report on any scope; an owner only on a team
they belong to or a system they may change (their own scope). Nobody else may report at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils.text import slugify

from governance import permissions, roles
from governance.models import AuditEvent, Credential, System, Team, Workflow

ESTATE, TEAM, SYSTEM = "estate", "team", "system"


@dataclass(frozen=True)
class Scope:
    kind: str
    name: str = ""
    pk: int | None = None

    @property
    def key(self) -> str:
        return ESTATE if self.kind == ESTATE else f"{self.kind}:{self.name}"

    @property
    def label(self) -> str:
        return "Whole estate" if self.kind == ESTATE else f"{self.kind.capitalize()} {self.name}"

    @property
    def slug(self) -> str:

        return ESTATE if self.kind == ESTATE else f"{self.kind}-{slugify(self.name)[:60]}"

    # --- the objects in scope -------------------------------------------------------------------
    def credentials(self) -> QuerySet:
        qs = Credential.objects.all()
        if self.kind == TEAM:
            return qs.filter(team_id=self.pk)
        if self.kind == SYSTEM:
            return qs.filter(system_id=self.pk)
        return qs

    def workflows(self) -> QuerySet:
        qs = Workflow.objects.all()
        if self.kind == TEAM:
            return qs.filter(team_id=self.pk)
        if self.kind == SYSTEM:
            return qs.filter(systems=self.pk)
        return qs

    def systems(self) -> QuerySet:
        qs = System.objects.all()
        if self.kind == TEAM:
            return qs.filter(team_id=self.pk)
        if self.kind == SYSTEM:
            return qs.filter(pk=self.pk)
        return qs

    def querysets(self) -> dict[str, QuerySet]:
        """Scoped querysets keyed by the label used in audit events and findings (app.model)."""
        return {
            "governance.credential": self.credentials(),
            "governance.workflow": self.workflows(),
            "governance.system": self.systems(),
        }

    def model_condition(self, model) -> Q | None:
        """The condition narrowing one inventory model to this scope (None: the whole estate)."""
        if self.kind == ESTATE:
            return None
        name = model._meta.model_name
        if self.kind == TEAM:
            return Q(team_id=self.pk)
        if name == "credential":
            return Q(system_id=self.pk)
        if name == "workflow":
            return Q(systems=self.pk)
        if name == "system":
            return Q(pk=self.pk)
        return Q(pk__in=[])

    def object_condition(self, *, type_field: str = "object_type", id_field: str = "object_id",
                         text_ids: bool = True) -> Q:
        """A condition on (object type, object id) columns holding an in-scope inventory object.

        The estate needs no condition; a team or system scope is a subquery per type (never a list
        of ids, so it stays one query at any size). text_ids: the id column is text (audit events).
        """
        if self.kind == ESTATE:
            return Q()
        condition = Q(pk__in=[])
        for label, qs in self.querysets().items():
            ids = qs.annotate(_sid=Cast("pk", CharField())).values("_sid") if text_ids else qs.values("pk")
            condition |= Q(**{type_field: label, f"{id_field}__in": ids})
        return condition

    def audit_events(self) -> QuerySet:
        return AuditEvent.objects.filter(self.object_condition())


def parse_scope(value: str | None) -> Scope:
    """Text to Scope; raises ValidationError({"scope": ...}) for unknown forms, teams or systems."""
    value = (value or ESTATE).strip()
    if value == ESTATE:
        return Scope(ESTATE)
    kind, sep, name = value.partition(":")
    name = name.strip()
    if not sep or not name or kind not in (TEAM, SYSTEM):
        raise ValidationError({"scope": "Give the scope as estate, team:NAME or system:NAME."})
    if kind == TEAM:
        team = Team.objects.filter(Q(name=name) | Q(slug=name)).order_by("pk").first()
        if team is None:
            raise ValidationError({"scope": f"No team called {name!r}."})
        return Scope(TEAM, team.name, team.pk)
    system = System.objects.filter(name=name).first()
    if system is None:
        raise ValidationError({"scope": f"No system called {name!r}."})
    return Scope(SYSTEM, system.name, system.pk)


def campaign_scope(campaign) -> Scope:
    """The report scope of an attestation campaign: its team or system; the estate for an estate-wide or
    privileged-automation campaign. Who may report on the campaign follows from it (may_report_on)."""
    if campaign.scope_team_id:
        return Scope(TEAM, campaign.scope_team.name, campaign.scope_team_id)
    if campaign.scope_system_id:
        return Scope(SYSTEM, campaign.scope_system.name, campaign.scope_system_id)
    return Scope(ESTATE)


def may_report_on(user, scope: Scope) -> bool:
    if roles.reads_everything(user):
        return True
    if not roles.is_signed_in(user):
        return False
    if scope.kind == TEAM:
        return Team.objects.filter(pk=scope.pk, group__user=user).exists()
    if scope.kind == SYSTEM:
        return permissions.restrict(System.objects.filter(pk=scope.pk), user, permissions.CHANGE).exists()
    return False


def ensure_may_report_on(user, scope: Scope) -> None:
    if not may_report_on(user, scope):
        raise PermissionDenied("You may generate reports only for your own teams and systems.")


def available_scopes(user) -> list[Scope]:
    """The scopes a user may choose in the portal (empty: the user may not generate reports)."""
    if not roles.is_signed_in(user):
        return []
    if roles.reads_everything(user):
        teams = Team.objects.order_by("name")
        systems = System.objects.order_by("name")
        scopes = [Scope(ESTATE)]
    else:
        teams = Team.objects.filter(group__user=user).order_by("name")
        systems = permissions.restrict(System.objects.all(), user, permissions.CHANGE).order_by("name")
        scopes = []
    # (pk, name) tuples, not model instances: every team and system of the estate is a choice
    scopes += [Scope(TEAM, name, pk) for pk, name in teams.values_list("pk", "name")]
    scopes += [Scope(SYSTEM, name, pk) for pk, name in systems.values_list("pk", "name")]
    return scopes


def may_generate_reports(user) -> bool:
    if roles.reads_everything(user):
        return True
    if not roles.is_signed_in(user):
        return False
    return (
        Team.objects.filter(group__user=user).exists()
        or permissions.restrict(System.objects.all(), user, permissions.CHANGE).exists()
    )
