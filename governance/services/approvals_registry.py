"""The registry of approval actions: how each action's proposed change is validated and executed.

Capabilities plug their executors in with register_approval_action(); the approval engine
(governance.services.approvals) knows nothing of credentials or workflows. A payload schema is
a Django form: it coerces the proposed change into typed values when filed, again (against the
current state) right before execution, and renders the new-request page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from governance.audit import jsonable
from governance.json_input import JSONInputError, check_value
from governance.services.ids import id_error


@dataclass(frozen=True)
class DiffRow:
    """One line of the readable diff: a field, its current value and the proposed one."""

    label: str
    before: Any
    after: Any

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class ApprovalActionSpec:
    code: str
    label: str
    target_models: tuple[type[models.Model], ...]
    validate: Callable[..., dict]
    execute: Callable[..., models.Model | None]
    schema: type[forms.Form] | None = None
    fingerprint_fields: tuple[str, ...] = ()
    may_file: Callable[..., str | None] | None = None
    diff: Callable[..., list[DiffRow]] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def needs_target(self) -> bool:
        return bool(self.target_models)


ACTIONS: dict[str, ApprovalActionSpec] = {}


def register_approval_action(
    code: str, *, label: str, target_models: Iterable[type[models.Model]], validate: Callable[..., dict],
    execute: Callable[..., models.Model | None], schema: type[forms.Form] | None = None,
    fingerprint_fields: Iterable[str] = (), may_file: Callable[..., str | None] | None = None,
    diff: Callable[..., list[DiffRow]] | None = None,
) -> ApprovalActionSpec:
    """Plug an action in.

    validate(*, requester, target, payload) -> dict: the payload as plain JSON, or ValidationError.
      Called when the request is filed and again, against the current state, before execution.
    execute(*, request, target, payload, actor) -> the object it created (or None). payload is the
      re-validated one; actor is the system task "approval-<id>"; it calls the ordinary services.
    fingerprint_fields: the target's fields whose change since filing makes the request stale.
    may_file(*, person, target) -> None, or the reason this person may not ask for it.
    diff(*, target, payload) -> DiffRows of the proposed change against the current state.
    """
    spec = ApprovalActionSpec(
        code=str(code), label=str(label), target_models=tuple(target_models), validate=validate, execute=execute,
        schema=schema, fingerprint_fields=tuple(fingerprint_fields), may_file=may_file, diff=diff,
    )
    ACTIONS[str(code)] = spec
    return spec


def get_action(code: str) -> ApprovalActionSpec:
    _load_builtin_actions()
    try:
        return ACTIONS[code]
    except KeyError:
        raise ValidationError({"action": f"Unknown approval action {code!r}."}) from None


def all_actions() -> dict[str, ApprovalActionSpec]:
    _load_builtin_actions()
    return ACTIONS


def _load_builtin_actions() -> None:
    from governance.services import approvals_actions  # noqa: F401  (registers on import)

    if "privileged_rotation" not in ACTIONS:
        # cycle: rotation_approval registers itself in this registry
        from governance.services.rotation_approval import register_privileged_rotation_action

        register_privileged_rotation_action()


# Payload schemas (forms) and their JSON form


class ListField(forms.CharField):
    """Short strings, one per line or comma-separated (scopes)."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        if isinstance(value, list | tuple):
            return [str(v).strip() for v in value if str(v).strip()]
        text = super().to_python(value) or ""
        return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


class ExpiryDateField(forms.DateTimeField):
    """An expiry picked with a date input: a bare date means the end of that day (the current time zone).

    The payload keeps the full time, so a stored payload (ISO date-time) parses back to the same value.
    """

    widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and "T" not in value and ":" not in value:
            day = forms.DateField().to_python(value.strip())
            return timezone.make_aware(dt.datetime.combine(day, dt.time(23, 59, 59)))
        return super().to_python(value)


class PayloadForm(forms.Form):
    """A payload schema. It may narrow its choices to what the requester may use for this target."""

    def __init__(self, *args, requester=None, target=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.requester = requester
        self.target = target
        for field_ in self.fields.values():  # the server refuses a long value with a field error; no silent cut
            field_.widget.attrs.pop("maxlength", None)


def payload_to_json(cleaned: dict[str, Any]) -> dict[str, Any]:
    """Typed values to plain JSON that the same schema accepts again: objects by primary key."""
    out = {}
    for name, value in cleaned.items():
        if isinstance(value, models.Model):
            out[name] = value.pk
        elif isinstance(value, models.QuerySet | list | tuple) and value and isinstance(
            next(iter(value)), models.Model
        ):
            out[name] = sorted(obj.pk for obj in value)
        elif isinstance(value, models.QuerySet):
            out[name] = []
        elif isinstance(value, dt.datetime):
            out[name] = value.isoformat()
        else:
            out[name] = jsonable(value)
    return out


_MULTIPLE = (ListField, forms.MultipleChoiceField, forms.ModelMultipleChoiceField)


def _form_value(field_: forms.Field, value: Any) -> Any:
    """A JSON value as the form data its field reads; ValueError for a shape the field cannot take.

    A form field expects text (or a list of text for the multiple ones): a number is given as its
    text, and an object, a list for a single value, or a nested list is refused by name instead
    of failing inside the field (DateTimeField calls value.strip()).
    """
    if isinstance(field_, forms.BooleanField):
        return "on" if value else ""
    if value is None:
        return ""
    if isinstance(value, dict):
        raise ValueError("Give a single value, not an object.")
    if isinstance(value, list):
        if not isinstance(field_, _MULTIPLE):
            raise ValueError("Give a single value, not a list.")
        if any(isinstance(item, dict | list) for item in value):
            raise ValueError("Give a list of single values.")
        return [item if isinstance(item, str) else str(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def parse_payload(schema: type[PayloadForm], payload: dict[str, Any], *, requester=None,
                  target=None) -> dict[str, Any]:
    """Bind a payload to its schema; typed cleaned data, or a ValidationError naming the fields."""
    if not isinstance(payload, dict):
        raise ValidationError({"payload": "The proposed change must be an object of named fields."})
    try:
        check_value(payload)
    except JSONInputError as exc:
        raise ValidationError({exc.path or "payload": exc.message}) from None
    errors = {name: ["Unknown field for this action."] for name in sorted(set(payload) - set(schema.base_fields))}
    data = {}
    for name, value in payload.items():
        if name in errors:
            continue
        field_ = schema.base_fields[name]
        if value is not None and (message := _id_value_error(field_, value)):
            errors[name] = [message]
            continue
        try:
            data[name] = _form_value(field_, value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    form = schema(data=data, requester=requester, target=target)
    if not form.is_valid():
        for name, field_errors in form.errors.as_data().items():
            errors.setdefault(name, [message for error in field_errors for message in error.messages])
    if errors:
        raise ValidationError(errors)
    return form.cleaned_data


def _id_value_error(field_: forms.Field, value: Any) -> str | None:
    """A payload names objects by integer id: refuse true/false and fractions before the form sees them."""
    if isinstance(field_, forms.ModelMultipleChoiceField):
        if not isinstance(value, list | tuple):
            return "Give a list of ids."
        return next((message for item in value if (message := id_error(item))), None)
    if isinstance(field_, forms.ModelChoiceField) and value != "":
        return id_error(value)
    return None


def payload_fingerprint(*, target_type: str, payload: dict[str, Any]) -> str:
    """The identity of a proposed change: the target's type (app_label.model, or "") and the clean payload.

    With the action and the target's id it names a pending request; the database allows one.
    Migration 0004 holds a frozen copy: change both or neither.
    """
    canonical = json.dumps({"target_type": target_type, "payload": payload}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def fingerprint(target: models.Model | None, fields: Iterable[str]) -> str:
    """A hash of the target's fields a request depends on, to notice that it changed since filing."""
    if target is None:
        return ""
    values = {}
    names = {f.name: f for f in target._meta.concrete_fields}
    for name in fields:
        if name in names:  # a field the target's model lacks (lifecycle on a workflow) is skipped
            values[name] = getattr(target, names[name].attname)
    canonical = json.dumps(jsonable(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
