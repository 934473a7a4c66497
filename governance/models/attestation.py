"""Owner attestation: periodic campaigns in which each owner confirms or questions what they own.

A campaign covers a scope (the estate, a team, a system, or privileged automation only) for one
period; its key (scope and period) is unique, so a scheduler that runs twice opens it once. It
has one item per owned workflow and credential in scope, assigned to the object's owner (or the
backup team's manager for an orphaned object). The item's stamps (reminded, escalated,
consequence applied) are set once each by compare-and-set in the sweep.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from governance.choices import check_in
from governance.models.base import TimeStampedModel
from governance.models.inventory import Credential, System, Workflow
from governance.models.people import Person, Team
from governance.permissions import CHANGE, register_model_rule


class CampaignScope(models.TextChoices):
    ESTATE = "estate", "Whole estate"
    TEAM = "team", "One team"
    SYSTEM = "system", "One system"
    PRIVILEGED = "privileged", "Privileged automation only"


class CampaignStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class ItemState(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"


class ItemAnswer(models.TextChoices):
    NONE = "", "Not answered"
    CONFIRM = "confirm", "Confirm: still needed, still mine, scoped and stored right"
    TRANSFER = "transfer", "Still needed, but not mine: transfer ownership"
    CHANGE_SCOPES = "change_scopes", "Scopes are not right: request a change"
    FLAG_STORAGE = "flag_storage", "Not stored in the right place: flag it"
    REVOKE = "revoke", "No longer needed: retire or revoke it"


class AttestedObjectType(models.TextChoices):
    WORKFLOW = "governance.workflow", "Workflow"
    CREDENTIAL = "governance.credential", "Credential"


class Consequence(models.TextChoices):
    NONE = "", "None"
    FINDING = "finding", "Finding opened"
    SUSPENSION = "suspension", "Workflow suspended (kill switch)"
    RECORDED = "recorded", "Recorded only (no finding service available)"


OBJECT_MODELS = {AttestedObjectType.WORKFLOW: Workflow, AttestedObjectType.CREDENTIAL: Credential}

# The state machines, declared in one place. Services consult these and nothing else.
CAMPAIGN_TRANSITIONS = {
    CampaignStatus.OPEN: frozenset({CampaignStatus.CLOSED}),
    CampaignStatus.CLOSED: frozenset(),
}
ITEM_TRANSITIONS = {ItemState.OPEN: frozenset({ItemState.ANSWERED}), ItemState.ANSWERED: frozenset()}


class AttestationCampaign(TimeStampedModel):
    key = models.CharField(max_length=200, unique=True, help_text="Scope and period: one campaign each.")
    name = models.CharField(max_length=200)
    scope_type = models.CharField(max_length=16, choices=CampaignScope.choices)
    scope_team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    scope_system = models.ForeignKey(System, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    exclude_privileged = models.BooleanField(
        default=False,
        help_text="Leave out privileged automation (reviewed by its own, more frequent campaign).",
    )
    period_start = models.DateField()
    period_end = models.DateField()
    due_at = models.DateTimeField()
    grace_until = models.DateTimeField()
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.OPEN)
    scheduled = models.BooleanField(default=False, help_text="Opened by the schedule rather than by hand.")
    consequence = models.CharField(max_length=16, default="finding",
                                   help_text="What happens to an item unanswered at the grace deadline.")
    opened_by = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "name"]
        constraints = [
            models.CheckConstraint(condition=check_in("scope_type", CampaignScope),
                                   name="campaign_scope_valid"),
            models.CheckConstraint(condition=check_in("status", CampaignStatus),
                                   name="campaign_status_valid"),
            models.CheckConstraint(condition=Q(consequence__in=["finding", "suspension"]),
                                   name="campaign_consequence_valid"),
            models.CheckConstraint(
                condition=(
                    Q(scope_type=CampaignScope.TEAM, scope_team__isnull=False, scope_system__isnull=True)
                    | Q(scope_type=CampaignScope.SYSTEM, scope_system__isnull=False, scope_team__isnull=True)
                    | Q(scope_type__in=[CampaignScope.ESTATE, CampaignScope.PRIVILEGED],
                        scope_team__isnull=True, scope_system__isnull=True)
                ),
                name="campaign_scope_object_matches_type",
            ),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")),
                                   name="campaign_period_ordered"),
            models.CheckConstraint(condition=Q(grace_until__gte=models.F("due_at")),
                                   name="campaign_grace_after_due"),
            models.CheckConstraint(
                condition=Q(status=CampaignStatus.OPEN, closed_at__isnull=True)
                | Q(status=CampaignStatus.CLOSED, closed_at__isnull=False),
                name="campaign_closed_at_matches_status",
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("attestation-campaign-detail", args=[self.pk])

    @property
    def scope_label(self) -> str:
        target = self.scope_team or self.scope_system
        label = f"{self.get_scope_type_display()}: {target}" if target else self.get_scope_type_display()
        return f"{label} (privileged automation excluded)" if self.exclude_privileged else label


class AttestationItem(TimeStampedModel):
    """One owned object to attest in one campaign, and the answer its owner gave."""

    campaign = models.ForeignKey(AttestationCampaign, on_delete=models.PROTECT, related_name="items")
    object_type = models.CharField(max_length=40, choices=AttestedObjectType.choices)
    object_id = models.PositiveBigIntegerField()
    object_repr = models.CharField(max_length=300)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                             help_text="The object's backup team when the campaign opened.")
    assignee = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="attestation_items")
    original_owner = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="+")
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.OPEN)
    answer = models.CharField(max_length=16, choices=ItemAnswer.choices, blank=True, default="")
    comment = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="Answer details: transfer target, scopes.")
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    resulting_request_id = models.BigIntegerField(null=True, blank=True,
                                                  help_text="The approval request the answer filed.")
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    consequence_applied_at = models.DateTimeField(null=True, blank=True)
    consequence = models.CharField(max_length=16, choices=Consequence.choices, blank=True, default="")
    consequence_ref = models.CharField(max_length=100, blank=True)
    ticket_system = models.CharField(max_length=50, blank=True)
    ticket_key = models.CharField(max_length=100, blank=True)
    ticket_url = models.URLField(max_length=500, blank=True)

    class Meta:
        ordering = ["campaign", "object_type", "object_repr", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "object_type", "object_id"],
                                    name="attestation_item_unique_object"),
            models.CheckConstraint(condition=check_in("object_type", AttestedObjectType),
                                   name="attestation_item_object_type_valid"),
            models.CheckConstraint(condition=check_in("state", ItemState),
                                   name="attestation_item_state_valid"),
            models.CheckConstraint(condition=check_in("answer", ItemAnswer),
                                   name="attestation_item_answer_valid"),
            models.CheckConstraint(condition=check_in("consequence", Consequence),
                                   name="attestation_item_consequence_valid"),
            models.CheckConstraint(
                condition=Q(state=ItemState.OPEN, answer="", answered_at__isnull=True)
                | (Q(state=ItemState.ANSWERED, answered_at__isnull=False) & ~Q(answer="")),
                name="attestation_item_answer_matches_state",
            ),
            models.CheckConstraint(
                condition=Q(consequence_applied_at__isnull=True, consequence="")
                | (Q(consequence_applied_at__isnull=False) & ~Q(consequence="")),
                name="attestation_item_consequence_stamped",
            ),
        ]
        indexes = [
            models.Index(fields=["assignee", "state"]),
            models.Index(fields=["campaign", "state"]),
            models.Index(fields=["object_type", "object_id"]),
        ]

    def __str__(self):
        return f"{self.get_object_type_display()} {self.object_repr} ({self.campaign})"

    def get_absolute_url(self):
        return reverse("attestation-item", args=[self.pk])

    @property
    def object_model(self):
        return OBJECT_MODELS[self.object_type]

    def get_object(self):
        """The attested workflow or credential, or None when it no longer exists."""
        return self.object_model.objects.filter(pk=self.object_id).first()


def _object_stewarded_by(model, user):
    """Objects the user owns, backs up (team member) or manages (team manager)."""
    return model.objects.filter(
        Q(owner=user) | Q(team__group__user=user) | Q(team__manager=user), pk=OuterRef("object_id")
    )


def _item_rule(queryset, user, action):
    """Items: the assignee answers; the object's owner, team and team manager see; auditors and
    security admins are handled by restrict() itself."""
    if action == CHANGE:
        return queryset.filter(assignee=user)
    return queryset.filter(
        Q(assignee=user)
        | (Q(object_type=AttestedObjectType.WORKFLOW) & Exists(_object_stewarded_by(Workflow, user)))
        | (Q(object_type=AttestedObjectType.CREDENTIAL) & Exists(_object_stewarded_by(Credential, user)))
    )


def _campaign_rule(queryset, user, action):
    """Campaign pages are for auditors and security admins (restrict() lets them through first)."""
    return queryset.none()


register_model_rule(AttestationItem, _item_rule)
register_model_rule(AttestationCampaign, _campaign_rule)
