"""The drift check: a live credential whose identity, as its own system shows it, drifted from its declaration."""

from __future__ import annotations

from django.db.models import F

from governance.checks.base import Context, QueryCheck
from governance.checks.registry import register
from governance.choices import CredentialStatus
from governance.connectors.registry import CONNECTOR_STORE_KINDS
from governance.models import Credential
from governance.models.lifecycle import ObservationState

CREDENTIAL = ("governance.credential",)


@register
class NoPrivilegeDrift(QueryCheck):
    key = "no_privilege_drift"
    severity = "high"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("privilege_level", "observed_drift", "drift_since")}
    explanation = (
        "A live credential's identity must hold no more than it declares (its privilege level and scopes), and "
        "its secret must change only through Steward. The last reconciliation read the identity in its own "
        "system (PostgreSQL role attributes, memberships and grants; Redis ACL rules; OpenBao policies; the "
        "stored secret's version and whether it still signs in) and found privileges above the declaration, or "
        "a change Steward did not make: someone widened it or took it over outside the approval path."
    )
    remediation = (
        "Find out who changed the identity and why (the system's own log). If the change was not authorised, "
        "treat it as an incident: use the workflow's kill switch, then revoke the extra privileges and rotate "
        "the secret through Steward. If it was needed, revert it and ask for it through a privileged scope "
        "change request. The next reconciliation resolves the finding once the identity matches again."
    )

    def evaluated(self, model, ctx: Context):
        return Credential.objects.filter(status__in=(CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED),
                                         store__kind__in=CONNECTOR_STORE_KINDS)

    def failing(self, queryset, ctx: Context):
        return queryset.filter(observation__state=ObservationState.DRIFTED).annotate(
            observed_drift=F("observation__drift"), drift_since=F("observation__drift_since"))
