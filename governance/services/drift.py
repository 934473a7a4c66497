"""Drift: reconciliation and drills read what an identity may do in its own system and judge it.

The declaration is the credential's privilege level, its scopes (as governance.connectors.scopes
reads them for its connector), the store version Steward last wrote or recorded, and the privileges
last observed as declared (the baseline Steward accepted). The connector reads and compares
(Connector.observe_privilege); this module builds the declaration, turns the report into the
observation's fields, and says whether a drill may pass. A reconciliation that finds drift records
the state "drifted" with the reasons; the check no-privilege-drift turns it into a finding.
"""

from __future__ import annotations

from typing import Any

from governance.connectors import registry
from governance.connectors.base import Connector, CredentialRef, Unsupported
from governance.connectors.drift import DeclaredPrivilege, DriftReport
from governance.models import Credential
from governance.models.lifecycle import CredentialObservation, ObservationState

DRIFT_CHECK = "no-privilege-drift"


def _baseline(credential: Credential) -> tuple[str, ...]:
    try:
        observation = credential.observation  # loaded with the credential where the caller selected it
    except CredentialObservation.DoesNotExist:
        return ()
    return tuple(observation.privilege_baseline or ())


def declared_privilege(credential: Credential) -> DeclaredPrivilege:
    """What Steward declared and last accepted for the credential's identity."""
    return DeclaredPrivilege(level=credential.privilege_level or "", scopes=tuple(credential.scopes or ()),
                             store_version=credential.store_version or "", baseline=_baseline(credential))


def credential_drift_read(*, credential: Credential, connector: Connector | None = None,
                          ref: CredentialRef | None = None) -> DriftReport | None:
    """The connector's drift report for the credential; None when its connector reads no privileges.

    Connector errors other than Unsupported propagate: a drift that cannot be read is not "no drift".
    """
    if connector is None or ref is None:
        connector, ref = registry.connector_for(credential)
    try:
        return connector.observe_privilege(ref, declared_privilege(credential))
    except Unsupported:
        return None


def drift_observation_values(report: DriftReport | None, detail: str) -> dict[str, Any]:
    """The observation fields a drift report sets: drifted with the reasons, or the privileges accepted."""
    if report is None:
        return {"privileges": [], "drift": []}
    values: dict[str, Any] = {"privileges": list(report.privileges), "drift": list(report.reasons)}
    if report.drifted:
        values.update(state=ObservationState.DRIFTED, detail=f"{detail}; {report.summary}"[:1000])
    else:
        values["privilege_baseline"] = list(report.privileges)
    return values


def drill_drift_verdict(credential: Credential, connector: Connector, ref: CredentialRef) -> tuple[bool, list[str]]:
    """A drill passes a credential only when its identity has not drifted: (passes, proof lines)."""
    report = credential_drift_read(credential=credential, connector=connector, ref=ref)
    if report is None:
        return True, []
    lines = [f"Drift: {line}" for line in report.checked]
    if report.drifted:
        return False, [*lines, f"Drift FAILED: {report.summary}"]
    return True, [*lines, f"Drift: ok ({report.summary})"]
