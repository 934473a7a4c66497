"""Findings and attestation items as the API shows them, and their operations' bodies."""

from __future__ import annotations

from rest_framework import serializers

from governance.api.serializers.common import IdField, ModelSerializer, StringListField, TicketSerializer
from governance.models import Credential, Person, Team
from governance.models.attestation import AttestationItem, ItemAnswer
from governance.models.checks import Finding


class FindingSerializer(ModelSerializer):
    ticket_url = serializers.CharField(read_only=True, help_text="The ticket's web address (may be empty).")
    check = serializers.CharField(source="failed_check.code", read_only=True, help_text="The check's code.")
    check_name = serializers.CharField(source="failed_check.name", read_only=True)
    severity = serializers.CharField(source="failed_check.severity", read_only=True)
    evidence = serializers.DictField(read_only=True)

    class Meta:
        model = Finding
        fields = ("id", "check", "check_name", "severity", "object_type", "object_id", "object_repr", "state",
                  "first_seen_at", "last_seen_at", "resolved_at", "reopened_count", "evidence", "acknowledged_by",
                  "acknowledged_at", "acknowledged_comment", "risk_accepted_until", "risk_acceptance_request_id",
                  "owner", "team", "ticket_system", "ticket_key", "ticket_url", "risk_rank")
        read_only_fields = fields


class AcknowledgeSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class AttestationItemSerializer(ModelSerializer):
    ticket_url = serializers.CharField(read_only=True, help_text="The ticket's web address (may be empty).")
    details = serializers.DictField(read_only=True)

    class Meta:
        model = AttestationItem
        fields = ("id", "campaign", "object_type", "object_id", "object_repr", "team", "assignee", "state",
                  "answer", "comment", "details", "answered_at", "answered_by", "resulting_request_id",
                  "reminded_at", "escalated_at", "consequence", "ticket_system", "ticket_key", "ticket_url",
                  "created_at", "updated_at")
        read_only_fields = fields


class AnswerSerializer(serializers.Serializer):
    answer = serializers.ChoiceField(choices=[c for c in ItemAnswer.choices if c[0]])
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True,
                                    help_text="Required for anything but confirm.")
    transfer_to = IdField(queryset=Person.objects.active(), required=False,
                                                     allow_null=True, help_text="For transfer.")
    transfer_team = IdField(queryset=Team.objects.all(), required=False,
                                                       allow_null=True, help_text="For transfer.")
    scope_credential = IdField(queryset=Credential.objects.all(), required=False,
                                                          allow_null=True, help_text="For change_scopes.")
    requested_scopes = StringListField(required=False, help_text="For change_scopes.")
    requested_privilege_level = serializers.ChoiceField(choices=["read", "write", "admin"], required=False,
                                                        allow_null=True, help_text="For change_scopes.")
    ticket = TicketSerializer(required=False)
