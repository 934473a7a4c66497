"""Typed readers for the environment variables the settings are made of.

A wrong value stops the process at start-up with the variable's name and what it must be, instead
of surfacing later as a TypeError deep in a task. Every STEWARD_* variable is read through these
and listed in README.md (a test keeps the two in step).
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def _bounded(name: str, value, raw: str, minimum, maximum, kind: str):
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be {kind} of at least {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be {kind} of at most {maximum}.")
    return value


def env_int(name: str, default: int, *, minimum: int | None = 0, maximum: int | None = None) -> int:
    raw = _raw(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be a whole number.") from None
    return _bounded(name, value, raw, minimum, maximum, "a whole number")


def env_float(name: str, default: float, *, minimum: float | None = 0, maximum: float | None = None) -> float:
    raw = _raw(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be a number.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={raw!r}: must be a finite number.")
    return _bounded(name, value, raw, minimum, maximum, "a number")


def env_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    word = raw.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: must be one of 1/0, true/false, yes/no, on/off.")


def env_list(name: str, default: tuple[str, ...] = ()) -> list[str]:
    """A comma-separated list; blanks between commas are ignored."""
    raw = _raw(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]
