"""Reads of the reports app, narrowed by governance.permissions.restrict()."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from governance import permissions
from governance.models.attestation import AttestationCampaign, CampaignScope
from reports.models import ReportJob
from reports.scopes import ESTATE, SYSTEM, TEAM, available_scopes


def report_job_list(*, user) -> QuerySet:
    """Auditors and security admins see every job; owners the jobs on their own teams and systems."""
    return permissions.restrict(ReportJob.objects.all(), user, permissions.VIEW).select_related("requester")


def report_jobs_with_hash(sha256: str) -> QuerySet:
    """For verify_report (a command, not a user): every job whose file had this SHA-256."""
    return ReportJob.objects.filter(sha256=sha256.lower()).select_related("requester").order_by("pk")


def attestation_campaigns_reportable(*, user) -> QuerySet:
    """The campaigns a user may request a campaign report on: those whose scope (scopes.campaign_scope)
    is one of the user's report scopes, so the rule is the one every other report follows."""

    campaigns = AttestationCampaign.objects.select_related("scope_team", "scope_system").order_by(
        "-period_start", "name", "pk")
    scopes = available_scopes(user)
    if any(scope.kind == ESTATE for scope in scopes):
        return campaigns
    teams = [scope.pk for scope in scopes if scope.kind == TEAM]
    systems = [scope.pk for scope in scopes if scope.kind == SYSTEM]
    return campaigns.filter(Q(scope_type=CampaignScope.TEAM, scope_team__in=teams)
                            | Q(scope_type=CampaignScope.SYSTEM, scope_system__in=systems))
