"""Report jobs over the API (/api/v1/report-jobs/): start a report, poll it, download the PDF.

The reports capability sits above governance, so its endpoints live here and portal/api_urls.py puts
them beside governance's under one /api/v1/ namespace.
"""

from __future__ import annotations

import django_filters
from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from governance.api.base import StewardViewSet
from governance.api.idempotency import idempotent
from governance.api.permissions import READ
from governance.api.serializers.common import ModelSerializer
from reports.models import ReportJob, ReportJobStatus, ReportKind
from reports.selectors import report_job_list
from reports.services import report_download_record, report_job_create


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


class ReportJobFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ReportKind.choices)
    status = django_filters.ChoiceFilter(choices=ReportJobStatus.choices)

    class Meta:
        model = ReportJob
        fields = ["kind", "status"]


@extend_schema(tags=["reports"])
class ReportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Start a report (rendered in the background), poll its status, download the PDF."""

    serializer_class = ReportJobSerializer
    filterset_class = ReportJobFilterSet
    cursor_ordering = "-pk"
    scopes = {"create": READ, "download": READ}

    def get_queryset(self):
        return report_job_list(user=self.request.user)

    def perform_content_negotiation(self, request, force=False):
        if self.action == "download":  # a file, whatever Accept says; errors stay JSON
            return JSONRenderer(), JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    @extend_schema(request=ReportRequestSerializer, responses={201: ReportJobSerializer},
                   summary="Start a report job")
    @idempotent
    def create(self, request):
        body = ReportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = report_job_create(actor=self.actor, kind=body.validated_data["kind"],
                                parameters=dict(body.validated_data.get("parameters") or {}))
        return Response(self.get_serializer(self.reread(job)).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF.")},
                   summary="Download the report (once the job succeeded; the download is audited)")
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        job = self.get_object()
        if job.status != ReportJobStatus.SUCCEEDED or not job.file:
            raise Http404("This report has no file (yet).")
        try:
            handle = job.file.open("rb")
        except FileNotFoundError:
            raise Http404("The report file is missing.") from None
        report_download_record(actor=self.actor, job=job)
        response = FileResponse(handle, as_attachment=True, filename=job.download_name, content_type="application/pdf")
        response["X-Report-SHA256"] = job.sha256
        return response
