"""A credential's provisioning run as the API shows it: status, the steps it created, proof or reason."""

from __future__ import annotations

from rest_framework import serializers

from governance.api.serializers.common import ModelSerializer
from governance.models.provisioning import CredentialProvisioning


class CredentialProvisioningSerializer(ModelSerializer):
    credential_status = serializers.CharField(source="credential.status", read_only=True)
    steps = serializers.ListField(child=serializers.CharField(), read_only=True,
                                  help_text="What the run created (succeeded), or what is left after a failed undo.")
    proof = serializers.ListField(child=serializers.CharField(), read_only=True)
    undo_proof = serializers.ListField(child=serializers.CharField(), read_only=True,
                                       help_text="What the compensation removed, and how it was checked.")

    class Meta:
        model = CredentialProvisioning
        fields = ["id", "credential", "credential_status", "approval_request", "connector_kind", "status", "attempts",
                  "steps", "proof", "undo_proof", "reason", "cleanup_incomplete", "started_at", "finished_at",
                  "created_at", "updated_at"]
        read_only_fields = fields
