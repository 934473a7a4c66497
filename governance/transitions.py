"""Declared state machines and the one compare-and-set that moves a state.

Every status field that matters (a workflow's status, a credential's status, a system's lifecycle, and
the claims of approval requests, lifecycle jobs, kill-switch activations and report jobs) changes only
through compare_and_set(): one UPDATE guarded by the state it expects, so two callers racing for the
same transition cannot both win. A StateMachine lists which transitions exist, who may make them and
which need an approved request; services ask it before they call compare_and_set().
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import models
from django.utils import timezone


@dataclass(frozen=True)
class Transition:
    """One declared move of a state field, with the operation that makes it and who may."""

    name: str
    sources: frozenset[str]
    target: str
    who: str
    needs_approval: str = ""  # the approval action whose executed request is the only way in, or ""
    by: tuple[str, ...] = ()  # the roles that may make it (names the machine's owner checks), for enforcement

    def __post_init__(self):
        object.__setattr__(self, "sources", frozenset(self.sources))


@dataclass(frozen=True)
class StateMachine:
    """The declared transitions of one model's state field."""

    model: type[models.Model]
    field: str
    transitions: tuple[Transition, ...] = field(default_factory=tuple)
    initial: str = ""  # the state a new object starts in unless a security admin says otherwise

    def named(self, name: str) -> Transition:
        for transition in self.transitions:
            if transition.name == name:
                return transition
        raise LookupError(f"{name} is not a declared transition of {self.model.__name__}.{self.field}")

    def allows(self, source: str, target: str) -> bool:
        return any(source in t.sources and t.target == target for t in self.transitions)

    def transitions_from(self, source: str) -> list[Transition]:
        return [t for t in self.transitions if source in t.sources]

    def states(self) -> list[str]:
        return [value for value, _label in self.model._meta.get_field(self.field).choices]


class TransitionRefused(Exception):
    """The object was not in a state the transition starts from (someone else moved it first)."""


def compare_and_set(
    model: type[models.Model],
    pk,
    *,
    field: str,
    sources: Iterable[str] | str,
    target: str,
    where: dict | models.Q | None = None,
    **fields,
) -> bool:
    """Move model(pk).field from one of sources to target in one guarded UPDATE; True when this call did.

    where adds further guards (a lease's token, a version), as keyword filters or a Q; fields are
    written in the same statement. updated_at is stamped where the model has one.
    """
    sources = [sources] if isinstance(sources, str) else list(sources)
    values = {field: target, **fields}
    if "updated_at" not in values and any(f.name == "updated_at" for f in model._meta.concrete_fields):
        values["updated_at"] = timezone.now()
    guarded = model.objects.filter(pk=pk, **{f"{field}__in": sources})
    guarded = guarded.filter(where) if isinstance(where, models.Q) else guarded.filter(**(where or {}))
    return guarded.update(**values) == 1


def machine_transition(machine: StateMachine, instance: models.Model, name: str, **fields) -> Transition:
    """Make the named transition on instance (compare-and-set), refreshing instance; raises TransitionRefused."""
    transition = machine.named(name)
    current = getattr(instance, machine.field)
    if current not in transition.sources:
        raise TransitionRefused(
            f"{instance} is {current}: {transition.name} starts only from {', '.join(sorted(transition.sources))}."
        )
    if not compare_and_set(machine.model, instance.pk, field=machine.field, sources=[current],
                           target=transition.target, **fields):
        raise TransitionRefused(f"{instance} changed while {transition.name} ran; nothing was changed.")
    setattr(instance, machine.field, transition.target)
    for name_, value in fields.items():
        setattr(instance, name_, value)
    return transition
