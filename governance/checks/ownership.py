"""Checks on accountability: a named owner, an active owner, a current attestation."""

from __future__ import annotations

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from governance import roles
from governance.checks.base import Context, QueryCheck
from governance.checks.registry import register
from governance.choices import CredentialStatus, PersonStatus, WorkflowStatus
from governance.models import Credential, System, Workflow
from governance.models.attestation import AttestationItem

LIVE_CREDENTIAL = (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED)
RUNNING_WORKFLOW = (WorkflowStatus.ACTIVE, WorkflowStatus.SUSPENDED)


def owned_subjects(model):
    """Objects that must have an owner: every workflow and system not retired, every live credential."""
    if model is Credential:
        return Credential.objects.filter(status__in=LIVE_CREDENTIAL)
    if model is Workflow:
        return Workflow.objects.exclude(status=WorkflowStatus.RETIRED)
    return System.objects.exclude(lifecycle="retired")


@register
class OwnerNamed(QueryCheck):
    key = "owner_named"
    severity = "high"
    subject_models = (Workflow, Credential, System)
    subject_types = ("governance.workflow", "governance.credential", "governance.system")
    evidence_fields = {name: ("team_name",) for name in ("workflow", "credential", "system")}
    explanation = (
        "Every workflow, live credential (active or suspended) and system that is not retired must have "
        "a named accountable owner: an active person who answers for it, with a team as backup. An object "
        "without an owner is orphaned; nobody reviews its access, answers its attestations or acts when it "
        "misbehaves. Objects become orphaned when their owner departs and no backup manager can take them."
    )
    remediation = (
        "Transfer ownership to an active person who knows what the object does (the Transfer ownership "
        "action on its page), and give it a backup team. If nobody can say what it is for, suspend or "
        "retire it instead."
    )

    def evaluated(self, model, ctx: Context):
        return owned_subjects(model)

    def failing(self, queryset, ctx: Context):
        # Owned by the security admins together (no person, their role group as team; the Steward API
        # system): an accountable group, not an orphan.
        return (queryset.filter(owner__isnull=True).exclude(team__group__name=roles.SECURITY_ADMINS)
                .annotate(team_name=F("team__name")))


@register
class OwnerActive(QueryCheck):
    key = "owner_active"
    severity = "high"
    subject_models = (Workflow, Credential, System)
    subject_types = ("governance.workflow", "governance.credential", "governance.system")
    evidence_fields = {
        name: ("owner_username", "owner_status", "owner_departed_at", "owner_can_sign_in")
        for name in ("workflow", "credential", "system")
    }
    explanation = (
        "The named owner must still be an active person: not departed, and not a disabled account. A "
        "departed owner cannot answer for an object, so the object is effectively unowned while the record "
        "still looks accountable. Objects without any owner are reported by owner-named instead; this check "
        "evaluates objects that name an owner."
    )
    remediation = (
        "Transfer the object to an active member of its backup team (or mark the owner departed, which "
        "hands every object to the backup team's manager). Re-enable the owner's account only if they "
        "really are still responsible."
    )

    def evaluated(self, model, ctx: Context):
        return owned_subjects(model).filter(owner__isnull=False)

    def failing(self, queryset, ctx: Context):
        return queryset.filter(Q(owner__status=PersonStatus.DEPARTED) | Q(owner__is_active=False)).annotate(
            owner_username=F("owner__username"),
            owner_status=F("owner__status"),
            owner_departed_at=F("owner__departed_at"),
            owner_can_sign_in=F("owner__is_active"),
        )


@register
class AttestationCurrent(QueryCheck):
    key = "attestation"
    severity = "medium"
    subject_models = (Workflow, Credential)
    subject_types = ("governance.workflow", "governance.credential")
    evidence_fields = {"workflow": ("last_attested_at", "due_at"), "credential": ("last_attested_at", "due_at")}
    explanation = (
        "Each running workflow and active credential must be confirmed by its owner at least every "
        "{attestation_period_days} days: still needed, still theirs, scoped right and stored right. An "
        "object never attested is due {attestation_period_days} days after it was registered, so new "
        "objects are not reported on their first day. Attestation campaigns record the confirmation."
    )
    remediation = (
        "Answer the open attestation for this object (confirm it, or ask to change or revoke it). If no "
        "campaign is open, ask a security admin to include the object in the next one."
    )

    def evaluated(self, model, ctx: Context):
        if model is Workflow:
            return Workflow.objects.filter(status__in=RUNNING_WORKFLOW)
        return Credential.objects.filter(status=CredentialStatus.ACTIVE)

    def failing(self, queryset, ctx: Context):
        """Overdue by the period, or lapsed in a campaign (its grace deadline passed unanswered) since."""

        cutoff = ctx.now - ctx.days("attestation_period_days")
        period = Value(ctx.days("attestation_period_days"), output_field=DurationField())
        lapsed = (AttestationItem.objects.filter(object_type=queryset.model._meta.label_lower,
                                                 object_id=OuterRef("pk"), consequence_applied_at__isnull=False)
                  .order_by("-consequence_applied_at").values("consequence_applied_at")[:1])
        return (
            queryset.annotate(attested_basis=Coalesce("last_attested_at", "created_at"), lapsed_at=Subquery(lapsed))
            .filter(Q(attested_basis__lt=cutoff)
                    | Q(lapsed_at__isnull=False) & (Q(last_attested_at__isnull=True)
                                                    | Q(last_attested_at__lt=F("lapsed_at"))))
            .annotate(due_at=ExpressionWrapper(F("attested_basis") + period, output_field=DateTimeField()))
        )
