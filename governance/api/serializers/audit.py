"""Audit events, read-only, for auditors and security admins."""

from __future__ import annotations

from rest_framework import serializers

from governance.api.serializers.common import ModelSerializer
from governance.models import AuditEvent


class AuditEventSerializer(ModelSerializer):
    changes = serializers.DictField(read_only=True, help_text="{field: {before, after}}; secrets redacted.")

    class Meta:
        model = AuditEvent
        fields = ("id", "sequence", "occurred_at", "actor_kind", "actor_id", "actor_label", "on_behalf_of_id",
                  "task_id", "action", "object_type", "object_id", "object_repr", "summary", "changes",
                  "request_id", "client_request_id", "source_address", "prev_hash", "hash")
        read_only_fields = fields
