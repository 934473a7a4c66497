"""/api/: governance's and the reports' endpoints under one /api/v1/ namespace ("v1"), the schema and docs."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from governance.api import urls as governance_api
from reports.api import ReportJobViewSet

reports_router = SimpleRouter()
reports_router.register("report-jobs", ReportJobViewSet, basename="reportjob")

v1 = [*governance_api.v1, *reports_router.urls]

urlpatterns = [
    path("v1/", include((v1, "v1"), namespace="v1")),
    *governance_api.schema_urlpatterns,
]
