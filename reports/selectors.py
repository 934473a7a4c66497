"""Reads of the reports app, narrowed by governance.permissions.restrict()."""

from __future__ import annotations

from django.db.models import QuerySet

from governance import permissions
from reports.models import ReportJob


def report_job_list(*, user) -> QuerySet:
    """Auditors and security admins see every job; owners the jobs on their own teams and systems."""
    return permissions.restrict(ReportJob.objects.all(), user, permissions.VIEW).select_related("requester")


def report_jobs_with_hash(sha256: str) -> QuerySet:
    """For verify_report (a command, not a user): every job whose file had this SHA-256."""
    return ReportJob.objects.filter(sha256=sha256.lower()).select_related("requester").order_by("pk")
