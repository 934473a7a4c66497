"""The append-only, hash-chained audit trail.

Each event stores the hash of its predecessor and its own hash over a canonical serialisation
(governance.audit.canonical_event_bytes). There is no update or delete path in the code; on
PostgreSQL and SQLite a trigger (migration 0002) refuses UPDATE and DELETE.
"""

from django.db import models

from governance.models.base import RestrictedQuerySet


class ActorKind(models.TextChoices):
    PERSON = "person", "Person"
    INTEGRATION = "integration", "Integration"
    SYSTEM = "system", "System task"


class AuditEvent(models.Model):
    sequence = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200)
    on_behalf_of_id = models.BigIntegerField(null=True, blank=True)
    task_id = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    summary = models.CharField(max_length=500)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True, help_text="The server's own id of the request.")
    client_request_id = models.CharField(max_length=128, blank=True, default="",
                                         help_text="The client's X-Request-ID, as sent (evidence, not an identity).")
    source_address = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "sequence"]),
            models.Index(fields=["actor_kind", "actor_id"]),
            models.Index(fields=["action"]),
            models.Index(fields=["occurred_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(sequence__gte=1), name="auditevent_sequence_positive"),
            models.CheckConstraint(
                condition=models.Q(actor_kind__in=ActorKind.values), name="auditevent_actor_kind_valid"
            ),
        ]

    def __str__(self):
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise RuntimeError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("Audit events are append-only.")
