"""Checks on credentials: where the secret lives, its age, expiry, scope, reuse, human use, vendor review."""

from __future__ import annotations

import datetime as dt

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Left

from governance.checks.base import Context, QueryCheck
from governance.checks.ownership import LIVE_CREDENTIAL
from governance.checks.registry import register
from governance.choices import (
    MANAGED_STORE_KINDS,
    CredentialKind,
    CredentialStatus,
    PrivilegeLevel,
    WorkflowStatus,
)
from governance.models import Binding, Credential

CREDENTIAL = ("governance.credential",)
EVIDENCE_TEXT_LIMIT = 500


def active_credentials():
    return Credential.objects.filter(status=CredentialStatus.ACTIVE)


@register
class SecretInManagedStore(QueryCheck):
    key = "secret_in_vault"
    severity = "critical"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("store_name", "store_kind", "store_path")}
    explanation = (
        "A live credential's secret must be held in a managed secrets store (OpenBao/Vault, a cloud secrets "
        "manager, CyberArk or a Kubernetes secret), where access is controlled, logged and rotatable. A "
        "secret in source code, a config file, a CI/CD variable, a chat or ticket, a spreadsheet or an "
        "unknown place leaks with every copy of that place and cannot be rotated safely."
    )
    remediation = (
        "Move the secret into a managed store, point the workflows that use it at the store path, then "
        "rotate it (the old value has been exposed where it was) and delete every old copy. Record the new "
        "store and path on the credential."
    )

    def evaluated(self, model, ctx: Context):
        return Credential.objects.filter(status__in=LIVE_CREDENTIAL)

    def failing(self, queryset, ctx: Context):
        return queryset.filter(Q(store__isnull=True) | ~Q(store__kind__in=MANAGED_STORE_KINDS)).annotate(
            store_name=F("store__name"),
            store_kind=F("store__kind"),
        )


def effective_max_age(limits) -> Coalesce:
    """The credential's own rotation policy, else the default for its kind (settings.STEWARD_THRESHOLDS)."""
    defaults = limits["rotation_max_age_days"]
    by_kind = Case(
        *(When(kind=kind, then=Value(int(days))) for kind, days in defaults.items()),
        default=Value(int(defaults.get("password", 90))),
        output_field=IntegerField(),
    )
    return Coalesce("rotation_max_age_days", by_kind, output_field=IntegerField())


@register
class RotationWithinPolicy(QueryCheck):
    key = "rotation_age"
    severity = "medium"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("kind", "last_rotated_at", "issued_at", "max_age_days", "due_at")}
    explanation = (
        "An active credential must have been rotated within its rotation policy's maximum age: its own "
        "policy when it has one, else the default for its kind ({rotation_defaults}). The age counts from "
        "the last rotation, else from issue, else from registration. Long-lived secrets give a leaked copy "
        "a long useful life."
    )
    remediation = (
        "Rotate the credential (through its connector where Steward has one, which records the new version), "
        "or, if the policy is wrong for it, have the policy changed through an approved request."
    )

    def evaluated(self, model, ctx: Context):
        return active_credentials()

    def failing(self, queryset, ctx: Context, now: dt.datetime | None = None):
        now = now or ctx.now
        one_day = Value(dt.timedelta(days=1), output_field=DurationField())
        max_age = ExpressionWrapper(F("max_age_days") * one_day, output_field=DurationField())
        return (
            queryset.annotate(
                rotated_basis=Coalesce("last_rotated_at", "issued_at", "created_at"),
                max_age_days=effective_max_age(ctx.thresholds),
                rotation_due_at=ExpressionWrapper(F("rotated_basis") + max_age, output_field=DateTimeField()),
            )
            .filter(rotation_due_at__lt=now)
            .annotate(due_at=F("rotation_due_at"))
        )


@register
class CertificateNotExpiring(QueryCheck):
    key = "cert_expiry"
    severity = "high"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("expires_at", "identifier")}
    explanation = (
        "An active certificate must not expire within {certificate_warning_days} days (an expired one still "
        "marked active fails too, and so does one whose expiry was never recorded). An expiring certificate "
        "stops the workflows that rely on it, usually at the worst moment, and invites hurried manual "
        "renewals."
    )
    remediation = (
        "Renew the certificate now (through the PKI connector where available), deploy it, and record the "
        "new serial and expiry. If it is no longer used, revoke it and mark it revoked."
    )

    def evaluated(self, model, ctx: Context):
        return active_credentials().filter(kind=CredentialKind.CERTIFICATE)

    def failing(self, queryset, ctx: Context):
        horizon = ctx.now + ctx.days("certificate_warning_days")
        return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__lte=horizon))


WILDCARD = Q(scopes_text__contains="*")
ADMIN_SCOPE = (
    Q(scopes_text__contains='"admin"') | Q(scopes_text__contains='"admin:') | Q(scopes_text__contains=':admin"')
)


@register
class LeastPrivilege(QueryCheck):
    key = "least_privilege"
    severity = "high"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("privilege_level", "scopes")}
    explanation = (
        "An active credential must hold only the access its workflows need: no admin privilege level and no "
        "wildcard ('*', 'repo:*') or admin scope ('admin', 'admin:org', 'org:admin'). Where broad access is "
        "really needed, the exception is an accepted risk: an approved risk-acceptance request with an "
        "expiry, after which the finding reopens and the need is reviewed again."
    )
    remediation = (
        "Replace the credential with one scoped to what its bindings use (the scopes used are listed on the "
        "workflow), then revoke the broad one. If broad access is unavoidable, request a risk acceptance "
        "from this finding and say why, for how long."
    )

    def evaluated(self, model, ctx: Context):
        return active_credentials()

    def failing(self, queryset, ctx: Context):
        return queryset.annotate(scopes_text=Cast("scopes", TextField())).filter(
            Q(privilege_level=PrivilegeLevel.ADMIN) | WILDCARD | ADMIN_SCOPE
        )


def _in_use_bindings():
    return Binding.objects.exclude(workflow__status=WorkflowStatus.RETIRED)


@register
class NotReused(QueryCheck):
    key = "no_reuse"
    severity = "medium"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("workflow_count",)}
    explanation = (
        "An active credential must be used by one workflow only (retired workflows do not count). A shared "
        "credential cannot be revoked for one workflow without stopping the others, its use cannot be told "
        "apart in the target system's logs, and its scopes grow to the union of everyone's needs."
    )
    remediation = (
        "Issue a separate credential per workflow, each scoped to what that workflow uses, move the "
        "workflows over one by one, then revoke the shared credential."
    )

    def evaluated(self, model, ctx: Context):
        return active_credentials()

    def failing(self, queryset, ctx: Context):
        shared = _in_use_bindings().order_by().values("credential_id").annotate(n=Count("pk")).filter(n__gt=1)
        count = (
            _in_use_bindings()
            .filter(credential=OuterRef("pk"))
            .order_by()
            .values("credential_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return queryset.filter(pk__in=shared.values("credential_id")).annotate(workflow_count=Subquery(count))


@register
class NoHumanUse(QueryCheck):
    key = "human_use"
    severity = "high"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("observed", "last_used_at")}
    explanation = (
        "A machine credential (active or suspended) must not be used by a person interactively. Human use "
        "hides who acted behind a workflow's identity, defeats the audit trail, and usually means the secret "
        "was copied to a laptop. The flag comes from the credential's record (human use detected, with the "
        "evidence seen)."
    )
    remediation = (
        "Rotate the credential (its value is known to a person), give the person their own named access, "
        "and find out why they needed the machine's. Clear the flag once the rotation is recorded."
    )

    def evaluated(self, model, ctx: Context):
        return Credential.objects.filter(status__in=LIVE_CREDENTIAL)

    def failing(self, queryset, ctx: Context):
        return queryset.filter(human_use_detected=True).annotate(
            observed=Left("human_use_evidence", EVIDENCE_TEXT_LIMIT)
        )


@register
class ThirdPartyReviewed(QueryCheck):
    key = "vendor_creds_reviewed"
    severity = "medium"
    subject_models = (Credential,)
    subject_types = CREDENTIAL
    evidence_fields = {"credential": ("system_name", "vendor", "third_party_reviewed_at")}
    explanation = (
        "An active credential for a third-party (vendor) system must have been reviewed within the last "
        "{third_party_review_days} days: that the vendor integration is still needed, that the vendor side "
        "holds only the access agreed, and that the vendor's own security posture is still acceptable."
    )
    remediation = (
        "Review the vendor integration with the vendor's owner, record the review date on the credential, "
        "and revoke the credential if the integration is no longer needed."
    )

    def evaluated(self, model, ctx: Context):
        return active_credentials().filter(system__third_party=True)

    def failing(self, queryset, ctx: Context):
        cutoff = ctx.now - ctx.days("third_party_review_days")
        overdue = Q(third_party_reviewed_at__isnull=True) | Q(third_party_reviewed_at__lt=cutoff)
        return queryset.filter(overdue).annotate(system_name=F("system__name"), vendor=F("system__vendor"))
