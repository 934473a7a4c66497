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


class OwnedSerializer(ModelSerializer):
    owner = IdField(queryset=Person.objects.active(), allow_null=True, required=False)
    team = IdField(queryset=Team.objects.all(), allow_null=True, required=False)


class SystemSerializer(OwnedSerializer):
    credential_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = System
        fields = ("id", *inventory_services.SYSTEM_FIELDS, "retired_at", "credential_count", "created_at",
                  "updated_at")
        read_only_fields = ("retired_at", "created_at", "updated_at")


class SecretStoreSerializer(ModelSerializer):
    settings = JSONObjectField(required=False, help_text="Non-secret connection settings.")
    is_managed = serializers.BooleanField(read_only=True)
    credential_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = SecretStore
        fields = ("id", *inventory_services.SECRET_STORE_FIELDS, "is_managed", "credential_count", "created_at",
                  "updated_at")
        read_only_fields = ("created_at", "updated_at")


CREDENTIAL_WRITE_FIELDS = tuple(f for f in inventory_services.CREDENTIAL_FIELDS)


class CredentialSerializer(OwnedSerializer):
    scopes = StringListField(required=False)
    workflow_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Credential
        fields = ("id", *CREDENTIAL_WRITE_FIELDS, "last_attested_at", "workflow_count", "created_at", "updated_at")
        read_only_fields = ("last_attested_at", "created_at", "updated_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_field(self, "system", System)
        restrict_field(self, "store", SecretStore)


class WorkflowSerializer(OwnedSerializer):
    credential_count = serializers.IntegerField(read_only=True, default=0)
    is_privileged = serializers.BooleanField(read_only=True)

    class Meta:
        model = Workflow
        fields = ("id", *inventory_services.WORKFLOW_FIELDS, "is_privileged", "retired_at", "last_attested_at",
                  "credential_count", "created_at", "updated_at")
        read_only_fields = ("retired_at", "last_attested_at", "created_at", "updated_at")
        extra_kwargs = {"systems": {"required": False}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_field(self, "systems", System)


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
