"""The checks that turn discovery into findings, through the existing checks machinery (governance.checks).

Subjects are discovered items (governance.discovereditem), except "declared but missing", whose subject is
the declared credential. An item counts while its source's last run saw it (present) and while no
unexpired dismissal covers it; adopting or linking it makes it matched, which passes. Registered from
governance.checks.registry; mapped to controls in governance/catalogue/control-catalogue.yaml.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q, Subquery

from governance.checks.base import Context, QueryCheck
from governance.choices import CredentialStatus
from governance.models import Credential
from governance.models.discovery import (
    IDENTITY_KINDS,
    DiscoveredItem,
    DiscoveredKind,
    Reconciliation,
    ReviewState,
)

ITEM = ("governance.discovereditem",)
ITEM_EVIDENCE = ("source_name", "kind", "natural_key", "privileged", "facts_digest")


def _not_dismissed(ctx: Context) -> Q:
    return ~Q(review=ReviewState.DISMISSED) | Q(dismissed_until__lte=ctx.now)


class DiscoveryItemCheck(QueryCheck):
    subject_models = (DiscoveredItem,)
    subject_types = ITEM
    evidence_fields = {"discovereditem": ITEM_EVIDENCE}
    kinds: tuple[str, ...] = ()
    state: str = Reconciliation.UNDECLARED

    def evaluated(self, model, ctx: Context):
        return DiscoveredItem.objects.filter(present=True, kind__in=self.kinds)

    def condition(self) -> Q:
        return Q()

    def failing(self, queryset, ctx: Context):
        return queryset.filter(self.condition(), _not_dismissed(ctx), reconciliation=self.state).annotate(
            source_name=F("source__name"))


class UndeclaredIdentity(DiscoveryItemCheck):
    key = "discovery_undeclared_identity"
    severity = "high"
    kinds = IDENTITY_KINDS
    explanation = (
        "Every non-human identity found in a store, server or repository must be declared in the inventory, with "
        "an owner, a credential source and an approval path. An identity nobody declared (a shadow account, a "
        "forgotten AppRole, a KV secret no credential points to) is one nobody rotates, reviews or offboards."
    )
    remediation = (
        "Open the item in the discovery queue: adopt it (register it, with its owner and approval path), link it "
        "to the credential it is, or dismiss it with a reason and an expiry if it is not a governed identity."
    )


class UndeclaredWorkflow(DiscoveryItemCheck):
    key = "discovery_undeclared_workflow"
    severity = "high"
    kinds = (DiscoveredKind.WORKFLOW,)
    explanation = (
        "Every automated workflow (a pipeline, a scheduled job, a service that runs without a person) found in a "
        "repository must be declared, with an owner, its credentials in a managed store, an approval path and "
        "a shutdown procedure. An undeclared workflow acts with secrets nobody governs and cannot be stopped on "
        "purpose."
    )
    remediation = (
        "Adopt the workflow from the discovery queue (the registration opens with its platform, triggers and "
        "secrets filled in), or link it to the declared workflow it is, or dismiss it with a reason."
    )


class HardCodedSecret(DiscoveryItemCheck):
    key = "discovery_hard_coded_secret"
    severity = "critical"
    kinds = (DiscoveredKind.HARD_CODED_SECRET,)
    state = Reconciliation.HARD_CODED_SECRET
    explanation = (
        "No secret value may be written into source code, configuration, CI definitions or their history: anyone "
        "who can read the repository (or a clone, a fork, a backup) holds it. A secret removed in a later commit "
        "is still in the history."
    )
    remediation = (
        "Treat the secret as leaked: revoke or rotate it now, move it to a managed store and reference it from "
        "there, then remove it from the file (and rewrite history where that is possible). Dismiss the item only "
        "for a test fixture or a false positive, with the reason."
    )


class PrivilegedUndeclaredIdentity(DiscoveryItemCheck):
    key = "discovery_privileged_undeclared_identity"
    severity = "critical"
    kinds = (*IDENTITY_KINDS, DiscoveredKind.WORKFLOW)
    explanation = (
        "An undeclared identity or workflow with privilege (a superuser or CREATEROLE login, a Redis user with "
        "+@all or ~*, a token or AppRole with the root policy, a pipeline with write permissions) is the "
        "most dangerous kind of shadow access: it can change access itself and nobody reviews it."
    )
    remediation = (
        "Find its owner today and either adopt it with a least-privilege scope and an approval path, or disable "
        "it. Until then treat it as an incident."
    )

    def condition(self) -> Q:
        return Q(privileged=True)


class DeclaredMissing(QueryCheck):
    key = "discovery_declared_missing"
    severity = "high"
    subject_models = (Credential,)
    subject_types = ("governance.credential",)
    evidence_fields = {"credential": ("discovery_source", "expected_at", "missing_since")}
    explanation = (
        "A declared credential must be where the inventory says: discovery read its store or server and did not "
        "find it (the KV path, the certificate's serial, the login role or ACL user). The credential source is "
        "broken: the inventory is wrong, or the secret was moved or deleted outside Steward."
    )
    remediation = (
        "Correct the credential's store, path or identifier, or, if it is gone, revoke the credential. The next "
        "discovery run of the source resolves the finding."
    )

    def evaluated(self, model, ctx: Context):
        return Credential.objects.filter(status__in=(CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED))

    def failing(self, queryset, ctx: Context):
        missing = DiscoveredItem.objects.filter(linked_credential=OuterRef("pk"), reconciliation=Reconciliation.MISSING,
                                                present=False).filter(_not_dismissed(ctx)).order_by("pk")
        return queryset.filter(Exists(missing)).annotate(
            discovery_source=Subquery(missing.values("source__name")[:1]),
            expected_at=Subquery(missing.values("natural_key")[:1]),
            missing_since=Subquery(missing.values("first_seen_at")[:1]))


DISCOVERY_CHECKS = (UndeclaredIdentity, UndeclaredWorkflow, HardCodedSecret, PrivilegedUndeclaredIdentity,
                    DeclaredMissing)
