"""Integrations and their tokens. A token's value appears once, in the response that issued it."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from governance.api.serializers.common import IdField, ModelSerializer
from governance.models import Person, SecretStore, Team
from governance.models.integrations import Integration, IntegrationScope, IntegrationToken


class IntegrationTokenSerializer(ModelSerializer):
    state = serializers.SerializerMethodField()

    class Meta:
        model = IntegrationToken
        fields = ("id", "integration", "prefix", "state", "created_at", "expires_at", "overlap_until",
                  "revoked_at", "last_used_at")
        read_only_fields = fields

    def get_state(self, token) -> str:
        """active, overlap (replaced, still accepted), superseded, expired or revoked."""
        return token.state_at(timezone.now())


class IntegrationSerializer(ModelSerializer):
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=IntegrationScope.choices), min_length=1,
                                   max_length=len(IntegrationScope.values))
    owner = IdField(queryset=Person.objects.active())
    team = IdField(queryset=Team.objects.all(), allow_null=True, required=False)
    credential = IdField(read_only=True, help_text="Its mirror in the inventory.")
    token_prefix = serializers.SerializerMethodField()

    class Meta:
        model = Integration
        fields = ("id", "name", "description", "owner", "team", "scopes", "expires_at", "status", "disabled_at",
                  "credential", "token_prefix", "created_at", "updated_at")
        read_only_fields = ("status", "disabled_at", "credential", "created_at", "updated_at")
        extra_kwargs = {"expires_at": {"required": False}}

    def validate(self, attrs):
        if "allowed_people" in getattr(self, "initial_data", {}):
            raise serializers.ValidationError({"allowed_people": (
                "Removed: an integration acts for its owner, or for people who delegate to it themselves in the "
                "portal (Delegations). Nobody can grant that for someone else.")})
        return super().validate(attrs)

    def get_token_prefix(self, integration) -> str | None:
        """Prefix of the current token (from the prefetched tokens)."""
        now = timezone.now()
        current = [t for t in integration.tokens.all() if t.state_at(now) == "active"]
        return max(current, key=lambda t: (t.created_at, t.pk)).prefix if current else None


class IntegrationCreateSerializer(IntegrationSerializer):
    store = IdField(queryset=SecretStore.objects.all(), required=False, allow_null=True,
                                               write_only=True, help_text="Where the client keeps its token.")
    store_path = serializers.CharField(max_length=500, required=False, allow_blank=True, write_only=True)

    class Meta(IntegrationSerializer.Meta):
        fields = (*IntegrationSerializer.Meta.fields, "store", "store_path")


class IntegrationWithTokenSerializer(IntegrationSerializer):
    token = serializers.CharField(read_only=True, allow_null=True,
                                  help_text="The bearer token. Shown once: store it now (null in a replay).")

    class Meta(IntegrationSerializer.Meta):
        fields = (*IntegrationSerializer.Meta.fields, "token")


class IntegrationUpdateSerializer(IntegrationSerializer):
    class Meta(IntegrationSerializer.Meta):
        read_only_fields = (*IntegrationSerializer.Meta.read_only_fields, "name")


class RotateTokenSerializer(serializers.Serializer):
    overlap_hours = serializers.IntegerField(min_value=0, max_value=168, required=False,
                                             help_text="How long the old token keeps working (default 24).")


class IssuedTokenSerializer(IntegrationTokenSerializer):
    token = serializers.CharField(read_only=True, allow_null=True,
                                  help_text="The new bearer token. Shown once: store it now (null in a replay).")

    class Meta(IntegrationTokenSerializer.Meta):
        fields = (*IntegrationTokenSerializer.Meta.fields, "token")
        read_only_fields = fields


class WhoAmISerializer(serializers.Serializer):
    person = serializers.IntegerField(help_text="The person whose rights apply.")
    username = serializers.CharField()
    integration = serializers.IntegerField(allow_null=True)
    integration_name = serializers.CharField(allow_null=True)
    scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)
    token_prefix = serializers.CharField(allow_null=True)
    token_expires_at = serializers.DateTimeField(allow_null=True)
