"""Lifecycle automation: connector targets, observed truth, rotation jobs, revocations, kill switches.

Status values are checked by the database (CheckConstraint); each status change is made by one
service through a compare-and-set update on the status it expects (governance.transitions,
governance.leases), so a change that raced another is refused rather than applied twice. The
database keeps the identities that must not repeat (one rotation job per credential and due date,
one live revocation per credential, one observation per credential).
"""

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from governance.choices import check_in
from governance.models.base import LeasedModel, RestrictedQuerySet, TimeStampedModel
from governance.models.inventory import Credential, System, Workflow
from governance.models.people import Person


class ConnectorKind(models.TextChoices):
    POSTGRES_ROLE = "postgres_role", "PostgreSQL login role"
    REDIS_ACL = "redis_acl", "Redis ACL user"
    AWS_IAM = "aws_iam", "AWS IAM user access key"


class ConnectorTarget(TimeStampedModel):
    """How Steward reaches a system whose accounts it rotates (PostgreSQL server, Redis server).

    Settings are non-secret (host, port, ...); the admin's credentials are given by the NAMES of
    environment variables (admin_user_env_var, admin_password_env_var).
    """

    system = models.OneToOneField(System, on_delete=models.CASCADE, related_name="connector_target")
    kind = models.CharField(max_length=32, choices=ConnectorKind.choices)
    settings = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=check_in("kind", ConnectorKind), name="connectortarget_kind_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.system}"


class ObservationState(models.TextChoices):
    OK = "ok", "Resolves"
    BROKEN = "broken", "Credential source broken"
    UNREACHABLE = "unreachable", "Store unreachable"
    ERROR = "error", "Error"
    UNSUPPORTED = "unsupported", "No connector"
    DRIFTED = "drifted", "Drifted from its declaration"


class CredentialObservation(models.Model):
    """What the store itself says about a credential, as of the last reconciliation."""

    credential = models.OneToOneField(Credential, on_delete=models.CASCADE, related_name="observation")
    state = models.CharField(max_length=16, choices=ObservationState.choices)
    observed_at = models.DateTimeField()
    observed_version = models.CharField(max_length=100, blank=True)
    observed_rotated_at = models.DateTimeField(null=True, blank=True)
    observed_expires_at = models.DateTimeField(null=True, blank=True)
    store_state = models.CharField(max_length=16, blank=True, help_text="active, deleted, destroyed, revoked, disabled")
    detail = models.CharField(max_length=1000, blank=True)
    broken_since = models.DateTimeField(null=True, blank=True)
    # Drift (governance.services.drift): what the identity may do, as its system said, and what was wrong.
    privileges = models.JSONField(default=list, blank=True, help_text="Observed privileges, one line each.")
    privilege_baseline = models.JSONField(
        default=list, blank=True, help_text="The privileges last observed as declared (what Steward accepted).")
    drift = models.JSONField(default=list, blank=True, help_text="Why the identity drifted, one reason each.")
    drift_since = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=check_in("state", ObservationState), name="observation_state_valid"),
            models.CheckConstraint(condition=Q(state="broken") | Q(broken_since__isnull=True),
                                   name="observation_broken_since_only_when_broken"),
        ]
        indexes = [models.Index(fields=["state"])]

    def __str__(self):
        return f"{self.credential}: {self.get_state_display()}"


class RotationStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RotationTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Rotation schedule"
    RENEWAL = "renewal", "Certificate renewal"
    MANUAL = "manual", "Requested by a person"


ROTATION_OPEN = (RotationStatus.AWAITING_APPROVAL, RotationStatus.PENDING, RotationStatus.RUNNING)


class RotationJob(LeasedModel, TimeStampedModel):
    """One unit of rotation work: a credential's rotation due on a date (the unique key)."""

    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="rotation_jobs")
    due_on = models.DateField()
    trigger = models.CharField(max_length=16, choices=RotationTrigger.choices)
    status = models.CharField(max_length=20, choices=RotationStatus.choices, default=RotationStatus.PENDING)
    requested_by = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    approval_request_id = models.BigIntegerField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    new_version = models.CharField(max_length=100, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["credential", "due_on"], name="rotationjob_one_per_credential_and_day"),
            models.CheckConstraint(condition=check_in("status", RotationStatus), name="rotationjob_status_valid"),
            models.CheckConstraint(condition=check_in("trigger", RotationTrigger), name="rotationjob_trigger_valid"),
            models.CheckConstraint(condition=~Q(status="succeeded") | ~Q(new_version=""),
                                   name="rotationjob_success_has_version"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self):
        return f"Rotation of {self.credential} due {self.due_on}"

    def get_absolute_url(self):
        return reverse("rotation-detail", args=[self.pk])


class AttemptOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    RETRYING = "retrying", "Failed, will retry"
    FAILED = "failed", "Failed"


class RotationAttempt(models.Model):
    """Every try of a rotation job, success or failure, with the proof or the reason."""

    job = models.ForeignKey(RotationJob, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.RUNNING)
    new_version = models.CharField(max_length=100, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error = models.CharField(max_length=1000, blank=True)
    proof = models.JSONField(default=list, blank=True)
    task_id = models.CharField(max_length=100, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="rotationattempt_unique_number"),
            models.CheckConstraint(condition=check_in("outcome", AttemptOutcome), name="rotationattempt_outcome_valid"),
        ]

    def __str__(self):
        return f"Attempt {self.number} of {self.job}"


class RevocationReason(models.TextChoices):
    SYSTEM_RETIRED = "system_retired", "System retired"
    WORKFLOW_RETIRED = "workflow_retired", "Workflow retired"
    MANUAL = "manual", "Revoked by a person"


class RevocationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Revoked, with proof"
    FAILED = "failed", "Failed"


class CredentialRevocation(LeasedModel, TimeStampedModel):
    """Deprovisioning one credential, with the connector's proof that the old secret no longer works."""

    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="revocations")
    reason = models.CharField(max_length=20, choices=RevocationReason.choices)
    subject_type = models.CharField(max_length=100, blank=True, help_text="What was retired: governance.system, ...")
    subject_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=RevocationStatus.choices, default=RevocationStatus.PENDING)
    requested_by = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    performed_at = models.DateTimeField(null=True, blank=True)
    proof = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["credential"], condition=Q(status__in=["pending", "running", "succeeded"]),
                                    name="revocation_one_live_per_credential"),
            models.CheckConstraint(condition=check_in("status", RevocationStatus), name="revocation_status_valid"),
            models.CheckConstraint(condition=check_in("reason", RevocationReason), name="revocation_reason_valid"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self):
        return f"Revocation of {self.credential}"


class KillSwitchMode(models.TextChoices):
    ACTIVATE = "activate", "Kill switch"
    DRILL = "drill", "Drill (verification only)"
    REACTIVATE = "reactivate", "Reactivation"


class KillSwitchStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Completed with failures"
    AWAITING_MANUAL = "awaiting_manual", "Waiting for steps done by hand"


KILL_SWITCH_OPEN = (KillSwitchStatus.RUNNING, KillSwitchStatus.AWAITING_MANUAL)


class SharedChoice(models.TextChoices):
    """What the operator chose for a credential the workflow shares with other workflows."""

    SUSPEND_ANYWAY = "suspend_anyway", "Suspend it anyway (the other workflows stop too)"
    ROTATE_ISOLATE = "rotate_isolate", "Rotate and isolate (a new secret for the other workflows)"


class KillSwitchActivation(LeasedModel, TimeStampedModel):
    """A workflow stopped in one action (or a drill of it, or its reactivation), step by step.

    Its lease covers its steps: a step is claimed and recorded only under the activation's lease token.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="kill_switch_activations")
    mode = models.CharField(max_length=16, choices=KillSwitchMode.choices)
    status = models.CharField(max_length=16, choices=KillSwitchStatus.choices, default=KillSwitchStatus.RUNNING)
    reason = models.TextField(blank=True)
    activated_by = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=200)
    workflow_status_before = models.CharField(max_length=16)
    approval_request_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    shared_choice = models.CharField(max_length=20, choices=SharedChoice.choices, blank=True, default="")
    # The other workflows that used a shared credential when the kill switch was activated:
    # [{"credential_id", "credential", "workflows": [{"id", "name", "status"}]}].
    shared_with = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=check_in("mode", KillSwitchMode), name="killswitch_mode_valid"),
            models.CheckConstraint(condition=check_in("status", KillSwitchStatus), name="killswitch_status_valid"),
            models.CheckConstraint(condition=Q(status__in=["running", "awaiting_manual"])
                                   | Q(finished_at__isnull=False), name="killswitch_finished_has_time"),
            models.CheckConstraint(condition=Q(shared_choice="") | check_in("shared_choice", SharedChoice),
                                   name="killswitch_shared_choice_valid"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self):
        return f"{self.get_mode_display()} of {self.workflow} at {self.started_at:%Y-%m-%d %H:%M}"

    def get_absolute_url(self):
        return reverse("killswitch-detail", args=[self.pk])


class StepAction(models.TextChoices):
    SUSPEND_WORKFLOW = "suspend_workflow", "Suspend the workflow"
    SUSPEND_CREDENTIAL = "suspend_credential", "Suspend credential"
    PROBE_CREDENTIAL = "probe_credential", "Verify the connector could suspend"
    REACTIVATE_CREDENTIAL = "reactivate_credential", "Reactivate credential"
    REACTIVATE_WORKFLOW = "reactivate_workflow", "Reactivate the workflow"
    ISOLATE_CREDENTIAL = "isolate_credential", "Rotate and isolate a shared credential"
    RESTORE_BINDING = "restore_binding", "Give the workflow its isolated credential back"
    MANUAL_SUSPEND = "manual_suspend", "Suspend by hand"
    MANUAL_ISSUER = "manual_issuer", "Revoke where it is accepted, by hand"
    MANUAL_ROTATE = "manual_rotate", "Rotate by hand"
    MANUAL_REACTIVATE = "manual_reactivate", "Issue a new secret by hand"


# Steps no connector can do: a person does them and marks them done (or a security admin waives them).
MANUAL_ACTIONS = frozenset({StepAction.MANUAL_SUSPEND, StepAction.MANUAL_ISSUER, StepAction.MANUAL_ROTATE,
                            StepAction.MANUAL_REACTIVATE})


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    AWAITING = "awaiting", "To do by hand"
    MARKED_DONE = "marked_done", "Done by hand"
    WAIVED = "waived", "Waived"


STEP_CLOSED = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.MARKED_DONE,
               StepStatus.WAIVED)


class KillSwitchStep(models.Model):
    activation = models.ForeignKey(KillSwitchActivation, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=24, choices=StepAction.choices)
    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    label = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    detail = models.CharField(max_length=1000, blank=True)
    proof = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A step done by hand: who should do it, who closed it (done or waived) and what they said.
    assignee = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    closed_by = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    comment = models.TextField(blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["activation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["activation", "position"], name="killswitchstep_unique_position"),
            models.CheckConstraint(condition=check_in("status", StepStatus), name="killswitchstep_status_valid"),
            models.CheckConstraint(condition=check_in("action", StepAction), name="killswitchstep_action_valid"),
        ]

    def __str__(self):
        return f"{self.position}. {self.label}"


# Visibility: each lifecycle record is visible to whoever may see the object it belongs to.

def _via(path: str, model):
    def rule(queryset, user, action):
        # cycle: governance.permissions imports the models
        from governance.permissions import restrict

        visible = restrict(model.objects.all(), user, action)
        return queryset.filter(Exists(visible.filter(pk=OuterRef(path))))

    return rule


def register_rules() -> None:
    # cycle: governance.permissions imports the models
    from governance.permissions import register_model_rule

    register_model_rule(ConnectorTarget, _via("system_id", System))
    register_model_rule(CredentialObservation, _via("credential_id", Credential))
    register_model_rule(RotationJob, _via("credential_id", Credential))
    register_model_rule(RotationAttempt, _via("job__credential_id", Credential))
    register_model_rule(CredentialRevocation, _via("credential_id", Credential))
    register_model_rule(KillSwitchActivation, _via("workflow_id", Workflow))
    register_model_rule(KillSwitchStep, _via("activation__workflow_id", Workflow))


register_rules()
