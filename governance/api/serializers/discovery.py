"""Discovery over the API: discovered items (and their review bodies), sources and runs. Read-only models:
every change is a review action or a run request, through governance.discovery's services."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from governance import permissions
from governance.api.serializers.common import ModelSerializer, restrict_field
from governance.models import Credential, Workflow
from governance.models.discovery import DiscoveredItem, DiscoveryRun, DiscoverySource


class DiscoveredItemSerializer(ModelSerializer):
    source_name = serializers.CharField(source="source.name", read_only=True)
    facts = serializers.DictField(read_only=True, help_text="What the source observed; never a secret value.")
    fingerprint = serializers.CharField(read_only=True, help_text="Keyed HMAC-SHA256 of a hard-coded secret "
                                                                  "(empty for other kinds).")

    class Meta:
        model = DiscoveredItem
        fields = ("id", "source", "source_name", "kind", "natural_key", "name", "facts", "privileged", "fingerprint",
                  "present", "first_seen_at", "last_seen_at", "reconciliation", "linked_credential",
                  "linked_workflow", "review", "review_reason", "dismissed_until", "reviewed_by", "reviewed_at",
                  "owner", "team")
        read_only_fields = fields


class DismissSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why this needs no governance.")
    until = serializers.DateTimeField(help_text="When it comes back to the queue: in the future, at most a year.")


class LinkSerializer(serializers.Serializer):
    credential = serializers.PrimaryKeyRelatedField(queryset=Credential.objects.none(), required=False,
                                                    help_text="A declared credential you may see (for an "
                                                              "identity or a secret).")
    workflow = serializers.PrimaryKeyRelatedField(queryset=Workflow.objects.none(), required=False,
                                                  help_text="A declared workflow you may see (for a workflow).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the review service's rule: a link needs the item changeable and the target visible
        restrict_field(self, "credential", Credential, permissions.VIEW)
        restrict_field(self, "workflow", Workflow, permissions.VIEW)

    def validate(self, attrs):
        if bool(attrs.get("credential")) == bool(attrs.get("workflow")):
            raise serializers.ValidationError({"credential": "Give a credential or a workflow (one of them)."})
        return attrs


class DiscoveryRunSerializer(ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    counts = serializers.DictField(read_only=True)
    errors = serializers.ListField(child=serializers.CharField(), read_only=True)
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = DiscoveryRun
        fields = ("id", "source", "status", "trigger", "requested_by", "created_at", "started_at", "finished_at",
                  "duration_seconds", "progress", "counts", "errors", "status_url")
        read_only_fields = fields

    def get_status_url(self, run) -> str:
        """Poll this until status is succeeded or failed."""
        return reverse("v1:discoveryrun-detail", args=[run.pk])


class DiscoverySourceSerializer(ModelSerializer):
    settings = serializers.DictField(read_only=True, help_text="Non-secret settings, typed per kind.")
    latest_run = serializers.IntegerField(source="latest_run_id", read_only=True, allow_null=True)
    latest_run_status = serializers.CharField(read_only=True, allow_null=True)
    item_count = serializers.IntegerField(read_only=True, help_text="Items the last run saw.")

    class Meta:
        model = DiscoverySource
        fields = ("id", "name", "kind", "settings", "credential_env_var", "system", "store", "schedule_seconds",
                  "enabled", "last_run_at", "last_success_at", "last_error_at", "last_error", "latest_run",
                  "latest_run_status", "item_count")
        read_only_fields = fields
