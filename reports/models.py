"""Report jobs: every report is rendered in the background from a row that records who asked for
what, how far it got, and the SHA-256 of the file it produced (so a checksum can be looked up).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from governance.choices import check_in
from governance.models.base import LeasedModel, RestrictedQuerySet


class ReportKind(models.TextChoices):
    FRAMEWORK_PACK = "framework_pack", "Framework evidence pack"
    INVENTORY = "inventory", "Workflow inventory"
    ATTESTATION_CAMPAIGN = "attestation_campaign", "Attestation campaign"


class ReportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# The one place the job's state machine is declared: status -> statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    ReportJobStatus.QUEUED: frozenset({ReportJobStatus.RUNNING, ReportJobStatus.FAILED}),
    # RUNNING -> RUNNING: a job whose worker died (its lease lapsed) is taken over (governance.leases).
    ReportJobStatus.RUNNING: frozenset({ReportJobStatus.RUNNING, ReportJobStatus.SUCCEEDED, ReportJobStatus.FAILED}),
    ReportJobStatus.SUCCEEDED: frozenset(),
    ReportJobStatus.FAILED: frozenset(),
}


class ReportJob(LeasedModel):
    kind = models.CharField(max_length=32, choices=ReportKind.choices)
    parameters = models.JSONField(default=dict, help_text="Normalised inputs; the PDF depends on nothing else.")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="report_jobs",
        help_text="Empty for reports generated from the command line.",
    )
    # The scope, as foreign keys too, so that "reports on my own scope" is one set-based condition.
    scope_team = models.ForeignKey("governance.Team", on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    scope_system = models.ForeignKey("governance.System", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=ReportJobStatus.choices, default=ReportJobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    file = models.FileField(upload_to="reports/", max_length=300, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=check_in("kind", ReportKind), name="reportjob_kind_valid"),
            models.CheckConstraint(condition=check_in("status", ReportJobStatus), name="reportjob_status_valid"),
            models.CheckConstraint(condition=Q(progress__lte=100), name="reportjob_progress_percent"),
            models.CheckConstraint(
                condition=~Q(status=ReportJobStatus.SUCCEEDED) | (~Q(sha256="") & ~Q(file="")),
                name="reportjob_succeeded_has_file_and_hash",
            ),
            models.CheckConstraint(
                condition=~Q(status=ReportJobStatus.FAILED) | (Q(sha256="") & Q(file="")),
                name="reportjob_failed_has_no_file",
            ),
        ]
        indexes = [models.Index(fields=["requester", "created_at"]),
                   models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self):
        return self.title

    @property
    def is_finished(self) -> bool:
        return self.status in (ReportJobStatus.SUCCEEDED, ReportJobStatus.FAILED)

    @property
    def download_name(self) -> str:
        return self.file.name.rsplit("/", 1)[-1] if self.file else ""


def _report_job_rule(queryset, user, action: str):
    """Auditors and security admins pass in restrict() itself. An owner sees the reports on their own
    scope: a team they belong to, or a system they may change (whoever requested them); estate-wide
    reports are for auditors and security admins only. Nobody changes a report."""
    # cycle: governance.permissions imports the models
    from governance import permissions
    from governance.models import System, Team

    if action != permissions.VIEW:
        return queryset.none()
    teams = Team.objects.filter(group__user=user).values("pk")
    systems = permissions.restrict(System.objects.all(), user, permissions.CHANGE).values("pk")
    return queryset.filter(Q(scope_team__in=teams) | Q(scope_system__in=systems))


def _register() -> None:
    # cycle: governance.permissions imports the models
    from governance.permissions import register_model_rule

    register_model_rule(ReportJob, _report_job_rule)


_register()
