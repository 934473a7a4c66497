"""Certificate renewal: the certificate a renewal superseded, revoked at its issuer when the overlap ends.

A renewal writes the new certificate where its consumers read it and records the one it replaced
here, with the time its overlap ends (STEWARD_CERT_REVOKE_OVERLAP_HOURS). The renewal sweep revokes
each due row at OpenBao under a lease and records the revocation time read back from OpenBao; a row
is unique per credential and serial, so a renewal recorded twice supersedes once.
"""

from django.db import models
from django.db.models import Q

from governance.choices import check_in
from governance.models.base import LeasedModel, TimeStampedModel
from governance.models.inventory import Credential


class SupersessionStatus(models.TextChoices):
    PENDING = "pending", "Valid until its overlap ends"
    RUNNING = "running", "Being revoked"
    REVOKED = "revoked", "Revoked, with proof"
    FAILED = "failed", "Revocation failed"


class CertificateSupersession(LeasedModel, TimeStampedModel):
    """One certificate a renewal replaced, and its revocation after the overlap."""

    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="supersessions")
    serial = models.CharField(max_length=100, help_text="The superseded certificate's serial.")
    superseded_by = models.CharField(max_length=100, help_text="The serial of the certificate that replaced it.")
    superseded_at = models.DateTimeField()
    revoke_after = models.DateTimeField(help_text="When the overlap ends and the certificate is revoked.")
    status = models.CharField(max_length=16, choices=SupersessionStatus.choices, default=SupersessionStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="The revocation time OpenBao reports.")
    proof = models.JSONField(default=list, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-superseded_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["credential", "serial"], name="supersession_one_per_certificate"),
            models.CheckConstraint(condition=check_in("status", SupersessionStatus), name="supersession_status_valid"),
            models.CheckConstraint(condition=~Q(status="revoked") | Q(revoked_at__isnull=False),
                                   name="supersession_revoked_has_time"),
        ]
        indexes = [models.Index(fields=["status", "revoke_after"])]

    def __str__(self):
        return f"Certificate {self.serial} of {self.credential} (superseded by {self.superseded_by})"
