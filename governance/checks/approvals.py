"""Approval with separation of duties, read from the approvals capability's requests and decisions.

The rule: an active credential that is privileged (privilege level admin, or write while bound to
privileged automation: a running workflow that can provision, change, rotate or revoke access)
passes when an executed request created or changed it (provision_credential whose result is the
credential, or privileged_scope_change whose target is the credential) into exactly its current
privilege level and scopes (the request's payload is the fingerprint of the state it approved), with
at least one approve decision that counts for someone other than the requester: not the requester,
not the owner of the integration that filed it, not through an integration the requester owns. An
old request for other scopes does not cover a later change made some other way.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, CharField, Exists, OuterRef, Q, Value, When
from django.db.models.fields.json import KT, KeyTransform
from django.db.models.functions import Cast, Coalesce

from governance.checks.base import Context, JSONText, QueryCheck
from governance.checks.ownership import RUNNING_WORKFLOW
from governance.checks.registry import register
from governance.choices import CredentialStatus, PrivilegeLevel
from governance.models import Binding, Credential
from governance.models.approvals import ApprovalDecision, ApprovalRequest

PROVISION, SCOPE_CHANGE, EXECUTED, APPROVE = (
    "provision_credential",
    "privileged_scope_change",
    "executed",
    "approve",
)
# The requests' generic object ids are text, so the credential's pk is compared as text.
CREDENTIAL_PK_AS_TEXT = Cast(OuterRef("pk"), output_field=CharField())


def separated_approval() -> Exists:
    """An approve decision on the outer request that counts for someone other than its requesters (the
    requester and the owner of the integration that filed it): neither the approver nor the owner of
    the integration the decision was made through is one of them."""
    filing_owner = Coalesce(OuterRef("filed_by_integration_owner"), Value(0))
    decisions = (
        ApprovalDecision.objects.filter(request=OuterRef("pk"), decision=APPROVE, approver__isnull=False)
        .exclude(approver=OuterRef("requested_by")).exclude(approver=filing_owner)
        .exclude(integration_owner=OuterRef("requested_by")).exclude(integration_owner=filing_owner)
    )
    return Exists(decisions)


def matching_current_state(requests):
    """Requests whose payload proposed exactly the outer credential's current privilege level and scopes:
    the fingerprint of the state they approved, compared as canonical JSON text."""
    return requests.annotate(
        proposed_level=KT("payload__privilege_level"),
        proposed_scopes=JSONText(KeyTransform("scopes", "payload")),
    ).filter(proposed_level=OuterRef("privilege_level"), proposed_scopes=JSONText(OuterRef("scopes")))


def approvals_with_separation_of_duties() -> list[Exists]:
    """Exists() per way a credential is approved: an executed provisioning request whose result is it, or
    an executed privileged scope change whose target is it, that proposed its current privilege level and
    scopes and was approved by someone other than the requester.

    Two separate Exists (not one with an OR inside) so that PostgreSQL turns each into an anti-join.
    """
    content_type = ContentType.objects.get_for_model(Credential)
    executed = matching_current_state(ApprovalRequest.objects.filter(status=EXECUTED).filter(
        separated_approval()))
    return [
        Exists(
            executed.filter(
                action=PROVISION,
                result_content_type=content_type,
                result_object_id=CREDENTIAL_PK_AS_TEXT,
            )
        ),
        Exists(
            executed.filter(
                action=SCOPE_CHANGE,
                target_content_type=content_type,
                target_object_id=CREDENTIAL_PK_AS_TEXT,
            )
        ),
    ]


def privileged_automation_bindings():
    return Binding.objects.filter(credential=OuterRef("pk"), workflow__status__in=RUNNING_WORKFLOW).filter(
        Q(workflow__can_provision=True)
        | Q(workflow__can_change=True)
        | Q(workflow__can_rotate=True)
        | Q(workflow__can_revoke=True)
    )


@register
class ApprovalRecorded(QueryCheck):
    key = "approval_sod"
    severity = "high"
    subject_models = (Credential,)
    subject_types = ("governance.credential",)
    evidence_fields = {"credential": ("privilege_level", "privileged_reason")}
    explanation = (
        "A privileged credential (privilege level admin, or write while used by privileged automation: a "
        "running workflow that can provision, change, rotate or revoke access) must trace back to an "
        "executed approval request, provisioning it or changing its privileged scope to exactly its current "
        "privilege level and scopes, that someone other than the requester approved (not through an "
        "integration the requester owns). Privileged access granted on one person's say-so, or changed after "
        "the approval some other way, defeats separation of duties."
    )
    remediation = (
        "Raise a privileged scope change request for this credential stating the access it needs; once a "
        "second person approves and it executes, the finding resolves. If the access is not needed, reduce "
        "the credential's privilege or revoke it."
    )

    def evaluated(self, model, ctx: Context):
        privileged = Q(privilege_level=PrivilegeLevel.ADMIN) | Q(
            Exists(privileged_automation_bindings()), privilege_level=PrivilegeLevel.WRITE
        )
        return Credential.objects.filter(privileged, status=CredentialStatus.ACTIVE)

    def failing(self, queryset, ctx: Context):
        for approved in approvals_with_separation_of_duties():
            queryset = queryset.exclude(approved)
        return queryset.annotate(
            privileged_reason=Case(
                When(privilege_level=PrivilegeLevel.ADMIN, then=Value("admin privilege level")),
                default=Value("write privilege used by privileged automation"),
                output_field=CharField(),
            )
        )
