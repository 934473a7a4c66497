"""The inventory as the API shows and accepts it: the services' field lists, nothing more."""

from __future__ import annotations

from rest_framework import serializers

from governance import permissions
from governance.api.serializers.common import (
    IdField,
    JSONObjectField,
    ModelSerializer,
    StringListField,
    restrict_field,
)
from governance.models import Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.services import inventory as inventory_services


def gated(model) -> tuple[str, ...]:
    return tuple(inventory_services.GATED_FIELDS[model])


class OwnedSerializer(ModelSerializer):
    """Gated fields (state, owner, backup team, ...) are read-only: each changes through its own operation,
    and a PATCH or PUT that sends one with a new value answers 400 naming that operation (services.inventory)."""

    owner = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True,
                                               help_text="Changed by an ownership transfer.")
    team = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True,
                                              help_text="Changed by an ownership transfer.")


class RegistrationFields(serializers.Serializer):
    """On registration (POST) the gated fields may be declared; the service decides who may set which."""

    owner = IdField(queryset=Person.objects.active(), allow_null=True, required=False,
                                               help_text="Yourself unless you are a security admin.")
    team = IdField(queryset=Team.objects.all(), allow_null=True, required=False)


class SystemSerializer(OwnedSerializer):
    credential_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = System
        fields = ("id", *inventory_services.OWNED_FIELDS[System], "retired_at", "credential_count", "created_at",
                  "updated_at")
        read_only_fields = (*gated(System), "retired_at", "created_at", "updated_at")


class SystemRegistrationSerializer(RegistrationFields, SystemSerializer):
    class Meta(SystemSerializer.Meta):
        read_only_fields = ("retired_at", "created_at", "updated_at")


class SystemHostsSerializer(serializers.Serializer):
    hosts = serializers.ListField(child=serializers.CharField(max_length=253), allow_empty=True, max_length=100,
                                  help_text="The host names the system's certificates may carry, e.g. "
                                            "[\"orders.example.com\", \"*.orders.example.com\"].")
    reason = serializers.CharField(max_length=500)


class SecretStoreSerializer(ModelSerializer):
    settings = JSONObjectField(required=False, help_text="Non-secret connection settings.")
    is_managed = serializers.BooleanField(read_only=True)
    credential_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = SecretStore
        fields = ("id", *inventory_services.SECRET_STORE_FIELDS, "is_managed", "credential_count", "created_at",
                  "updated_at")
        read_only_fields = ("created_at", "updated_at")


# Set by the sweep only (services/risk.py): read-only, and a write that sends them is ignored like last_attested_at.
SWEPT_CREDENTIAL_FIELDS = ("risk_score", "risk_reasons", "swept_rotation_due_at", "swept_expires_at")


class CredentialSerializer(OwnedSerializer):
    scopes = StringListField(read_only=True, help_text="Changed by a privileged scope change request.")
    workflow_count = serializers.IntegerField(read_only=True, default=0)
    risk_reasons = StringListField(read_only=True, help_text="Why the risk score is what it is (set by the sweep).")

    class Meta:
        model = Credential
        fields = ("id", *inventory_services.OWNED_FIELDS[Credential], "last_attested_at", "workflow_count",
                  *SWEPT_CREDENTIAL_FIELDS, "created_at", "updated_at")
        read_only_fields = (*gated(Credential), "last_attested_at", *SWEPT_CREDENTIAL_FIELDS, "created_at",
                            "updated_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_field(self, "system", System)
        restrict_field(self, "store", SecretStore)


class CredentialRegistrationSerializer(RegistrationFields, CredentialSerializer):
    scopes = StringListField(required=False)

    class Meta(CredentialSerializer.Meta):
        read_only_fields = ("last_attested_at", *SWEPT_CREDENTIAL_FIELDS, "created_at", "updated_at")


class WorkflowSerializer(OwnedSerializer):
    credential_count = serializers.IntegerField(read_only=True, default=0)
    is_privileged = serializers.BooleanField(read_only=True)

    class Meta:
        model = Workflow
        fields = ("id", *inventory_services.OWNED_FIELDS[Workflow], "is_privileged", "retired_at",
                  "last_attested_at", "credential_count", "created_at", "updated_at")
        read_only_fields = (*gated(Workflow), "retired_at", "last_attested_at", "created_at", "updated_at")
        extra_kwargs = {"systems": {"required": False}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_field(self, "systems", System)


class WorkflowRegistrationSerializer(RegistrationFields, WorkflowSerializer):
    class Meta(WorkflowSerializer.Meta):
        read_only_fields = ("retired_at", "last_attested_at", "created_at", "updated_at")


class TransitionSerializer(serializers.Serializer):
    """A transition asked for by name (services.states.DIRECT lists which)."""

    transition = serializers.CharField(max_length=40)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class BindingSerializer(ModelSerializer):
    scopes_used = StringListField(required=False)

    class Meta:
        model = Binding
        fields = ("id", *inventory_services.BINDING_FIELDS, "created_at")
        read_only_fields = ("created_at",)
        validators = []  # the service reports a duplicate pair as a field error

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_field(self, "workflow", Workflow, permissions.VIEW)
        restrict_field(self, "credential", Credential, permissions.VIEW)
