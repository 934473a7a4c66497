"""Two checks that turn lifecycle evidence into findings, for the checks capability to register.

They are not registered here (a check must also have its catalogue entry and control mapping,
which the catalogue owns). To wire them: import this module in governance.checks.registry._load()
with @register applied (or call register(CredentialSourceResolves) / register(RotationSucceeds)),
and add catalogue entries with the keys "credential_source_resolves" and "rotation_succeeds".
Lifecycle services already ask the sweep to re-evaluate these codes after the events that change
them (services.lifecycle.request_sweep), as soon as they are registered.
"""

from __future__ import annotations

from django.db.models import F, OuterRef, Subquery

from governance.checks.base import Context, QueryCheck
from governance.choices import CredentialStatus
from governance.connectors.registry import CONNECTOR_STORE_KINDS
from governance.models import Credential
from governance.models.lifecycle import ObservationState, RotationJob, RotationStatus

CREDENTIAL = ("governance.credential",)


class CredentialSourceResolves(QueryCheck):
    key = "credential_source_resolves"
    severity = "high"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("store_name", "store_path", "observed_detail", "broken_since")}
    explanation = (
        "A live credential kept in a managed store must resolve there: its path (or serial, role, ACL user) "
        "must exist, as the last reconciliation with the store observed. A reference that does not resolve "
        "means the inventory is wrong or the secret was moved or deleted outside Steward: nobody can rotate "
        "or revoke what cannot be found."
    )
    remediation = (
        "Find where the secret lives now and correct the credential's store and path, or, if it is gone, "
        "revoke the credential and issue a new one. The next reconciliation resolves the finding."
    )

    def evaluated(self, model, ctx: Context):
        return Credential.objects.filter(status__in=(CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED),
                                         store__kind__in=CONNECTOR_STORE_KINDS)

    def failing(self, queryset, ctx: Context):
        return queryset.filter(observation__state=ObservationState.BROKEN).annotate(
            store_name=F("store__name"), observed_detail=F("observation__detail"),
            broken_since=F("observation__broken_since"))


class RotationSucceeds(QueryCheck):
    key = "rotation_succeeds"
    severity = "medium"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("failed_job_id", "failed_at", "failure")}
    explanation = (
        "The last rotation of an active credential must have succeeded. A failed rotation leaves the old "
        "secret in use past its due date, and usually means the connector's own access or the target "
        "changed."
    )
    remediation = (
        "Read the failed attempt's reason on the rotation job, fix the cause (the store's token, the target's "
        "admin rights, a moved path), then rotate the credential again from its page."
    )

    def evaluated(self, model, ctx: Context):
        return Credential.objects.filter(status=CredentialStatus.ACTIVE)

    def failing(self, queryset, ctx: Context):
        last = RotationJob.objects.filter(
            credential=OuterRef("pk"), status__in=(RotationStatus.SUCCEEDED, RotationStatus.FAILED),
        ).order_by("-finished_at", "-pk")
        return queryset.annotate(
            last_status=Subquery(last.values("status")[:1]), failed_job_id=Subquery(last.values("pk")[:1]),
            failed_at=Subquery(last.values("finished_at")[:1]), failure=Subquery(last.values("last_error")[:1]),
        ).filter(last_status=RotationStatus.FAILED)
