"""Webhook endpoints, deliveries and attempts. The signing secret appears once, when generated."""

from __future__ import annotations

from rest_framework import serializers

from governance.api.serializers.common import IdField, ModelSerializer
from governance.models import Person, Team
from governance.models.integrations import (
    SUBSCRIBABLE_EVENTS,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


class WebhookEndpointSerializer(ModelSerializer):
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=SUBSCRIBABLE_EVENTS), min_length=1,
                                        max_length=len(SUBSCRIBABLE_EVENTS))
    owner = IdField(queryset=Person.objects.active())
    team = IdField(queryset=Team.objects.all(), allow_null=True, required=False)
    in_secret_overlap = serializers.BooleanField(read_only=True, help_text="Both signatures are being sent.")

    class Meta:
        model = WebhookEndpoint
        fields = ("id", "name", "url", "description", "event_types", "owner", "team", "status", "secret_backend",
                  "secret_version", "secret_rotated_at", "in_secret_overlap", "created_at", "updated_at")
        read_only_fields = ("status", "secret_backend", "secret_version", "secret_rotated_at", "created_at",
                            "updated_at")


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, allow_null=True,
                                   help_text="The signing secret (whsec_...). Shown once (null in a replay).")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = (*WebhookEndpointSerializer.Meta.fields, "secret")


class RotateSecretSerializer(serializers.Serializer):
    overlap_hours = serializers.IntegerField(min_value=0, max_value=168, required=False,
                                             help_text="How long both signatures are sent (default 24).")


class WebhookAttemptSerializer(ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ("id", "number", "started_at", "duration_ms", "request_headers", "response_status",
                  "response_body", "error", "outcome")
        read_only_fields = fields


class WebhookDeliverySerializer(ModelSerializer):
    payload = serializers.DictField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ("id", "endpoint", "message_id", "event_type", "payload", "status", "attempt_count",
                  "next_attempt_at", "last_response_status", "created_at", "completed_at")
        read_only_fields = fields


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = (*WebhookDeliverySerializer.Meta.fields, "attempts")
        read_only_fields = fields
