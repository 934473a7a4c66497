"""Reads of provisioning runs: the one behind a credential the user may already see."""

from __future__ import annotations

from governance.models.provisioning import CredentialProvisioning


def provisioning_of(*, credential) -> CredentialProvisioning | None:
    """The provisioning run of a credential (already restricted by its caller), or None when Steward did not
    create it (it was registered, or imported)."""
    return CredentialProvisioning.objects.filter(credential_id=credential.pk).first()
