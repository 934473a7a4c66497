"""The in-app inbox: one Notification per person and event, written with the event beside its mail.

A notification is told once: dedupe_key names the event (approval:12:filed, finding:40:opened ...) and is
unique per recipient, so a task or sweep that runs twice inserts nothing the second time (the insert
ignores the conflict). Only its recipient reads it; reading it (read_at) is not audited.
"""

from django.db import models
from django.db.models import Q

from governance.choices import check_in
from governance.models.people import Person


class NotificationKind(models.TextChoices):
    APPROVAL_WAITING = "approval_waiting", "Request waiting for your decision"
    APPROVAL_DECIDED = "approval_decided", "Decision on your request"
    FINDING_OPENED = "finding_opened", "Finding opened"
    ATTESTATION = "attestation", "Attestation"
    ROTATION_FAILED = "rotation_failed", "Rotation failed"
    PROVISIONING_FAILED = "provisioning_failed", "Provisioning failed"
    REVOCATION_FAILED = "revocation_failed", "Revocation failed"
    CERTIFICATE_NOT_REVOKED = "certificate_not_revoked", "Superseded certificate not revoked"


class Notification(models.Model):
    recipient = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    subject = models.CharField(max_length=300)
    body = models.TextField(blank=True, help_text="A short text; the linked page has the details.")
    link = models.CharField(max_length=500, blank=True, help_text="A portal path (/approvals/12/), never a URL.")
    object_type = models.CharField(max_length=100, blank=True, help_text="The target's label (governance.finding).")
    object_id = models.BigIntegerField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=200, help_text="The event; a recipient is told of it once.")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "dedupe_key"], name="notification_once_per_recipient"),
            models.CheckConstraint(condition=check_in("kind", NotificationKind), name="notification_kind_valid"),
            models.CheckConstraint(condition=Q(link="") | Q(link__startswith="/"),
                                   name="notification_link_is_a_path"),
            models.CheckConstraint(condition=Q(object_id__isnull=True) | ~Q(object_type=""),
                                   name="notification_target_has_type"),
        ]
        indexes = [
            # the inbox (unread first, newest first) and the unread count
            models.Index(fields=["recipient", "read_at", "id"], name="notification_inbox"),
            # the API's list (newest first, a cursor on id)
            models.Index(fields=["recipient", "id"], name="notification_recipient_id"),
        ]

    def __str__(self):
        return f"{self.recipient}: {self.subject}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None
