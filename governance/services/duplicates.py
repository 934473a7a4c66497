"""A unique constraint the database enforced, as a field message for the person who hit it.

Services validate uniqueness before they write, but two identical requests at the same moment
both pass that check and one of them meets the database's constraint. That loser must hear "a
credential with this system and identifier already exists" (a 409 in the API, a form error in the
portal), never a 500. unique_violation_error() reads which constraint failed from the database's
error and names the model's fields; any other IntegrityError is a real fault and is re-raised.
"""

from __future__ import annotations

import re

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models

UNIQUE_VIOLATION = "23505"  # PostgreSQL SQLSTATE unique_violation
_DETAIL_COLUMNS = re.compile(r"Key \(([^)]*)\)=")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")


def _diag(exc: IntegrityError):
    return getattr(exc.__cause__, "diag", None)


def constraint_name(exc: IntegrityError) -> str:
    diag = _diag(exc)
    return (getattr(diag, "constraint_name", None) or "") if diag is not None else ""


def is_unique_violation(exc: IntegrityError, name: str | None = None) -> bool:
    """Whether exc is a unique violation (of the constraint called name, when given)."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == UNIQUE_VIOLATION:
        return name is None or constraint_name(exc) == name
    if _SQLITE_UNIQUE.search(str(exc)):
        return name is None or _sqlite_matches(exc, name)
    return False


def _sqlite_matches(exc: IntegrityError, name: str) -> bool:
    found = _violated(exc)
    return found is not None and found[2] == name


def _model_for_table(table: str) -> type[models.Model] | None:
    return next((m for m in apps.get_models() if m._meta.db_table == table), None)


def _unique_sets(model: type[models.Model]):
    """(fields, constraint name, custom message) for each unique rule of the model."""
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            custom = constraint.violation_error_message
            custom = "" if custom == models.UniqueConstraint.default_violation_error_message else str(custom)
            yield tuple(constraint.fields), constraint.name, custom
    for fields in model._meta.unique_together:
        yield tuple(fields), "", ""
    for field in model._meta.local_fields:
        if field.unique and not field.primary_key:
            yield (field.name,), f"{model._meta.db_table}_{field.column}_key", ""


def _columns(model, fields) -> set[str]:
    return {model._meta.get_field(name).column for name in fields}


def _violated(exc: IntegrityError):
    """(model, fields, constraint name, custom message) of the violated rule, or None."""
    diag = _diag(exc)
    if diag is not None and getattr(diag, "table_name", None):
        model = _model_for_table(diag.table_name)
        if model is None:
            return None
        name = diag.constraint_name or ""
        detail = _DETAIL_COLUMNS.search(diag.message_detail or "")
        columns = {c.strip().strip('"') for c in detail.group(1).split(",")} if detail else set()
        for fields, rule_name, custom in _unique_sets(model):
            if (name and name == rule_name) or (columns and columns == _columns(model, fields)):
                return model, fields, rule_name, custom
        return None
    match = _SQLITE_UNIQUE.search(str(exc))
    if match is None:
        return None
    pairs = [part.strip().split(".", 1) for part in match.group(1).split(",")]
    model = _model_for_table(pairs[0][0]) if pairs and len(pairs[0]) == 2 else None
    if model is None:
        return None
    columns = {column for _, column in pairs}
    for fields, rule_name, custom in _unique_sets(model):
        if columns == _columns(model, fields):
            return model, fields, rule_name, custom
    return None


def unique_violation_error(exc: IntegrityError) -> ValidationError | None:
    """A ValidationError naming the field of the unique rule exc broke; None for any other IntegrityError."""
    if not is_unique_violation(exc):
        return None
    found = _violated(exc)
    if found is None:
        return ValidationError({"__all__": "This already exists (someone made the same thing at the same time)."})
    model, fields, _, custom = found
    if custom:
        return ValidationError({fields[0]: custom})
    message = model().unique_error_message(model, fields)
    return ValidationError({fields[-1]: message.messages[0]})
