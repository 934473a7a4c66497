"""What every check is: a rule evaluated over the whole estate in set-based queries.

A check names its subjects (credentials, workflows, systems, or the estate itself), the queryset
of subjects it evaluates, and the condition under which a subject fails, with the facts that
show why (the evidence). The sweep runs one query per subject type and check for the failing
set, never one query per object. Evidence holds facts about the object (dates, counts, states),
not derived ages, so it only changes when the object does. It is built in SQL as one JSON object
per failing row and compared with a finding's stored evidence as canonical JSON text, so a sweep
in which nothing changed moves no Python dictionaries at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.conf import settings
from django.db.models import BooleanField, F, Func, JSONField, Model, Q, QuerySet, TextField, Value
from django.db.models.functions import JSONObject
from django.utils import timezone

from governance.checks.ranking import NO_SUBJECT_RANK, subject_rank

ESTATE_OBJECT_TYPE = "governance.auditevent"
ESTATE_OBJECT_ID = 0
ESTATE_REPR = "Audit trail (estate)"

def thresholds() -> dict[str, Any]:
    """The governance thresholds, defined once: settings.STEWARD_THRESHOLDS (each set by an environment variable)."""
    return settings.STEWARD_THRESHOLDS


class NotEvaluated(Exception):
    """The check cannot run here (a model it reads is not installed): it reports, never fakes a pass."""


@dataclass(frozen=True)
class Context:
    now: dt.datetime
    thresholds: Mapping[str, Any]
    state: Mapping[str, Any] = field(default_factory=dict)  # what the check kept from its last run

    @classmethod
    def current(cls, now: dt.datetime | None = None, state: Mapping[str, Any] | None = None) -> Context:
        return cls(now=now or timezone.now(), thresholds=thresholds(), state=dict(state or {}))

    def days(self, name: str) -> dt.timedelta:
        return dt.timedelta(days=int(self.thresholds[name]))


class JSONText(Func):
    """A JSON value as canonical text, so two evidences compare as strings: jsonb::text on
    PostgreSQL (keys ordered, spacing fixed), json() (minified, order kept) on SQLite."""

    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(%(expressions)s)::jsonb::text", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="json", **extra)


class SQLiteJSON(Func):
    """A JSON column inside JSONObject: SQLite keeps JSON as text, so it must be parsed with json()."""

    template = "%(expressions)s"

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="json(%(expressions)s)", **extra)


class SQLiteBoolean(Func):
    """A boolean inside JSONObject: SQLite has no boolean type and would write 0 or 1."""

    template = "%(expressions)s"

    def as_sqlite(self, compiler, connection, **extra):
        template = "json(CASE (%(expressions)s) WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
        return self.as_sql(compiler, connection, template=template, **extra)


def _json_member(queryset: QuerySet, name: str):
    annotation = queryset.query.annotations.get(name)
    output = annotation.output_field if annotation is not None else queryset.model._meta.get_field(name)
    if isinstance(output, JSONField):
        return SQLiteJSON(F(name), output_field=output)
    if isinstance(output, BooleanField):
        return SQLiteBoolean(F(name), output_field=output)
    return F(name)


@dataclass(frozen=True)
class Failure:
    """One subject failing one check, with its evidence as a dict or as canonical JSON text (from SQL)."""

    object_type: str
    object_id: int
    object_repr: str
    owner_id: int | None
    team_id: int | None
    evidence_dict: dict[str, Any] | None = None
    evidence_text: str | None = None
    subject_rank: int = NO_SUBJECT_RANK  # the object's part of the finding's risk rank (services.risk)

    @property
    def key(self) -> tuple[str, int]:
        return self.object_type, self.object_id

    @property
    def evidence(self) -> dict[str, Any]:
        return self.evidence_dict if self.evidence_dict is not None else json.loads(self.evidence_text or "{}")


@dataclass
class Outcome:
    evaluated: int = 0
    failures: dict[tuple[str, int], Failure] = field(default_factory=dict)
    evaluated_by_type: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] | None = None  # to keep for the next run (None: keep what there is)

    @property
    def failed(self) -> int:
        return len(self.failures)


class Check:
    """A rule with a stable code. Subclasses give the catalogue key, texts and the evaluation."""

    key: ClassVar[str]  # the catalogue key, e.g. "owner_active"; the code is "owner-active"
    severity: ClassVar[str]
    explanation: ClassVar[str]
    remediation: ClassVar[str]
    subject_types: ClassVar[tuple[str, ...]]

    @classmethod
    def code(cls) -> str:
        return cls.key.replace("_", "-")

    def evaluate(self, ctx: Context) -> Outcome:
        raise NotImplementedError

    @classmethod
    def texts(cls, limits: Mapping[str, Any]) -> tuple[str, str]:
        """Explanation and remediation with the configured thresholds written in."""
        values = {k: v for k, v in limits.items() if not isinstance(v, dict)}
        values["rotation_defaults"] = ", ".join(
            f"{kind.replace('_', ' ')} {days} days" for kind, days in limits["rotation_max_age_days"].items()
        )
        return cls.explanation.format(**values), cls.remediation.format(**values)

    def bare_queries(self, ctx: Context) -> list[QuerySet]:
        """The failing-set queries alone (for the benchmark's bare-SQL baseline)."""
        return []

    def still_evaluated(self, keys: list[tuple[str, int]], ctx: Context) -> set[tuple[str, int]]:
        """Which of these subjects the check still evaluates (to tell "passes" from "out of scope")."""
        return set(keys)


class QueryCheck(Check):
    """A check over inventory models: evaluated(model) narrowed by failing(model) is the failing set.

    evidence_fields name the columns (fields or annotations of the failing queryset) that go
    into a finding's evidence, in SQL.
    """

    subject_models: ClassVar[tuple[type[Model], ...]]
    evidence_fields: ClassVar[dict[str, tuple[str, ...]]] = {}

    def evaluated(self, model: type[Model], ctx: Context) -> QuerySet:
        raise NotImplementedError

    def failing(self, queryset: QuerySet, ctx: Context) -> QuerySet:
        raise NotImplementedError

    def failing_queryset(self, model: type[Model], ctx: Context, scope: Q | None = None) -> QuerySet:
        evaluated = self.evaluated(model, ctx)
        if scope is not None:
            evaluated = evaluated.filter(scope)
        return self.failing(evaluated, ctx)

    def failing_rows(self, model: type[Model], ctx: Context) -> QuerySet:
        """(pk, name, owner id, team id, evidence as canonical JSON text, the object's part of the risk rank)
        of every failing subject."""
        fields = self.evidence_fields.get(model._meta.model_name, ())
        queryset = self.failing_queryset(model, ctx).order_by()
        members = {name: _json_member(queryset, name) for name in fields}
        evidence = JSONText(JSONObject(**members)) if fields else Value("{}")
        return queryset.annotate(evidence_text=evidence, risk_subject=subject_rank(model)).values_list(
            "pk", "name", "owner_id", "team_id", "evidence_text", "risk_subject"
        )

    def bare_queries(self, ctx: Context) -> list[QuerySet]:
        return [self.failing_rows(model, ctx) for model in self.subject_models]

    def still_evaluated(self, keys, ctx: Context):
        found = set()
        for model in self.subject_models:
            object_type = model._meta.label_lower
            ids = [pk for kind, pk in keys if kind == object_type]
            for start in range(0, len(ids), 5000):
                chunk = self.evaluated(model, ctx).filter(pk__in=ids[start : start + 5000]).values_list("pk", flat=True)
                found.update((object_type, pk) for pk in chunk)
        return found

    def evaluate(self, ctx: Context) -> Outcome:
        outcome = Outcome()
        for model in self.subject_models:
            object_type = model._meta.label_lower
            count = self.evaluated(model, ctx).count()
            outcome.evaluated += count
            outcome.evaluated_by_type[object_type] = count
            rows = self.failing_rows(model, ctx).iterator(chunk_size=5000)
            for pk, name, owner_id, team_id, evidence, subject in rows:
                failure = Failure(object_type, pk, str(name)[:300], owner_id, team_id, evidence_text=evidence,
                                  subject_rank=subject)
                outcome.failures[failure.key] = failure
        return outcome


def scope_lookup(model: type[Model], scope_type: str) -> str | None:
    """How a subject model reaches a posture scope (team, system, workflow, owner)."""
    label = model._meta.model_name
    lookups = {
        ("credential", "team"): "team",
        ("credential", "owner"): "owner",
        ("credential", "system"): "system",
        ("credential", "workflow"): "bindings__workflow",
        ("credential", "credential"): "pk",
        ("workflow", "team"): "team",
        ("workflow", "owner"): "owner",
        ("workflow", "system"): "systems",
        ("workflow", "workflow"): "pk",
        ("system", "team"): "team",
        ("system", "owner"): "owner",
        ("system", "system"): "pk",
        # discovered items carry the team and owner of the system whose store or repository they were found in
        ("discovereditem", "team"): "team",
        ("discovereditem", "owner"): "owner",
        ("discovereditem", "system"): "source__system",
    }
    return lookups.get((label, scope_type))
