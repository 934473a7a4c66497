"""Models of discovery: where Steward looks (sources), each look (runs) and what it found (discovered items).

A discovered item is one thing a source observed (a KV path, a certificate, a login role, an ACL
user, an automated workflow, a hard-coded secret), known by a natural key that is stable across
runs, with the facts observed (never a secret value: a hard-coded secret is known by a keyed
fingerprint, repository, path, line and commit only). Reconciliation says how it relates to the
inventory (matched, undeclared, missing, hard-coded secret); review says what a person decided
(adopt, link, dismiss until a date). The fields set by a run or by a review are written by the
discovery services only, never by a form.
"""

from django.db import models
from django.db.models import Q
from django.urls import reverse

from governance.choices import check_in
from governance.models.base import LeasedModel, RestrictedQuerySet, TimeStampedModel
from governance.models.inventory import Credential, SecretStore, System, Workflow, env_var_name_validator
from governance.models.people import Person, Team


class DiscoverySourceKind(models.TextChoices):
    OPENBAO = "openbao", "OpenBao / Vault"
    POSTGRES = "postgres", "PostgreSQL login roles"
    REDIS = "redis", "Redis ACL users"
    REPOSITORY = "repository", "Git repository or directory"
    SCANNER_IMPORT = "scanner_import", "Scanner report (gitleaks, trufflehog, SARIF)"


class DiscoveryRunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


DISCOVERY_RUN_OPEN = (DiscoveryRunStatus.PENDING, DiscoveryRunStatus.RUNNING)


class DiscoveredKind(models.TextChoices):
    KV_SECRET = "kv_secret", "KV secret (metadata)"
    CERTIFICATE = "certificate", "PKI certificate"
    AUTH_ROLE = "auth_role", "Auth role (AppRole, token role)"
    TOKEN = "token", "Token accessor"
    DATABASE_ROLE = "database_role", "Database secrets engine role"
    LOGIN_ROLE = "login_role", "PostgreSQL login role"
    ACL_USER = "acl_user", "Redis ACL user"
    SERVICE_ACCOUNT = "service_account", "Service account (manifest)"
    IAC_IDENTITY = "iac_identity", "Identity or key declared in infrastructure code"
    WORKFLOW = "workflow", "Automated workflow"
    HARD_CODED_SECRET = "hard_coded_secret", "Hard-coded secret"


IDENTITY_KINDS = (
    DiscoveredKind.AUTH_ROLE, DiscoveredKind.TOKEN, DiscoveredKind.DATABASE_ROLE, DiscoveredKind.LOGIN_ROLE,
    DiscoveredKind.ACL_USER, DiscoveredKind.SERVICE_ACCOUNT, DiscoveredKind.IAC_IDENTITY, DiscoveredKind.KV_SECRET,
    DiscoveredKind.CERTIFICATE,
)


class Reconciliation(models.TextChoices):
    MATCHED = "matched", "Matched"
    UNDECLARED = "undeclared", "Undeclared"
    MISSING = "missing", "Declared but missing"
    HARD_CODED_SECRET = "hard_coded_secret", "Hard-coded secret"


class ReviewState(models.TextChoices):
    PENDING = "pending", "To review"
    ADOPTED = "adopted", "Adopted"
    LINKED = "linked", "Linked"
    DISMISSED = "dismissed", "Dismissed"


class DiscoverySource(TimeStampedModel):
    """Where discovery looks, read-only. Settings are non-secret; the source's own credential is given by
    the NAME of an environment variable, as for secret stores and connectors."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=DiscoverySourceKind.choices)
    settings = models.JSONField(default=dict, blank=True, help_text="Typed per kind (governance.discovery.sources).")
    credential_env_var = models.CharField(max_length=100, blank=True, validators=[env_var_name_validator])
    system = models.ForeignKey(System, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               help_text="The system whose store, server or repository this is (its owners see it).")
    store = models.ForeignKey(SecretStore, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              help_text="The declared store this source reads (OpenBao), for matching paths.")
    schedule_seconds = models.PositiveIntegerField(default=6 * 3600, help_text="How often a run starts (beat).")
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=check_in("kind", DiscoverySourceKind), name="discoverysource_kind_valid"),
            models.CheckConstraint(
                condition=Q(credential_env_var="") | Q(credential_env_var__regex=r"^[A-Z_][A-Z0-9_]*$"),
                name="discoverysource_credential_is_env_var_name"),
            models.CheckConstraint(condition=Q(schedule_seconds__gte=60), name="discoverysource_schedule_min"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("discovery-source-detail", args=[self.pk])


class DiscoveryRun(LeasedModel):
    """One look at one source: counts, duration, errors; leased while it runs (governance.leases)."""

    source = models.ForeignKey(DiscoverySource, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=DiscoveryRunStatus.choices, default=DiscoveryRunStatus.PENDING)
    trigger = models.CharField(max_length=40)
    requested_by = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.CharField(max_length=200, blank=True, help_text="What the run is doing now.")
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=check_in("status", DiscoveryRunStatus), name="discoveryrun_status_valid"),
            models.UniqueConstraint(fields=["source"], condition=Q(status__in=DISCOVERY_RUN_OPEN),
                                    name="discoveryrun_one_open_per_source"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self):
        return f"discovery run #{self.pk} of {self.source_id} ({self.status})"

    def get_absolute_url(self):
        return reverse("discovery-run-detail", args=[self.pk])

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None or self.started_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class DiscoveredItem(models.Model):
    """One thing a source observed (or, when missing, a declared object it did not find)."""

    source = models.ForeignKey(DiscoverySource, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=32, choices=DiscoveredKind.choices)
    natural_key = models.CharField(max_length=500, help_text="Stable identity within the source and kind.")
    name = models.CharField(max_length=300)
    facts = models.JSONField(default=dict, blank=True, help_text="Observed metadata; never a secret value.")
    facts_digest = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the facts, to see a change.")
    privileged = models.BooleanField(default=False)
    fingerprint = models.CharField(max_length=64, blank=True,
                                   help_text="Keyed HMAC-SHA256 of a hard-coded secret (the key is outside the "
                                             "database); the same secret found twice has the same fingerprint.")
    present = models.BooleanField(default=True, help_text="Seen by the source's last successful run.")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    reconciliation = models.CharField(max_length=20, choices=Reconciliation.choices,
                                      default=Reconciliation.UNDECLARED)
    linked_credential = models.ForeignKey(Credential, on_delete=models.SET_NULL, null=True, blank=True,
                                          related_name="discovered_items")
    linked_workflow = models.ForeignKey(Workflow, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="discovered_items")
    review = models.CharField(max_length=16, choices=ReviewState.choices, default=ReviewState.PENDING)
    review_reason = models.CharField(max_length=500, blank=True)
    dismissed_until = models.DateTimeField(null=True, blank=True)
    dismissed_digest = models.CharField(max_length=64, blank=True, help_text="The facts as they were when dismissed.")
    reviewed_by = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # Denormalised from the source's system at each run, for findings and for restrict().
    owner = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["source", "kind", "natural_key"]
        constraints = [
            models.UniqueConstraint(fields=["source", "kind", "natural_key"], name="discovereditem_unique_key"),
            models.CheckConstraint(condition=check_in("kind", DiscoveredKind), name="discovereditem_kind_valid"),
            models.CheckConstraint(condition=check_in("reconciliation", Reconciliation),
                                   name="discovereditem_reconciliation_valid"),
            models.CheckConstraint(condition=check_in("review", ReviewState), name="discovereditem_review_valid"),
            models.CheckConstraint(
                condition=~Q(review=ReviewState.DISMISSED) | (Q(dismissed_until__isnull=False) & ~Q(review_reason="")),
                name="discovereditem_dismissal_has_reason_and_expiry"),
            models.CheckConstraint(condition=~Q(kind=DiscoveredKind.HARD_CODED_SECRET) | ~Q(fingerprint=""),
                                   name="discovereditem_secret_has_fingerprint"),
        ]
        indexes = [
            models.Index(fields=["reconciliation", "review"]),
            models.Index(fields=["fingerprint"]),
            models.Index(fields=["owner"]),
            models.Index(fields=["team"]),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("discovery-item-detail", args=[self.pk])
