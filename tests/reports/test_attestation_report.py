"""The attestation campaign report, parsed back: counts against the database, every item in the attachments,
as-of answers, determinism, who may ask for which campaign, parameters, the portal form and the command."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from governance.audit import Actor
from governance.models.attestation import AttestationCampaign, AttestationItem, ItemState
from governance.services.attestation import attestation_item_answer
from reports import attestation_report, builders
from reports.models import ReportJob
from reports.parameters import format_as_of, normalise_parameters
from reports.services import report_job_create
from tests.factories_attestation import item_for, open_campaign
from tests.reports.conftest import compact, pdf_text, read_pdf, run_report

pytestmark = pytest.mark.django_db

KIND = "attestation_campaign"
ATTACHMENTS = {"attestation.json", "attestation.csv"}


def _answer(person, item, answer, comment=""):
    return attestation_item_answer(actor=Actor.for_user(person), item_id=item.pk, answer=answer, comment=comment)


@pytest.fixture
def campaign(personas, estate):
    """The estate campaign (two workflows, two credentials), past its due date: the owner answered both
    Payments items (a confirmation and a storage flag); Platform's two items are overdue."""
    campaign = open_campaign(personas)
    _answer(personas.owner, item_for(campaign, estate["workflow"]), "confirm")
    _answer(personas.owner, item_for(campaign, estate["credential"]), "flag_storage",
            comment="Still a CI variable, moving it to the vault")
    now = timezone.now()
    AttestationCampaign.objects.filter(pk=campaign.pk).update(due_at=now - dt.timedelta(days=1))
    campaign.refresh_from_db()
    return campaign


def _csv_rows(reader) -> list[dict]:
    return list(csv.DictReader(io.StringIO(reader.attachments["attestation.csv"][0].decode())))


@pytest.mark.embedded
def test_report_matches_the_database_and_renders_deterministically(personas, estate, campaign):
    auditor = Actor.for_user(personas.auditor)
    job = run_report(auditor, KIND, {"campaign": campaign.pk})
    assert job.status == "succeeded", job.error
    assert job.title == f"Attestation campaign {campaign.name}, as of {job.parameters['as_of'][:10]}"
    assert job.scope_team is None and job.scope_system is None  # an estate campaign: an estate report
    reader, data = read_pdf(job)
    assert job.page_count == len(reader.pages)
    assert reader.metadata["/Title"] == job.title
    assert set(reader.attachments) == ATTACHMENTS

    items = AttestationItem.objects.filter(campaign=campaign)
    answered = items.filter(state=ItemState.ANSWERED)
    pending = items.filter(state=ItemState.OPEN)
    assert (items.count(), answered.count(), pending.count()) == (4, 2, 2)

    evidence = json.loads(reader.attachments["attestation.json"][0])
    assert evidence["campaign"]["id"] == campaign.pk and evidence["campaign"]["status"] == "open"
    summary = evidence["summary"]
    assert summary["items"] == items.count()
    assert summary["answered"] == answered.count()
    assert summary["pending"] == summary["overdue"] == pending.count()
    assert summary["completion_percent"] == 50.0
    assert summary["answers"]["confirm"] == answered.filter(answer="confirm").count() == 1
    assert summary["answers"]["flag_storage"] == 1 and summary["answers"]["revoke"] == 0
    # Every item is in both files, with its answer as recorded.
    listed = {row["item_id"]: row for row in evidence["items"]}
    assert set(listed) == set(items.values_list("pk", flat=True))
    for item in items.select_related("answered_by", "assignee"):
        row = listed[item.pk]
        assert row["object"] == item.object_repr and row["object_id"] == item.object_id
        assert row["answer"] == (item.answer or None)
        assert row["state"] == ("answered" if item.state == ItemState.ANSWERED else "overdue")
        assert row["answered_by"] == (item.answered_by.username if item.answered_by else None)
        assert row["assignee"] == (item.assignee.username if item.assignee else None)
    rows = _csv_rows(reader)
    assert sorted(int(r["item_id"]) for r in rows) == sorted(listed)
    flagged = item_for(campaign, estate["credential"])
    flagged_row = next(r for r in rows if int(r["item_id"]) == flagged.pk)
    assert flagged_row["answer"] == "flag_storage" and flagged_row["answered_by"] == personas.owner.username
    assert flagged_row["comment"] == "Still a CI variable, moving it to the vault"

    text = pdf_text(reader)
    assert compact(campaign.name) in text and compact("aude.auditor") in text and "intact" in text
    assert all(compact(item.object_repr) in text for item in items)
    assert compact("50.0% complete: 2 of 4 answered") in text and compact("Storage flagged") in text
    # Overdue items come first on the page.
    overdue_at = min(text.index(compact(i.object_repr)) for i in pending)
    assert all(text.index(compact(i.object_repr)) > overdue_at for i in answered)

    # Same inputs, same bytes: a second job (after the first one's own audit events) renders identically.
    again = run_report(auditor, KIND, dict(job.parameters))
    assert again.sha256 == job.sha256
    with again.file.open("rb") as fh:
        assert fh.read() == data


def test_answers_and_closing_after_as_of_do_not_count(personas, estate, campaign, tmp_path):
    as_of = (timezone.now() + dt.timedelta(minutes=5)).replace(microsecond=0)
    later = as_of + dt.timedelta(hours=2)
    confirmed = item_for(campaign, estate["workflow"])
    AttestationItem.objects.filter(pk=confirmed.pk).update(answered_at=later)
    AttestationCampaign.objects.filter(pk=campaign.pk).update(status="closed", closed_at=later)
    escalated = item_for(campaign, estate["other_workflow"])
    AttestationItem.objects.filter(pk=escalated.pk).update(escalated_at=as_of - dt.timedelta(hours=1),
                                                           escalated_to=personas.approver)
    AttestationItem.objects.filter(pk=item_for(campaign, estate["other_credential"]).pk).update(
        escalated_at=later, consequence_applied_at=later, consequence="finding")
    params = normalise_parameters(KIND, {"campaign": str(campaign.pk), "as_of": format_as_of(as_of)})
    builders.build(KIND, params, requester="test", workdir=tmp_path)
    evidence = json.loads((tmp_path / "attestation.json").read_text())
    rows = {row["item_id"]: row for row in evidence["items"]}
    assert rows[confirmed.pk]["state"] == "overdue" and rows[confirmed.pk]["answer"] is None
    assert rows[confirmed.pk]["answered_at"] is None and rows[confirmed.pk]["answered_by"] is None
    assert evidence["campaign"]["status"] == "open" and evidence["campaign"]["closed_at"] is None
    assert evidence["summary"]["answered"] == 1 and evidence["summary"]["pending"] == 3
    assert evidence["summary"]["escalated"] == 1 and rows[escalated.pk]["escalated_to"] == "ada.approver"
    assert evidence["summary"]["consequences"] == {"finding": 0, "suspension": 0, "recorded": 0}

    params = normalise_parameters(KIND, {"campaign": str(campaign.pk), "as_of": format_as_of(later)})
    builders.build(KIND, params, requester="test", workdir=tmp_path)
    evidence = json.loads((tmp_path / "attestation.json").read_text())
    assert evidence["summary"]["answered"] == 2 and evidence["campaign"]["status"] == "closed"
    assert evidence["summary"]["consequences"]["finding"] == 1


def test_the_pages_are_capped_and_the_attachments_hold_every_item(personas, estate, campaign, monkeypatch):
    monkeypatch.setattr(attestation_report, "PAGE_ROWS", 2)
    job = run_report(Actor.for_user(personas.secadmin), KIND, {"campaign": campaign.pk})
    assert job.status == "succeeded", job.error
    reader, _ = read_pdf(job)
    text = pdf_text(reader)
    assert compact("The first 2 are shown; all 4 are in the attached") in text
    overdue = AttestationItem.objects.filter(campaign=campaign, state=ItemState.OPEN)
    assert all(compact(item.object_repr) in text for item in overdue)
    assert compact(item_for(campaign, estate["workflow"]).object_repr) not in text  # a confirmation, cut
    assert len(_csv_rows(reader)) == 4


def test_building_takes_the_same_queries_whatever_the_campaign_size(personas, estate, tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import WorkflowFactory

    counts = []
    for extra in (1, 9):
        for _ in range(extra):
            WorkflowFactory(owner=personas.owner, team=personas.team)
        campaign = open_campaign(personas, period_start=timezone.now().date() - dt.timedelta(days=extra))
        params = normalise_parameters(KIND, {"campaign": campaign.pk})
        workdir = tmp_path / str(extra)
        workdir.mkdir()
        with CaptureQueriesContext(connection) as queries:
            builders.build(KIND, params, requester="test", workdir=workdir)
        counts.append(len(queries))
        assert json.loads((workdir / "attestation.json").read_text())["summary"]["items"] == campaign.items.count()
    assert counts[0] == counts[1]


@pytest.mark.parametrize("persona, scope, allowed", [
    ("auditor", "estate", True), ("secadmin", "estate", True), ("owner", "estate", False),
    ("auditor", "platform", True), ("owner", "platform", False), ("approver", "platform", True),
    ("owner", "payments", True), ("backup_owner", "payments", True), ("outsider", "payments", False),
])
def test_who_may_request_which_campaign(personas, estate, persona, scope, allowed):
    teams = {"platform": personas.other_team, "payments": personas.team}
    campaign = (open_campaign(personas) if scope == "estate"
                else open_campaign(personas, scope_type="team", scope_id=teams[scope].pk))
    actor = Actor.for_user(getattr(personas, persona))
    if not allowed:
        with pytest.raises(PermissionDenied):
            report_job_create(actor=actor, kind=KIND, parameters={"campaign": campaign.pk}, enqueue=False)
        assert not ReportJob.objects.exists()
        return
    job = report_job_create(actor=actor, kind=KIND, parameters={"campaign": campaign.pk}, enqueue=False)
    assert job.parameters["campaign"] == campaign.pk
    assert job.parameters["scope"] == ("estate" if scope == "estate" else f"team:{teams[scope].name}")
    assert job.scope_team_id == (None if scope == "estate" else teams[scope].pk)


@pytest.mark.parametrize("parameters, field", [
    ({}, "campaign"),
    ({"campaign": ""}, "campaign"),
    ({"campaign": "999999"}, "campaign"),
    ({"campaign": "abc"}, "campaign"),
    ({"campaign": "CAMPAIGN", "colour": "blue"}, "colour"),
    ({"campaign": "CAMPAIGN", "scope": "team:Payments"}, "scope"),
    ({"campaign": "CAMPAIGN", "as_of": "2001-01-01T00:00:00Z", "period_end": "2001-01-01"}, "as_of"),
])
def test_invalid_parameters_are_refused(personas, estate, campaign, parameters, field):
    parameters = {k: (str(campaign.pk) if v == "CAMPAIGN" else v) for k, v in parameters.items()}
    with pytest.raises(ValidationError) as info:
        report_job_create(actor=Actor.for_user(personas.auditor), kind=KIND, parameters=parameters, enqueue=False)
    assert field in info.value.message_dict
    assert not ReportJob.objects.exists()


def test_the_missing_campaign_message_is_clear(personas, estate):
    with pytest.raises(ValidationError) as info:
        normalise_parameters(KIND, {"campaign": 424242})
    assert info.value.message_dict == {"campaign": ["No attestation campaign #424242."]}


def test_the_portal_form_offers_own_campaigns_and_creates_a_job(client, personas, estate,
                                                               django_capture_on_commit_callbacks):
    mine = open_campaign(personas, scope_type="team", scope_id=personas.team.pk)
    theirs = open_campaign(personas, scope_type="team", scope_id=personas.other_team.pk)
    open_campaign(personas)  # the estate's: auditors and security admins only
    client.force_login(personas.owner)
    page = client.get(reverse("report-list"))
    offered = [value for value, _ in page.context["form"].fields["campaign"].choices if value]
    assert offered == [str(mine.pk)]
    assert b'data-report-kinds="attestation_campaign"' in page.content

    response = client.post(reverse("report-list"), {"kind": KIND, "scope": "team:Payments"})
    assert response.status_code == 200 and "campaign" in response.context["form"].errors
    response = client.post(reverse("report-list"), {"kind": KIND, "scope": "team:Payments",
                                                    "campaign": str(theirs.pk)})
    assert response.status_code == 200 and "campaign" in response.context["form"].errors
    assert not ReportJob.objects.exists()

    # The scope select posts its first option whatever the kind: the campaign's own scope is used.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("report-list"), {"kind": KIND, "scope": "system:payments-db",
                                                        "campaign": str(mine.pk), "framework": ""})
    job = ReportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("report-detail", args=[job.pk])
    assert len(callbacks) == 1 and job.requester == personas.owner and job.kind == KIND
    assert job.parameters["campaign"] == mine.pk and job.scope_team == personas.team

    client.force_login(personas.auditor)
    offered = [value for value, _ in client.get(reverse("report-list")).context["form"].fields["campaign"].choices]
    assert len([v for v in offered if v]) == 3

    # The campaign's page links to the form with the kind and the campaign chosen.
    detail = client.get(reverse("attestation-campaign-detail", args=[theirs.pk])).content.decode()
    link = f"{reverse('report-list')}?kind={KIND}&amp;campaign={theirs.pk}"
    assert link in detail
    form = client.get(link.replace("&amp;", "&")).context["form"]
    assert form["kind"].value() == KIND and str(form["campaign"].value()) == str(theirs.pk)


def test_the_command_generates_a_campaign_report_and_refuses_a_bad_id(personas, estate, campaign, tmp_path):
    output = tmp_path / "campaign.pdf"
    stdout = io.StringIO()
    call_command("generate_report", "--campaign", str(campaign.pk), "--output", str(output), stdout=stdout,
                 stderr=io.StringIO())
    job = ReportJob.objects.get()
    assert job.kind == KIND and job.status == "succeeded" and job.sha256 in stdout.getvalue()
    reader, _ = read_pdf(output.read_bytes())
    assert compact(campaign.name) in pdf_text(reader)
    for bad in ("999999", "abc"):
        with pytest.raises(CommandError, match=r"campaign: .*(No attestation campaign #999999|a number)"):
            call_command("generate_report", "--campaign", bad, "--output", str(tmp_path / "x.pdf"),
                         stderr=io.StringIO())
    with pytest.raises(CommandError, match="campaign: Choose the attestation campaign"):
        call_command("generate_report", "--kind", KIND, "--output", str(tmp_path / "x.pdf"), stderr=io.StringIO())
    with pytest.raises(CommandError, match="own teams"):
        call_command("generate_report", "--campaign", str(campaign.pk), "--requested-by", personas.owner.username,
                     "--output", str(tmp_path / "x.pdf"), stderr=io.StringIO())
    assert ReportJob.objects.count() == 1 and not (tmp_path / "x.pdf").exists()
