"""Connector health of a secret store: the "Test connection" probe and its recorded outcome.

A secret store has no owners of its own (it is shared infrastructure), so testing it is a
security admin's action. The probe is the connector's verification mode (Connector.probe): it
proves reachability and permissions against a credential held in the store and changes nothing.
Each try is recorded as one audit event (governance.selectors.stores reads the last success and
the last error from them), so a connection error is never lost between two page loads.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor, audit_append
from governance.choices import CredentialStatus
from governance.connectors import registry
from governance.connectors.base import ConnectorError, ProbeCheck, ProbeResult
from governance.models import Credential, SecretStore
from governance.selectors.stores import PROBE_FAILED, PROBE_OK, STORE_PROBED
from governance.services.common import ensure_security_admin

# A credential in one of these states no longer resolves in the store: it proves nothing about the store.
_GONE = (CredentialStatus.REVOKED, CredentialStatus.REQUESTED, CredentialStatus.PROVISIONING,
         CredentialStatus.PROVISIONING_FAILED)


def _probe_credential(store: SecretStore) -> Credential | None:
    return (Credential.objects.filter(store=store).exclude(status__in=_GONE)
            .select_related("store", "system__connector_target").order_by("pk").first())


def _run_probe(store: SecretStore, credential: Credential | None) -> ProbeResult:
    if credential is None:
        return ProbeResult((ProbeCheck("Credential to probe with", False,
                                       "no credential held in this store can be probed: register one first"),))
    try:
        connector, ref = registry.connector_for(credential)
        return connector.probe(ref)
    except ConnectorError as error:  # Misconfigured settings, a missing environment variable, Unsupported
        return ProbeResult((ProbeCheck("Connector", False, error.reason),))


def secret_store_probe(*, actor: Actor, store: SecretStore) -> ProbeResult:
    """Run the store's connector probe and record its outcome (the attempt's time, ok or the error).

    Security admins only; a store Steward has no connector for is refused with a field error and
    nothing is recorded. The probe runs outside any transaction (it waits on the network); only
    its record is written, in one transaction with its audit event.
    """
    ensure_security_admin(actor)
    if store.kind not in registry.CONNECTOR_STORE_KINDS:
        raise ValidationError({"store": f"Steward has no connector for {store.get_kind_display()} stores: "
                                        "there is no connection to test."})
    credential = _probe_credential(store)
    attempted_at = timezone.now()
    result = _run_probe(store, credential)
    outcome = PROBE_OK if result.ok else PROBE_FAILED
    with transaction.atomic():
        audit_append(
            actor=actor, action=STORE_PROBED, target=store,
            summary=f"Connection test of {store}: {'ok' if result.ok else 'failed'}",
            changes={"outcome": outcome, "attempted_at": attempted_at.isoformat(), "detail": result.summary[:1000],
                     "credential": credential.name if credential else "",
                     "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail[:300]} for c in result.checks]},
        )
    return result
