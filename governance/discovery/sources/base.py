"""What every discovery source shares: typed settings, the Observed item it yields, and its errors.

A source reads; it never writes to the system it looks at and never reads a secret value. A source that
cannot reach its system raises SourceError with a reason safe to store and show (the run records it as
the source's last error), never an empty result that would look like "nothing there".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class SourceError(Exception):
    """The source could not be read. `reason` is safe to store and show."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason[:1000]


class SourceMisconfigured(SourceError):
    """The settings are wrong, or the named environment variable is not set."""


@dataclass(frozen=True)
class Observed:
    """One thing a source saw. facts never hold a secret value; fingerprint is set for hard-coded secrets."""

    kind: str
    natural_key: str
    name: str
    facts: dict[str, Any] = field(default_factory=dict)
    privileged: bool = False
    fingerprint: str = ""


class Progress(Protocol):
    def __call__(self, text: str, **counts: int) -> None: ...


def no_progress(text: str, **counts: int) -> None:
    return None


class Source(Protocol):
    def observe(self, progress: Progress = no_progress) -> Iterator[Observed]: ...


def credential_from_env(var_name: str, *, what: str, required: bool = True) -> str | None:
    """A source's credential, read from the environment variable its settings name (never stored)."""
    if not var_name:
        if required:
            raise SourceMisconfigured(f"No environment variable is named for {what}.")
        return None
    value = os.environ.get(var_name)
    if value is None and required:
        raise SourceMisconfigured(f"The environment variable {var_name} ({what}) is not set.")
    return value


def setting(raw: dict, name: str, kind: type, default: Any) -> Any:
    """One typed setting, with a clear error naming it."""
    value = raw.get(name, default)
    try:
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind is list:
            return [str(v) for v in (value or [])] if not isinstance(value, str) else [v.strip() for v in
                                                                                        value.split(",") if v.strip()]
        return kind(value)
    except (TypeError, ValueError):
        raise SourceMisconfigured(f"Setting {name!r} must be a {kind.__name__}.") from None
