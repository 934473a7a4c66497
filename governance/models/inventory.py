"""The inventory: systems, secret stores, credentials, workflows and their bindings."""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from governance.choices import (
    MANAGED_STORE_KINDS,
    CredentialKind,
    CredentialStatus,
    Criticality,
    DrillResult,
    Environment,
    PrivilegeLevel,
    SecretStoreKind,
    SystemLifecycle,
    WorkflowKind,
    WorkflowStatus,
    check_in,
)
from governance.hosts import host_names_validator
from governance.models.base import TimeStampedModel
from governance.models.people import Person, Team

env_var_name_validator = RegexValidator(
    r"^[A-Z_][A-Z0-9_]*$", "Give the name of an environment variable (A-Z, 0-9, _), never the value."
)


class OwnedModel(TimeStampedModel):
    """Every owned object has a primary owner (a person) and a backup team. No owner = orphaned."""

    owner = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        abstract = True

    @property
    def is_orphaned(self) -> bool:
        return self.owner_id is None


class System(OwnedModel):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    lifecycle = models.CharField(max_length=16, choices=SystemLifecycle.choices, default=SystemLifecycle.ACTIVE)
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.PROD)
    criticality = models.CharField(max_length=16, choices=Criticality.choices, default=Criticality.MEDIUM)
    third_party = models.BooleanField(default=False, help_text="Operated by a vendor (a third party).")
    vendor = models.CharField(max_length=200, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    hosts = models.JSONField(
        default=list, blank=True, validators=[host_names_validator],
        help_text="The host names the system answers on; its certificates may carry these names only "
                  "(\"*.example.com\" allows one label below example.com).")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=check_in("lifecycle", SystemLifecycle), name="system_lifecycle_valid"),
            models.CheckConstraint(condition=check_in("environment", Environment), name="system_environment_valid"),
            models.CheckConstraint(condition=check_in("criticality", Criticality), name="system_criticality_valid"),
            models.CheckConstraint(
                condition=~Q(lifecycle=SystemLifecycle.RETIRED) | Q(retired_at__isnull=False),
                name="system_retired_has_date",
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("system-detail", args=[self.pk])


class SecretStore(TimeStampedModel):
    """Where a secret value lives. Steward stores the reference, never the value."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=SecretStoreKind.choices)
    address = models.CharField(max_length=300, blank=True, help_text="URL or location of the store.")
    settings = models.JSONField(default=dict, blank=True, help_text="Non-secret connection settings.")
    credential_env_var = models.CharField(
        max_length=100,
        blank=True,
        validators=[env_var_name_validator],
        help_text="Name of the environment variable that holds the store's own credential.",
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=check_in("kind", SecretStoreKind), name="secretstore_kind_valid"),
            models.CheckConstraint(
                condition=Q(credential_env_var="") | Q(credential_env_var__regex=r"^[A-Z_][A-Z0-9_]*$"),
                name="secretstore_credential_is_env_var_name",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_managed(self) -> bool:
        return self.kind in MANAGED_STORE_KINDS

    def get_absolute_url(self):
        return reverse("secretstore-detail", args=[self.pk])


class Credential(OwnedModel):
    """A non-human identity's secret or key, known by reference only."""

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=CredentialKind.choices)
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="credentials")
    identifier = models.CharField(
        max_length=300, help_text="Non-secret identifier: key id, fingerprint, account name, serial."
    )
    store = models.ForeignKey(
        SecretStore, on_delete=models.PROTECT, null=True, blank=True, related_name="credentials"
    )
    store_path = models.CharField(max_length=500, blank=True, help_text="Path of the value in the store.")
    store_version = models.CharField(max_length=100, blank=True)
    fingerprint = models.CharField(max_length=200, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    privilege_level = models.CharField(max_length=16, choices=PrivilegeLevel.choices, default=PrivilegeLevel.READ)
    issued_at = models.DateTimeField(null=True, blank=True)
    last_rotated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    rotation_max_age_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Rotation policy: maximum age in days (empty: the kind's default)."
    )
    status = models.CharField(max_length=24, choices=CredentialStatus.choices, default=CredentialStatus.ACTIVE)
    last_used_at = models.DateTimeField(null=True, blank=True)
    human_use_detected = models.BooleanField(
        default=False, help_text="Evidence that a person used this machine credential interactively."
    )
    human_use_evidence = models.TextField(blank=True)
    third_party_reviewed_at = models.DateTimeField(null=True, blank=True)
    last_attested_at = models.DateTimeField(
        null=True, blank=True, help_text="When its owner last confirmed it in an attestation campaign."
    )
    notes = models.TextField(blank=True)
    # Set by the sweep only (services/risk.py), never by a form or the API: the risk score with its reasons,
    # and when rotation is due and when it expires as the sweep last read them (the observed truth first).
    risk_score = models.PositiveSmallIntegerField(default=0, editable=False)
    risk_reasons = models.JSONField(default=list, blank=True, editable=False)
    swept_rotation_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    swept_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["system", "identifier"], name="credential_identifier_unique_per_system"),
            models.CheckConstraint(condition=check_in("kind", CredentialKind), name="credential_kind_valid"),
            models.CheckConstraint(condition=check_in("status", CredentialStatus), name="credential_status_valid"),
            models.CheckConstraint(
                condition=check_in("privilege_level", PrivilegeLevel), name="credential_privilege_valid"
            ),
            models.CheckConstraint(
                condition=Q(rotation_max_age_days__isnull=True) | Q(rotation_max_age_days__gte=1),
                name="credential_rotation_age_positive",
            ),
            models.CheckConstraint(
                condition=Q(store__isnull=True) | ~Q(store_path=""), name="credential_store_has_path"
            ),
            models.CheckConstraint(condition=Q(risk_score__lte=100), name="credential_risk_score_range"),
        ]
        # Each sortable column of the list with the primary key (ORDER BY <column>, id LIMIT 50 walks
        # the index, either way); (owner, id) and (team, id) serve the owner branch of restrict() and the
        # per-team posture from the index alone.
        indexes = [
            models.Index(fields=["status", "kind"]),
            models.Index(fields=["name", "id"], name="credential_name_id"),
            models.Index(fields=["kind", "id"], name="credential_kind_id"),
            models.Index(fields=["status", "id"], name="credential_status_id"),
            models.Index(fields=["expires_at", "id"], name="credential_expires_id"),
            models.Index(fields=["last_rotated_at", "id"], name="credential_rotated_id"),
            models.Index(fields=["owner", "id"], name="credential_owner_id"),
            models.Index(fields=["team", "id"], name="credential_team_id"),
            models.Index(fields=["risk_score", "id"], name="credential_risk_id"),
            models.Index(fields=["swept_rotation_due_at", "id"], name="credential_rotation_due_id"),
            models.Index(fields=["swept_expires_at", "id"], name="credential_swept_expires_id"),
            models.Index(fields=["last_used_at", "id"], name="credential_last_used_id"),
            models.Index(fields=["last_attested_at", "id"], name="credential_attested_id"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("credential-detail", args=[self.pk])


# A workflow that can change access without a human is privileged automation: the query form of
# Workflow.is_privileged, for filters, checks and rankings.
PRIVILEGED_WORKFLOW = Q(can_provision=True) | Q(can_change=True) | Q(can_rotate=True) | Q(can_revoke=True)


class Workflow(OwnedModel):
    """An automated process: what acts without a human, and what must be stoppable."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=32, choices=WorkflowKind.choices)
    platform = models.CharField(max_length=100)
    systems = models.ManyToManyField(System, blank=True, related_name="workflows")
    status = models.CharField(max_length=16, choices=WorkflowStatus.choices, default=WorkflowStatus.ACTIVE)
    criticality = models.CharField(max_length=16, choices=Criticality.choices, default=Criticality.MEDIUM)
    can_authenticate = models.BooleanField(default=True)
    can_provision = models.BooleanField(default=False)
    can_change = models.BooleanField(default=False)
    can_rotate = models.BooleanField(default=False)
    can_revoke = models.BooleanField(default=False)
    shutdown_procedure = models.TextField(blank=True, help_text="The runbook to stop this workflow.")
    kill_switch_steps = models.TextField(
        blank=True, help_text="Which credentials to suspend or revoke, which schedules to stop."
    )
    last_drilled_at = models.DateTimeField(null=True, blank=True)
    last_drill_result = models.CharField(max_length=16, choices=DrillResult.choices, blank=True, default="")
    retired_at = models.DateTimeField(null=True, blank=True)
    last_attested_at = models.DateTimeField(
        null=True, blank=True, help_text="When its owner last confirmed it in an attestation campaign."
    )
    credentials = models.ManyToManyField(Credential, through="Binding", related_name="workflows")
    approval_policy = models.ForeignKey(
        "governance.ApprovalPolicy", null=True, blank=True, on_delete=models.PROTECT, related_name="workflows"
    )
    # The credential source of a workflow that binds no credential: an explicit, audited statement.
    uses_no_credentials = models.BooleanField(
        default=False, help_text="The workflow authenticates to nothing: it binds no credential (say why below)."
    )
    no_credentials_statement = models.CharField(
        max_length=500, blank=True, help_text="Why this workflow needs no credential (required when it uses none)."
    )

    class Meta:
        ordering = ["name"]
        indexes = [  # the list's sort columns with the primary key; (owner, id), (team, id) for restrict()
            models.Index(fields=["platform", "id"], name="workflow_platform_id"),
            models.Index(fields=["status", "id"], name="workflow_status_id"),
            models.Index(fields=["criticality", "id"], name="workflow_criticality_id"),
            models.Index(fields=["owner", "id"], name="workflow_owner_id"),
            models.Index(fields=["team", "id"], name="workflow_team_id"),
            models.Index(fields=["last_attested_at", "id"], name="workflow_attested_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(uses_no_credentials=False) | ~Q(no_credentials_statement=""),
                name="workflow_no_credentials_has_statement",
            ),
            models.CheckConstraint(condition=check_in("kind", WorkflowKind), name="workflow_kind_valid"),
            models.CheckConstraint(condition=check_in("status", WorkflowStatus), name="workflow_status_valid"),
            models.CheckConstraint(condition=check_in("criticality", Criticality), name="workflow_criticality_valid"),
            models.CheckConstraint(
                condition=check_in("last_drill_result", DrillResult), name="workflow_drill_result_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=WorkflowStatus.RETIRED) | Q(retired_at__isnull=False),
                name="workflow_retired_has_date",
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("workflow-detail", args=[self.pk])

    @property
    def is_privileged(self) -> bool:
        """A workflow that can change access without a human is privileged automation."""
        return self.can_provision or self.can_change or self.can_rotate or self.can_revoke


class Binding(TimeStampedModel):
    """Workflow uses credential, for a purpose, with the scopes it needs."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="bindings")
    credential = models.ForeignKey(Credential, on_delete=models.PROTECT, related_name="bindings")
    purpose = models.CharField(max_length=300)
    scopes_used = models.JSONField(default=list, blank=True)
    # Set when a kill switch isolated the workflow from a credential it shares (rotate and isolate): the
    # workflow no longer counts as using it until its reactivation gives it back.
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_by_activation = models.ForeignKey(
        "governance.KillSwitchActivation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["workflow", "credential"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "credential"], name="binding_unique_pair"),
        ]

    def __str__(self):
        return f"{self.workflow} uses {self.credential}"
