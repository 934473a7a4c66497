"""Factories and helpers for the checks capability's tests."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from governance.audit import Actor
from governance.checks import Context, get
from governance.models.checks import Check, Finding, FindingState


def load_catalogue():
    from governance.services.catalogue import catalogue_load

    return catalogue_load(actor=Actor.system(task_id="test"))


def failing(code: str, model=None, ctx: Context | None = None) -> set[int]:
    """Pks of the objects (of model, by default the check's first subject model) the check fails."""
    definition = get(code)
    model = model or definition.subject_models[0]
    return set(definition.failing_queryset(model, ctx or Context.current()).values_list("pk", flat=True))


def evaluated(code: str, model=None, ctx: Context | None = None) -> set[int]:
    definition = get(code)
    model = model or definition.subject_models[0]
    return set(definition.evaluated(model, ctx or Context.current()).values_list("pk", flat=True))


def evidence(code: str, obj) -> dict:
    """The evidence the check records for obj (which must fail it)."""
    outcome = get(code).evaluate(Context.current())
    return outcome.failures[(obj._meta.label_lower, obj.pk)].evidence


def aware(text: str):
    """A datetime from evidence: PostgreSQL writes it with its offset, SQLite as naive UTC."""
    from django.utils.dateparse import parse_datetime

    value = parse_datetime(text)
    return value if value is None or timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Finding

    failed_check = factory.LazyFunction(lambda: Check.objects.get(code="rotation-age"))
    object_type = "governance.credential"
    object_id = factory.Sequence(lambda n: 100000 + n)
    object_repr = factory.LazyAttribute(lambda f: f"object-{f.object_id}")
    state = FindingState.OPEN
    first_seen_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)

    @classmethod
    def for_object(cls, obj, code: str = "rotation-age", **kwargs):
        return cls(failed_check=Check.objects.get(code=code), object_type=obj._meta.label_lower, object_id=obj.pk,
                   object_repr=str(obj), owner=getattr(obj, "owner", None), team=getattr(obj, "team", None), **kwargs)
