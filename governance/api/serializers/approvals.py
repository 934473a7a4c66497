"""Approval requests and decisions as the API shows them, and the bodies of the workflow operations."""

from __future__ import annotations

from rest_framework import serializers

from governance.api.serializers.common import JSONObjectField, ModelSerializer, TicketSerializer
from governance.models.approvals import ApprovalAction, ApprovalDecision, ApprovalRequest
from governance.services.approvals_registry import all_actions


def target_types() -> list[str]:
    """Every model an approval action may target, as app_label.model."""

    labels = {model._meta.label_lower for spec in all_actions().values() for model in spec.target_models}
    return sorted(labels)


def payload_help() -> str:

    parts = []
    for code, spec in sorted(all_actions().items()):
        fields = ", ".join(spec.schema.base_fields) if spec.schema is not None else ""
        parts.append(f"{code}: {{{fields}}}")
    return "The proposed change; its fields depend on the action. " + "; ".join(parts) + "."


class ApprovalDecisionSerializer(ModelSerializer):
    class Meta:
        model = ApprovalDecision
        fields = ("id", "approver", "decision", "comment", "decided_at", "on_behalf_integration_id",
                  "integration_owner")
        read_only_fields = fields


class ApprovalRequestSerializer(ModelSerializer):
    ticket_url = serializers.CharField(read_only=True, help_text="The ticket's web address (may be empty).")
    target_type = serializers.SerializerMethodField()
    target_id = serializers.CharField(source="target_object_id", read_only=True)
    payload = serializers.DictField(read_only=True)
    approval_count = serializers.IntegerField(read_only=True, default=0)
    decisions = ApprovalDecisionSerializer(many=True, read_only=True)

    class Meta:
        model = ApprovalRequest
        fields = ("id", "action", "status", "policy", "target_type", "target_id", "payload", "requested_by",
                  "filed_by_integration_id", "filed_by_label", "filed_by_integration_owner", "justification",
                  "ticket_system", "ticket_key",
                  "ticket_url", "created_at", "expires_at", "decided_at", "executed_at", "failure_reason",
                  "escalated_at", "approval_count", "decisions")
        read_only_fields = fields

    def get_target_type(self, request) -> str | None:
        """app_label.model of the target, e.g. governance.credential (none for a new workflow)."""
        content_type = request.target_content_type
        return f"{content_type.app_label}.{content_type.model}" if content_type else None


class FileRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=ApprovalAction.choices)
    target_type = serializers.ChoiceField(choices=[], required=False, allow_null=True)
    target_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False, allow_null=True)
    payload = JSONObjectField(required=False, default=dict)
    justification = serializers.CharField(max_length=4000)
    ticket = TicketSerializer(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target_type"].choices = target_types()
        self.fields["payload"].help_text = payload_help()

    def validate(self, attrs):
        if (attrs.get("target_type") is None) != (attrs.get("target_id") is None):
            raise serializers.ValidationError({"target_id": "Give both target_type and target_id, or neither."})
        return attrs


class ApproveSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True)


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=4000)


class RiskAcceptanceSerializer(serializers.Serializer):
    expires_at = serializers.DateTimeField(help_text="Until when the risk is accepted (at most a year).")
    justification = serializers.CharField(max_length=4000)
    ticket = TicketSerializer(required=False)
