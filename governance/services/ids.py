"""Object ids in request bodies: positive integers, never booleans or fractions.

Python counts True as 1, so without this check JSON `true` named object 1 (`new_team: true`
became team 1). Every path that takes an id from a body (API related fields, approval payloads,
imports) asks id_error() or parse_id() here, so the rule is the same everywhere.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError

MAX_ID = 2**63 - 1
NOT_AN_ID = "Give the object's id as a whole number (not true/false, not a fraction)."


def id_error(value: Any) -> str | None:
    """Why value is not an object id, or None when it is one (an int, an integral float, a digit string)."""
    if isinstance(value, bool):
        return NOT_AN_ID
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return NOT_AN_ID
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            return NOT_AN_ID
        value = int(text)
    elif not isinstance(value, int):
        return NOT_AN_ID
    if not 1 <= value <= MAX_ID:
        return f"Give an id between 1 and {MAX_ID}."
    return None


def parse_id(value: Any, *, field: str) -> int:
    """value as an int id, or a ValidationError naming field."""
    message = id_error(value)
    if message:
        raise ValidationError({field: message})
    return int(value.strip() if isinstance(value, str) else value)
