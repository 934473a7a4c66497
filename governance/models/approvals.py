"""Approvals: the policies that gate access changes, the requests, and each approver's decision.

Automation that can change access never does so without a human saying yes. A request carries
the proposed change as validated data; its states and their legal transitions are declared
here, in TRANSITIONS, and only the services in governance.services.approvals move them.
"""

from django.contrib.auth.models import Group
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Case, Exists, OuterRef, Q, When
from django.db.models.functions import Cast
from django.urls import reverse

from governance.choices import check_in
from governance.models.base import RestrictedQuerySet, TimeStampedModel
from governance.models.checks import Finding
from governance.models.inventory import Credential, System, Workflow
from governance.models.people import Person


class ApprovalAction(models.TextChoices):
    PROVISION_CREDENTIAL = "provision_credential", "Provision a new credential"
    REGISTER_WORKFLOW = "register_workflow", "Register a new workflow"
    PRIVILEGED_SCOPE_CHANGE = "privileged_scope_change", "Privileged scope change"
    RISK_ACCEPTANCE = "risk_acceptance", "Risk acceptance"
    OWNERSHIP_TRANSFER = "ownership_transfer", "Ownership transfer"
    REACTIVATION = "reactivation", "Reactivation after a kill switch"
    RETIREMENT = "retirement", "Retirement"
    PRIVILEGED_ROTATION = "privileged_rotation", "Rotation of a privileged credential"
    CERTIFICATE_ISSUANCE = "certificate_issuance", "Certificate issuance outside policy"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    EXECUTED = "executed", "Executed"
    FAILED = "failed", "Failed"


class DecisionKind(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


S = ApprovalStatus
# The state machine, in one place: from-state -> the states it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.APPROVED: frozenset({S.EXECUTED, S.FAILED}),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXECUTED: frozenset(),
    S.FAILED: frozenset(),
}
FINISHED_STATUSES = frozenset({S.EXECUTED, S.FAILED})


def may_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


class ApprovalPolicy(TimeStampedModel):
    """Who may approve which actions, how many of them, for how long, and who is escalated to."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    approver_groups = models.ManyToManyField(Group, related_name="approval_policies")
    required_approvals = models.PositiveSmallIntegerField(
        default=1, help_text="Distinct approvals needed (N of M); one person counts once."
    )
    owner_may_approve = models.BooleanField(
        default=False, help_text="May the owner of the object a request targets approve it?"
    )
    expiry_hours = models.PositiveIntegerField(default=72, help_text="A pending request expires after this.")
    reminder_before_hours = models.PositiveIntegerField(
        default=24, help_text="Remind approvers this long before expiry (0: no reminder)."
    )
    escalation_group = models.ForeignKey(
        Group, on_delete=models.PROTECT, null=True, blank=True, related_name="escalated_approval_policies"
    )
    escalation_after_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Escalate a still-pending request after this long."
    )
    actions = models.JSONField(default=list, blank=True, help_text="Action codes this policy gates.")
    default_for_actions = models.JSONField(
        default=list, blank=True, help_text="Action codes for which this is the default policy."
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.CheckConstraint(condition=Q(required_approvals__gte=1), name="approvalpolicy_n_positive"),
            models.CheckConstraint(condition=Q(expiry_hours__gte=1), name="approvalpolicy_expiry_positive"),
            models.CheckConstraint(
                condition=Q(escalation_group__isnull=True, escalation_after_hours__isnull=True)
                | Q(escalation_group__isnull=False, escalation_after_hours__gte=1),
                name="approvalpolicy_escalation_complete",
            ),
        ]

    def __str__(self):
        return self.name

    def gates(self, action: str) -> bool:
        return action in (self.actions or [])


class ApprovalRequest(models.Model):
    """A proposed access change waiting for (or past) human approval."""

    action = models.CharField(max_length=32, choices=ApprovalAction.choices)
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.PROTECT, related_name="requests")
    target_content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    target_object_id = models.CharField(max_length=64, blank=True)
    target = GenericForeignKey("target_content_type", "target_object_id")
    result_content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    result_object_id = models.CharField(max_length=64, blank=True)
    result = GenericForeignKey("result_content_type", "result_object_id")
    payload = models.JSONField(default=dict, blank=True, help_text="The proposed change, validated.")
    target_fingerprint = models.CharField(max_length=64, blank=True)
    payload_fingerprint = models.CharField(
        max_length=64, blank=True, default="",
        help_text="Hash of the target's type and the proposed change: one pending request per action, target "
                  "and fingerprint (empty on requests filed before it existed).")
    requested_by = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="approval_requests")
    filed_by_integration_id = models.BigIntegerField(null=True, blank=True)
    filed_by_label = models.CharField(max_length=200, blank=True)
    filed_by_integration_owner = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The owner of the integration that filed it, when filing: a requester too.")
    owners_at_filing = models.JSONField(
        default=list, blank=True,
        help_text="Ids of the object's owner and backup team manager when it was filed: they may not approve.")
    justification = models.TextField()
    ticket_system = models.CharField(max_length=60, blank=True)
    ticket_key = models.CharField(max_length=100, blank=True)
    ticket_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["target_content_type", "target_object_id"]),
            models.Index(fields=["requested_by", "status"]),
        ]
        constraints = [
            models.CheckConstraint(condition=check_in("status", ApprovalStatus), name="approvalrequest_status_valid"),
            models.CheckConstraint(condition=check_in("action", ApprovalAction), name="approvalrequest_action_valid"),
            models.CheckConstraint(
                condition=Q(target_content_type__isnull=True, target_object_id="")
                | (Q(target_content_type__isnull=False) & ~Q(target_object_id="")),
                name="approvalrequest_target_complete",
            ),
            models.CheckConstraint(
                condition=Q(action=ApprovalAction.REGISTER_WORKFLOW) | Q(target_content_type__isnull=False),
                name="approvalrequest_target_required",
            ),
            models.CheckConstraint(condition=~Q(justification=""), name="approvalrequest_justified"),
            models.CheckConstraint(
                condition=Q(status=ApprovalStatus.PENDING) | Q(decided_at__isnull=False),
                name="approvalrequest_decided_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=sorted(FINISHED_STATUSES)) | Q(executed_at__isnull=False),
                name="approvalrequest_finished_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status=ApprovalStatus.FAILED) | ~Q(failure_reason=""),
                name="approvalrequest_failed_has_reason",
            ),
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")),
                                   name="approvalrequest_expires_after_filing"),
            models.UniqueConstraint(
                fields=["action", "target_object_id", "payload_fingerprint"],
                condition=Q(status=ApprovalStatus.PENDING) & ~Q(payload_fingerprint=""),
                name="approvalrequest_one_pending_per_fingerprint",
                violation_error_message="The same request is already pending for this object.",
            ),
            models.CheckConstraint(
                condition=Q(filed_by_integration_owner__isnull=True) | Q(filed_by_integration_id__isnull=False),
                name="approvalrequest_integration_owner_has_integration",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.get_action_display()}"

    def get_absolute_url(self):
        return reverse("approval-detail", args=[self.pk])

    @property
    def is_pending(self) -> bool:
        return self.status == ApprovalStatus.PENDING

    @property
    def filed_by_integration(self) -> bool:
        return self.filed_by_integration_id is not None

    @property
    def has_ticket(self) -> bool:
        return bool(self.ticket_key or self.ticket_url)


class ApprovalDecision(models.Model):
    """One approver's approve or reject. One person decides a request at most once."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    approver = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="approval_decisions")
    decision = models.CharField(max_length=8, choices=DecisionKind.choices)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField()
    on_behalf_integration_id = models.BigIntegerField(null=True, blank=True)
    integration_owner = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The owner of the integration the decision was made through: it counts for them too.")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "approver"], name="approvaldecision_one_per_person"),
            models.CheckConstraint(condition=check_in("decision", DecisionKind), name="approvaldecision_valid"),
            models.CheckConstraint(
                condition=Q(decision=DecisionKind.APPROVE) | ~Q(comment=""),
                name="approvaldecision_reject_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(integration_owner__isnull=True) | Q(on_behalf_integration_id__isnull=False),
                name="approvaldecision_integration_owner_has_integration",
            ),
        ]

    def __str__(self):
        return f"{self.approver} {self.decision}s #{self.request_id}"


# Visibility (governance.permissions): who sees a request, and which objects its approvers see.


def queue_condition(user, policy_ref: str = "policy_id", escalated_ref: str = "escalated_at"):
    """The request's policy lists a group of the user's, or it escalated to one of them."""
    in_groups = Exists(ApprovalPolicy.approver_groups.through.objects.filter(
        approvalpolicy_id=OuterRef(policy_ref), group__user=user))
    escalated = Exists(ApprovalPolicy.objects.filter(
        pk=OuterRef(policy_ref), escalation_group__user=user))
    return in_groups | (Q(**{f"{escalated_ref}__isnull": False}) & escalated)


def _owns_target(user):
    condition = None
    for model in (Workflow, Credential, System, Finding):  # a finding's owner is its object's
        owned = (model.objects.filter(Q(owner=user) | Q(team__group__user=user))
                 .annotate(key=Cast("pk", output_field=models.CharField()))
                 .filter(key=OuterRef("target_object_id")))
        term = Q(target_content_type__app_label=model._meta.app_label,
                 target_content_type__model=model._meta.model_name) & Exists(owned)
        condition = term if condition is None else condition | term
    return condition


def _request_rule(queryset, user, action):
    """Requester, queue members, those who decided, the target's owner and team (admins see all)."""
    if action != "view":
        return queryset.none()
    decided = Exists(ApprovalDecision.objects.filter(request=OuterRef("pk"), approver=user))
    return queryset.filter(Q(requested_by=user) | queue_condition(user) | decided | _owns_target(user))


def _decision_rule(queryset, user, action):
    visible = _request_rule(ApprovalRequest.objects.all(), user, action)
    return queryset.filter(request__in=visible.values("pk"))


def _policy_rule(queryset, user, action):
    """Every signed-in person may read the approval paths; only security admins change them."""
    return queryset if action == "view" else queryset.none()


def _touched_by_my_queue(model):
    """Approvers see the objects that pending requests in their queues would change."""

    def rule(user, action):
        # The targets' ids, for governance.permissions' UNION of visible ids. The CASE keeps the
        # integer cast away from an id that is not a number (it then matches nothing, as before).
        target_id = Case(When(target_object_id__regex=r"^[0-9]{1,18}$",
                              then=Cast("target_object_id", output_field=models.BigIntegerField())),
                         default=None, output_field=models.BigIntegerField())
        return ApprovalRequest.objects.filter(
            queue_condition(user),
            status=ApprovalStatus.PENDING,
            target_content_type__app_label=model._meta.app_label,
            target_content_type__model=model._meta.model_name,
        ).values(target_id=target_id)

    return rule


def _register_rules() -> None:
    # cycle: governance.permissions imports the models
    from governance import permissions
    from governance.models.inventory import Credential, System, Workflow

    permissions.register_model_rule(ApprovalRequest, _request_rule)
    permissions.register_model_rule(ApprovalDecision, _decision_rule)
    permissions.register_model_rule(ApprovalPolicy, _policy_rule)
    for model in (Workflow, Credential, System):
        permissions.register_visibility(model, _touched_by_my_queue(model))


_register_rules()
