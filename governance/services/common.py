"""Helpers every write service shares: snapshots for before/after, validation, scope checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models

from governance import permissions, roles
from governance.audit import Actor, audit_append, field_changes
from governance.secret_guard import reject_secret_values


class ScopeViolation(PermissionDenied):
    """The write would leave the object outside the writer's own scope; it is rolled back."""


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    data = {}
    for name in fields:
        field = instance._meta.get_field(name)
        if field.many_to_many:
            data[name] = sorted(instance.pk and getattr(instance, name).values_list("pk", flat=True) or [])
        elif field.is_relation:
            data[name] = getattr(instance, field.attname)
        else:
            data[name] = getattr(instance, name)
    return data


def ensure_may_write(actor: Actor) -> None:
    """Auditors change nothing; anonymous callers change nothing."""
    if actor.kind == "system":
        return
    if actor.user is None or not roles.is_signed_in(actor.user):
        raise PermissionDenied("Sign in to make changes.")
    if roles.is_auditor(actor.user) and not roles.is_security_admin(actor.user):
        raise PermissionDenied("Auditors read everything and change nothing.")


def ensure_can_change(actor: Actor, instance: models.Model) -> None:
    ensure_may_write(actor)
    if actor.kind != "system" and not permissions.can(actor.user, permissions.CHANGE, instance):
        raise PermissionDenied("You may not change this object.")


def ensure_security_admin(actor: Actor) -> None:
    ensure_may_write(actor)
    if actor.kind != "system" and not roles.is_security_admin(actor.user):
        raise PermissionDenied("Only security admins may do this.")


def ensure_still_in_scope(actor: Actor, instance: models.Model) -> None:
    """After a write: the writer must still be able to change what they wrote."""
    if actor.kind == "system" or actor.user is None:
        return
    if not permissions.can(actor.user, permissions.CHANGE, instance):
        raise ScopeViolation(
            "This change would move the object out of your own scope (owner or team); nothing was saved."
        )


def apply_and_validate(
    instance: models.Model, data: Mapping[str, Any], *, text_fields: Iterable[str]
) -> dict[str, Any]:
    """Set plain fields from data, reject secret values, run model validation. Returns m2m values."""
    reject_secret_values(data, text_fields)
    m2m = {}
    unknown = []
    for name, value in data.items():
        try:
            field = instance._meta.get_field(name)
        except Exception:
            unknown.append(name)
            continue
        if field.many_to_many:
            m2m[name] = value
        else:
            setattr(instance, name, value)
    if unknown:
        raise ValidationError({name: "Unknown field." for name in unknown})
    instance.full_clean()
    return m2m


def record(
    *, actor: Actor, action: str, instance: models.Model, summary: str, before: dict, after: dict
):
    return audit_append(
        actor=actor, action=action, target=instance, summary=summary, changes=field_changes(before, after)
    )
