"""The transactional outbox and the mail delivery record: background work as rows, not as hopes.

An OutboxMessage is the intent to run a Celery task, written in the same transaction as the change
that needs it, so the intent commits exactly when the change does; governance.outbox publishes it
to the broker and retries while the broker is away. A MailDelivery is one email with its attempts,
sent by a worker (through the outbox) and retried when the mail server fails.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from governance.choices import check_in


class OutboxMessage(models.Model):
    """One task to publish: its name, its JSON arguments, and where publishing stands."""

    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                                  help_text="Published as the Celery task id: every publish of this row carries it.")
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True,
                                  help_text="While unpublished, a second message with this key joins this one.")
    eta = models.DateTimeField(null=True, blank=True, help_text="The task should not run before this time.")
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now,
                                           help_text="When a relay may next try to publish (a claim pushes it on).")
    last_error = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="outbox_one_unpublished_per_dedupe_key",
                                    condition=Q(published_at__isnull=True, dedupe_key__isnull=False)),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="outbox_unpublished_due",
                         condition=Q(published_at__isnull=True)),
            models.Index(fields=["published_at"], name="outbox_published"),
        ]

    def __str__(self):
        state = "published" if self.published_at else f"unpublished, {self.attempts} attempt(s)"
        return f"{self.task_name} {self.message_id} ({state})"


class MailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class MailDelivery(models.Model):
    """One email: written with the change that caused it, sent and retried by a worker."""

    subject = models.TextField()
    body = models.TextField()
    from_email = models.CharField(max_length=254, blank=True, help_text="Empty: DEFAULT_FROM_EMAIL.")
    recipients = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=MailStatus.choices, default=MailStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "mail deliveries"
        constraints = [
            models.CheckConstraint(condition=check_in("status", MailStatus), name="maildelivery_status_valid"),
            models.CheckConstraint(condition=~Q(status=MailStatus.SENT) | Q(sent_at__isnull=False),
                                   name="maildelivery_sent_has_date"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="maildelivery_due")]

    def __str__(self):
        return f"{self.subject[:60]} → {', '.join(self.recipients)[:60]} ({self.status})"
