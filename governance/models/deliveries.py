"""Deliveries: where a credential's value is pushed for the CI pipelines that consume it.

A credential lives in its managed store (OpenBao KV: the store of record); a CredentialDelivery
says that one field of it is also kept as a CI variable (a GitHub Actions repository or
environment secret, a GitLab CI/CD variable). Rotation pushes the new value to every delivery
in the same job, after the new value is proven, and records each push (DeliveryPush); the kill
switch and revocation delete the CI variable. Steward keeps where the value goes, never the value.
"""

from django.db import models
from django.db.models import Exists, OuterRef, Q

from governance.choices import CI_STORE_KINDS, check_in
from governance.models.base import RestrictedQuerySet, TimeStampedModel
from governance.models.inventory import Credential, SecretStore


class DeliveryState(models.TextChoices):
    NEW = "new", "Not pushed yet"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Last push failed"
    WITHDRAWN = "withdrawn", "Deleted from the CI store"


class CredentialDelivery(TimeStampedModel):
    """One CI variable that holds (one field of) a credential's current value."""

    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="deliveries")
    store = models.ForeignKey(SecretStore, on_delete=models.PROTECT, related_name="deliveries",
                              limit_choices_to={"kind__in": sorted(CI_STORE_KINDS)})
    repository = models.CharField(max_length=300, help_text="GitHub owner/repo, or the GitLab project path or id.")
    environment = models.CharField(max_length=255, blank=True,
                                   help_text="GitHub environment, or GitLab environment scope; empty: repository-wide.")
    variable_name = models.CharField(max_length=255)
    value_key = models.CharField(max_length=100, default="value",
                                 help_text="Which field of the stored secret is pushed (value, password, "
                                           "secret_access_key, access_key_id, ...).")
    masked = models.BooleanField(default=True, help_text="GitLab: masked in job logs.")
    protected = models.BooleanField(default=True, help_text="GitLab: exposed to protected branches and tags only.")
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.NEW)
    delivered_version = models.CharField(max_length=100, blank=True,
                                         help_text="The credential's store version the CI variable holds.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["credential", "id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "repository", "environment", "variable_name"],
                                    name="delivery_one_per_ci_variable"),
            models.CheckConstraint(condition=check_in("state", DeliveryState), name="delivery_state_valid"),
            models.CheckConstraint(condition=~Q(variable_name="") & ~Q(repository=""),
                                   name="delivery_names_a_variable"),
        ]

    def __str__(self):
        where = f"{self.repository}/{self.environment}" if self.environment else self.repository
        return f"{self.variable_name} in {where} ({self.store})"


class PushOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Pushed, with proof"
    FAILED = "failed", "Failed"


class PushAction(models.TextChoices):
    PUSH = "push", "Push the value"
    DELETE = "delete", "Delete the variable"


class DeliveryPush(models.Model):
    """Every push (or deletion) of a delivery, success or failure, with the proof or the reason."""

    delivery = models.ForeignKey(CredentialDelivery, on_delete=models.CASCADE, related_name="pushes")
    action = models.CharField(max_length=16, choices=PushAction.choices, default=PushAction.PUSH)
    rotation_job_id = models.BigIntegerField(null=True, blank=True)
    kill_switch_step_id = models.BigIntegerField(null=True, blank=True)
    version = models.CharField(max_length=100, blank=True, help_text="The credential's store version pushed.")
    outcome = models.CharField(max_length=16, choices=PushOutcome.choices)
    error_code = models.CharField(max_length=32, blank=True)
    detail = models.CharField(max_length=1000, blank=True)
    proof = models.JSONField(default=list, blank=True)
    performed_at = models.DateTimeField()

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-performed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=check_in("outcome", PushOutcome), name="deliverypush_outcome_valid"),
            models.CheckConstraint(condition=check_in("action", PushAction), name="deliverypush_action_valid"),
        ]
        indexes = [models.Index(fields=["rotation_job_id"])]

    def __str__(self):
        return f"{self.get_action_display()} {self.delivery}: {self.get_outcome_display()}"


def _via_credential(path: str):
    def rule(queryset, user, action):
        from governance.permissions import restrict  # permissions imports the models: resolved at call time

        visible = restrict(Credential.objects.all(), user, action)
        return queryset.filter(Exists(visible.filter(pk=OuterRef(path))))

    return rule


def register_rules() -> None:
    """Called from GovernanceConfig.ready() (not on import): who may see a delivery may see its credential."""
    from governance.permissions import register_model_rule  # permissions imports the models

    register_model_rule(CredentialDelivery, _via_credential("credential_id"))
    register_model_rule(DeliveryPush, _via_credential("delivery__credential_id"))
