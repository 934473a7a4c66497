"""Portal pages: who may request, see and download which report; downloads are audited."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from governance.audit import Actor
from governance.models import AuditEvent
from reports.models import ReportJob
from reports.services import report_job_create

pytestmark = pytest.mark.django_db


def finished_job(requester, scope: str, *, kind: str = "inventory") -> ReportJob:
    """A succeeded job with a small file, without rendering (the views only serve it)."""
    job = report_job_create(actor=Actor.for_user(requester), kind=kind, parameters={"scope": scope},
                            enqueue=False)
    job.file.save(f"{job.pk}-test.pdf", ContentFile(b"%PDF-1.7 test report"), save=False)
    ReportJob.objects.filter(pk=job.pk).update(status="succeeded", progress=100, file=job.file.name,
                                               sha256="ab" * 32, size=20, page_count=1)
    job.refresh_from_db()
    return job


def test_list_offers_only_own_scopes_and_creates_a_job(client, personas, estate, django_capture_on_commit_callbacks):
    client.force_login(personas.owner)
    page = client.get(reverse("report-list"))
    assert page.status_code == 200
    scopes = [value for value, _ in page.context["form"].fields["scope"].choices]
    assert scopes == ["team:Payments", "system:payments-db"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("report-list"), {"kind": "inventory", "scope": "team:Payments"})
    job = ReportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("report-detail", args=[job.pk])
    assert len(callbacks) == 1 and job.requester == personas.owner


def test_an_owner_cannot_request_the_estate(client, personas, estate):
    client.force_login(personas.owner)
    response = client.post(reverse("report-list"), {"kind": "inventory", "scope": "estate"})
    assert response.status_code == 200 and "scope" in response.context["form"].errors
    assert not ReportJob.objects.exists()


def test_people_without_a_scope_get_404(client, personas, estate):
    client.force_login(personas.outsider)
    assert client.get(reverse("report-list")).status_code == 404


@pytest.mark.embedded
@pytest.mark.parametrize("persona, status", [
    ("owner", 200), ("backup_owner", 200), ("approver", 404), ("outsider", 404), ("auditor", 200), ("secadmin", 200),
])
def test_team_report_visibility_and_audited_download(client, personas, estate, persona, status):
    job = finished_job(personas.owner, "team:Payments")
    client.force_login(getattr(personas, persona))
    assert client.get(reverse("report-detail", args=[job.pk])).status_code == status
    assert client.get(reverse("report-status", args=[job.pk])).status_code == status
    before = AuditEvent.objects.filter(action="report.download").count()
    response = client.get(reverse("report-download", args=[job.pk]))
    assert response.status_code == status
    downloads = AuditEvent.objects.filter(action="report.download")
    if status == 200:
        assert b"".join(response.streaming_content) == b"%PDF-1.7 test report"
        assert response["X-Report-SHA256"] == job.sha256
        event = downloads.latest("sequence")
        assert event.actor_id == getattr(personas, persona).pk and event.object_id == str(job.pk)
    else:
        assert downloads.count() == before


def test_estate_reports_are_for_auditors_and_security_admins(client, personas, estate):
    job = finished_job(personas.auditor, "estate")
    for persona, status in (("owner", 404), ("secadmin", 200), ("auditor", 200)):
        client.force_login(getattr(personas, persona))
        assert client.get(reverse("report-download", args=[job.pk])).status_code == status


def test_leaving_the_team_loses_access(client, personas, estate):
    job = finished_job(personas.backup_owner, "team:Payments")
    personas.backup_owner.groups.remove(personas.team.group)
    client.force_login(personas.backup_owner)
    assert client.get(reverse("report-detail", args=[job.pk])).status_code == 404


def test_status_json_and_unfinished_downloads(client, personas, estate):
    job = report_job_create(actor=Actor.for_user(personas.owner), kind="inventory",
                            parameters={"scope": "team:Payments"}, enqueue=False)
    client.force_login(personas.owner)
    status = client.get(reverse("report-status", args=[job.pk])).json()
    assert status["status"] == "queued" and status["progress"] == 0 and status["download_url"] is None
    assert client.get(reverse("report-download", args=[job.pk])).status_code == 404
    page = client.get(reverse("report-detail", args=[job.pk]))
    assert b'<progress id="report-progress"' in page.content and b"report-progress.js" in page.content
    done = finished_job(personas.owner, "team:Payments")
    status = client.get(reverse("report-status", args=[done.pk])).json()
    assert status["finished"] and status["sha256"] == done.sha256
    assert status["download_url"] == reverse("report-download", args=[done.pk])
