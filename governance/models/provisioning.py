"""Provisioning runs: creating a requested credential's identity in its system, with proof.

One row per provisioned credential (the approved provisioning request writes it, with its outbox
message, in the approving transaction). A worker holds it under a lease while the connector works;
steps lists what the current attempt may have created (each step is recorded before it is tried),
so a failed or abandoned attempt is compensated from it, and the credential becomes active only
once the connector's proof is recorded here.
"""

from django.db import models

from governance.choices import check_in
from governance.models.approvals import ApprovalRequest
from governance.models.base import LeasedModel, TimeStampedModel
from governance.models.inventory import Credential


class ProvisioningStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Provisioned, with proof"
    FAILED = "failed", "Failed"


class CredentialProvisioning(LeasedModel, TimeStampedModel):
    """The run that creates one credential's identity, writes its secret to its store and proves it works."""

    credential = models.OneToOneField(Credential, on_delete=models.CASCADE, related_name="provisioning")
    approval_request = models.ForeignKey(ApprovalRequest, on_delete=models.SET_NULL, null=True, blank=True,
                                         related_name="+")
    connector_kind = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=ProvisioningStatus.choices, default=ProvisioningStatus.PENDING)
    steps = models.JSONField(default=list, blank=True,
                             help_text="What the current attempt created (or began to): undone when it fails.")
    proof = models.JSONField(default=list, blank=True)
    undo_proof = models.JSONField(default=list, blank=True, help_text="What the compensation removed, and how.")
    reason = models.CharField(max_length=2000, blank=True)
    cleanup_incomplete = models.BooleanField(
        default=False, help_text="The compensation could not remove everything: the steps left are listed.")
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=check_in("status", ProvisioningStatus),
                                   name="provisioning_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self):
        return f"Provisioning of {self.credential}"
