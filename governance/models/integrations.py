"""Models of the integrations capability: API clients, their tokens, idempotency, webhooks, tickets.

An Integration is itself a non-human identity that Steward governs: it has an owner, a team,
scopes and an expiry, and a mirror Credential row (kind access_token, system "Steward API") so
that the checks see it like any other credential. Its tokens are stored only as a SHA-256 hash
with a visible prefix. Webhook endpoints keep their signing secret encrypted (or in OpenBao);
every delivery and every attempt is a row.
"""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from governance.choices import check_in
from governance.models.base import RestrictedQuerySet, TimeStampedModel
from governance.models.inventory import Credential
from governance.models.people import Person, Team
from governance.permissions import VIEW, register_model_rule, restrict

name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9 ._\-]*$", "Letters, digits, spaces, dots, dashes, underscores."
)


class IntegrationScope(models.TextChoices):
    READ = "read", "Read"
    FILE_REQUESTS = "file_requests", "File requests"
    DECIDE_REQUESTS = "decide_requests", "Decide requests"
    ADMIN = "admin", "Admin"
    # Incident-response operations (governance.api.views.operations), one scope each.
    LIFECYCLE_KILLSWITCH = "lifecycle:killswitch", "Kill switch (preview, activate)"
    LIFECYCLE_DRILL = "lifecycle:drill", "Kill-switch drills"
    LIFECYCLE_ROTATE = "lifecycle:rotate", "Rotate now"
    LIFECYCLE_REVOKE = "lifecycle:revoke", "Revoke a credential"
    SWEEP_RUN = "sweep:run", "Sweep now"
    DISCOVERY_RUN = "discovery:run", "Run a discovery source now"


class IntegrationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class Integration(TimeStampedModel):
    """An API client registered in Steward's own inventory."""

    name = models.CharField(max_length=120, unique=True, validators=[name_validator])
    description = models.TextField(blank=True)
    owner = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="owned_integrations")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True, related_name="integrations")
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(help_text="When the integration's access ends.")
    status = models.CharField(max_length=16, choices=IntegrationStatus.choices, default=IntegrationStatus.ACTIVE)
    disabled_at = models.DateTimeField(null=True, blank=True)
    credential = models.OneToOneField(
        Credential, on_delete=models.PROTECT, null=True, blank=True, related_name="integration"
    )
    created_by = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=check_in("status", IntegrationStatus), name="integration_status_valid"),
            models.CheckConstraint(
                condition=Q(status=IntegrationStatus.ACTIVE, disabled_at__isnull=True)
                | Q(status=IntegrationStatus.DISABLED, disabled_at__isnull=False),
                name="integration_disabled_has_date",
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("integration-detail", args=[self.pk])

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or IntegrationScope.ADMIN in self.scopes


class DelegationState(models.TextChoices):
    ACTIVE = "active", "In force"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class Delegation(models.Model):
    """A person's own consent that an integration may act for them (X-On-Behalf-Of), until it expires.

    Only that person creates or revokes it (services.delegations); nothing infers it from team
    membership or a security admin's say-so. At most one is open (not revoked) per person and
    integration; an expired one is closed when the person delegates again.
    """

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="delegations")
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="delegations")
    reason = models.TextField(help_text="Why this integration may act for you.")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["person", "integration"], condition=Q(revoked_at__isnull=True),
                                    name="delegation_one_open_per_person_integration"),
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")),
                                   name="delegation_expires_after_creation"),
            models.CheckConstraint(condition=Q(revoked_at__isnull=True) | Q(revoked_at__gte=models.F("created_at")),
                                   name="delegation_revoked_after_creation"),
            models.CheckConstraint(condition=~Q(reason=""), name="delegation_has_reason"),
        ]

    def __str__(self):
        return f"{self.person} → {self.integration}"

    def state_at(self, now) -> str:
        if self.revoked_at is not None and self.revoked_at < self.expires_at:
            return DelegationState.REVOKED
        if self.expires_at <= now:
            return DelegationState.EXPIRED
        return DelegationState.ACTIVE

    def in_force_at(self, now) -> bool:
        return self.state_at(now) == DelegationState.ACTIVE


class IntegrationToken(models.Model):
    """One bearer token. Only its SHA-256 hash and its visible prefix are stored."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(max_length=24, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    expires_at = models.DateTimeField()
    overlap_until = models.DateTimeField(
        null=True, blank=True, help_text="Replaced by a newer token: still accepted until this time."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(token_hash__regex=r"^[0-9a-f]{64}$"), name="integrationtoken_hash_is_sha256"
            ),
        ]

    def __str__(self):
        return self.prefix

    def state_at(self, now) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.overlap_until is not None:
            return "overlap" if self.overlap_until > now else "superseded"
        return "active"

    def is_usable_at(self, now) -> bool:
        return self.state_at(now) in ("active", "overlap")


class IdempotencyRecord(models.Model):
    """The first response to a POST with an Idempotency-Key, per principal (integration or person).

    While the request runs, the key is held by a lease (lease_token until lease_expires_at); the
    response is written in the transaction of the work, so a committed result is always replayed.
    """

    key = models.CharField(max_length=255)
    principal = models.CharField(max_length=64)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey(Person, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty while in progress.")
    response_body = models.JSONField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, help_text="The request that holds the key.")
    lease_expires_at = models.DateTimeField(null=True, blank=True,
                                            help_text="While in progress: after this, the key may be retried.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="idempotency_key_unique_per_principal"),
            models.CheckConstraint(
                condition=models.Q(response_status__isnull=False) | models.Q(lease_expires_at__isnull=False),
                name="idempotency_in_progress_has_lease"),
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self):
        return f"{self.principal} {self.key}"


class WebhookEventType(models.TextChoices):
    REQUEST_FILED = "approval_request.filed", "Approval request filed"
    REQUEST_DECIDED = "approval_request.decided", "Approval request decided"
    REQUEST_EXECUTED = "approval_request.executed", "Approval request executed"
    REQUEST_FAILED = "approval_request.failed", "Approval request failed"
    FINDING_OPENED = "finding.opened", "Finding opened"
    FINDING_RESOLVED = "finding.resolved", "Finding resolved"
    FINDING_RISK_ACCEPTED = "finding.risk_accepted", "Finding risk-accepted"
    ROTATION_FAILED = "rotation.failed", "Rotation failed"
    ATTESTATION_OVERDUE = "attestation.overdue", "Attestation overdue"
    KILL_SWITCH_ACTIVATED = "kill_switch.activated", "Kill switch activated"
    CERTIFICATE_RENEWED = "certificate.renewed", "Certificate renewed"
    PING = "webhook.ping", "Test event (sent on request)"


SUBSCRIBABLE_EVENTS = tuple(v for v in WebhookEventType.values if v != WebhookEventType.PING)


class EndpointStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class SecretBackend(models.TextChoices):
    LOCAL = "local", "Encrypted at rest (key derived from SECRET_KEY)"
    OPENBAO = "openbao", "OpenBao KV v2"


class WebhookEndpoint(TimeStampedModel):
    """A receiver subscribed to events. Its signing secret is Steward's own, shown once at creation."""

    name = models.CharField(max_length=120, unique=True, validators=[name_validator])
    url = models.URLField(max_length=2000)
    description = models.TextField(blank=True)
    event_types = models.JSONField(default=list)
    owner = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="owned_webhook_endpoints")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=16, choices=EndpointStatus.choices, default=EndpointStatus.ACTIVE)
    secret_backend = models.CharField(max_length=16, choices=SecretBackend.choices, default=SecretBackend.LOCAL)
    secret_ciphertext = models.TextField(blank=True)
    previous_secret_ciphertext = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_version = models.PositiveIntegerField(default=1)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=check_in("status", EndpointStatus), name="webhookendpoint_status_valid"),
            models.CheckConstraint(
                condition=check_in("secret_backend", SecretBackend), name="webhookendpoint_backend_valid"
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("webhook-detail", args=[self.pk])

    @property
    def in_secret_overlap(self) -> bool:

        return self.previous_secret_expires_at is not None and self.previous_secret_expires_at > timezone.now()


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint (one webhook-id), with its attempts."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    message_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=check_in("status", DeliveryStatus), name="webhookdelivery_status_valid"),
            models.CheckConstraint(
                condition=Q(status=DeliveryStatus.PENDING) | Q(completed_at__isnull=False),
                name="webhookdelivery_done_has_date",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.event_type} → {self.endpoint_id} ({self.message_id})"

    def get_absolute_url(self):
        return reverse("webhook-delivery-detail", args=[self.pk])


class AttemptOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    RETRY = "retry", "Failed, will retry"
    FAILED = "failed", "Failed, not retried"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    request_headers = models.JSONField(default=dict)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhookattempt_number_unique"),
            models.CheckConstraint(condition=check_in("outcome", AttemptOutcome), name="webhookattempt_outcome_valid"),
        ]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"


def _integration_rule(queryset, user, action):
    """Owners and their team see and manage their integrations; security admins and auditors (above) all."""
    return queryset.filter(Q(owner=user) | Exists(Team.objects.filter(pk=OuterRef("team_id"), group__user=user)))


def _delegation_rule(queryset, user, action):
    """A person sees their own delegations; who may see an integration sees who delegated to it.
    Changes are the person's own (services.delegations), never another's."""
    if action != VIEW:
        return queryset.filter(person=user)
    visible = restrict(Integration.objects.all(), user, action)
    return queryset.filter(Q(person=user) | Exists(visible.filter(pk=OuterRef("integration_id"))))


def _endpoint_rule(queryset, user, action):
    """Webhook endpoints are managed by security admins; their owner and team may look at them."""
    if action != VIEW:
        return queryset.none()
    return queryset.filter(Q(owner=user) | Exists(Team.objects.filter(pk=OuterRef("team_id"), group__user=user)))


def _delivery_rule(queryset, user, action):
    visible = restrict(WebhookEndpoint.objects.all(), user, action)
    return queryset.filter(Exists(visible.filter(pk=OuterRef("endpoint_id"))))


def _attempt_rule(queryset, user, action):
    visible = restrict(WebhookEndpoint.objects.all(), user, action)
    return queryset.filter(Exists(visible.filter(pk=OuterRef("delivery__endpoint_id"))))


def _token_rule(queryset, user, action):
    visible = restrict(Integration.objects.all(), user, action)
    return queryset.filter(Exists(visible.filter(pk=OuterRef("integration_id"))))


register_model_rule(Integration, _integration_rule)
register_model_rule(IntegrationToken, _token_rule)
register_model_rule(Delegation, _delegation_rule)
register_model_rule(WebhookEndpoint, _endpoint_rule)
register_model_rule(WebhookDelivery, _delivery_rule)
register_model_rule(WebhookAttempt, _attempt_rule)
