"""The registry of checks: code -> Check instance, in catalogue order (NHI-C01 ... NHI-C14)."""

from __future__ import annotations

from governance.checks.base import Check
from governance.lifecycle_checks import CredentialSourceResolves, RotationSucceeds

_REGISTRY: dict[str, Check] = {}


def register(cls: type[Check]) -> type[Check]:
    code = cls.code()
    if code in _REGISTRY and type(_REGISTRY[code]) is not cls:
        raise ValueError(f"two checks share the code {code!r}")
    _REGISTRY[code] = cls()
    return cls


def all_checks() -> dict[str, Check]:
    _load()
    return dict(_REGISTRY)


def get(code: str) -> Check:
    _load()
    try:
        return _REGISTRY[code]
    except KeyError:
        raise KeyError(f"no check with the code {code!r}; the codes are {', '.join(sorted(_REGISTRY))}") from None


def by_key(key: str) -> Check | None:
    _load()
    return _REGISTRY.get(key.replace("_", "-"))


def _load() -> None:
    from governance.checks import approvals, credentials, drift, estate, ownership, workflows  # noqa: F401

    if "credential-source-resolves" not in _REGISTRY:

        register(CredentialSourceResolves)
        register(RotationSucceeds)
    if "discovery-undeclared-identity" not in _REGISTRY:
        from governance.discovery.checks import DISCOVERY_CHECKS  # here: discovery's checks import the check base

        for check in DISCOVERY_CHECKS:
            register(check)
