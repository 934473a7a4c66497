"""Findings, attestation items and report jobs as the API shows them, and their operations' bodies."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from governance.api.serializers.common import IdField, ModelSerializer, StringListField, TicketSerializer
from governance.models import Credential, Person, Team
from governance.models.attestation import AttestationItem, ItemAnswer
from governance.models.checks import Finding
from reports.models import ReportJob, ReportKind


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
                  "owner", "team", "ticket_system", "ticket_key", "ticket_url")
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


class ReportJobSerializer(ModelSerializer):
    parameters = serializers.DictField(read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ReportJob
        fields = ("id", "kind", "title", "parameters", "requester", "status", "progress", "created_at",
                  "started_at", "finished_at", "error", "size", "sha256", "page_count", "download_url")
        read_only_fields = fields

    def get_download_url(self, job) -> str | None:
        """Where to fetch the PDF once the job succeeded."""
        return reverse("v1:reportjob-download", args=[job.pk]) if job.status == "succeeded" else None


def _sane_year(value):
    if value is not None and not 2000 <= value.year <= 2100:
        raise serializers.ValidationError("Give a date between the years 2000 and 2100.")
    return value


class ReportParametersSerializer(serializers.Serializer):
    scope = serializers.CharField(max_length=300, required=False,
                                  help_text='"estate" (default), "team:NAME" or "system:NAME".')
    period_start = serializers.DateField(required=False, validators=[_sane_year])
    period_end = serializers.DateField(required=False, validators=[_sane_year])
    as_of = serializers.DateTimeField(required=False, validators=[_sane_year])
    framework = serializers.CharField(max_length=100, required=False,
                                      help_text="framework_pack only: the framework's key in the catalogue.")


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    parameters = ReportParametersSerializer(required=False)
