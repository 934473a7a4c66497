"""Reads about secret stores beyond the inventory list: connector health from the recorded probes."""

from __future__ import annotations

from dataclasses import dataclass

from governance.models import AuditEvent, SecretStore

# The audit action of one "Test connection" run (governance.services.store_health.secret_store_probe).
STORE_PROBED = "secretstore.probed"
PROBE_OK, PROBE_FAILED = "ok", "failed"


@dataclass(frozen=True)
class StoreHealth:
    """The latest successful and the latest failed probe of a store (AuditEvent rows, or None)."""

    last_success: AuditEvent | None
    last_error: AuditEvent | None

    @property
    def state(self) -> str:
        """"reachable", "failing" (the latest try failed) or "unknown" (never tested)."""
        if self.last_success is None and self.last_error is None:
            return "unknown"
        if self.last_error is None:
            return "reachable"
        if self.last_success is None:
            return "failing"
        return "reachable" if self.last_success.sequence > self.last_error.sequence else "failing"


def secret_store_health(*, store: SecretStore) -> StoreHealth:
    """Two indexed reads (object_type, object_id, sequence): the last success and the last error."""
    probes = AuditEvent.objects.filter(object_type=store._meta.label_lower, object_id=str(store.pk),
                                       action=STORE_PROBED).order_by("-sequence")
    return StoreHealth(last_success=probes.filter(changes__outcome=PROBE_OK).first(),
                       last_error=probes.filter(changes__outcome=PROBE_FAILED).first())


def secret_store_settings_fields(*, store: SecretStore) -> list[tuple[str, str]]:
    """The store's non-secret connection settings as (label, value) pairs for a page, in key order."""
    fields = []
    for key in sorted(store.settings or {}):
        value = store.settings[key]
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        fields.append((key.replace("_", " ").capitalize(), str(value)))
    return fields
