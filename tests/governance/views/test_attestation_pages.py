"""The attestation pages: the owner's inbox, answering, confirm-all-seen, and the campaign pages."""

import csv
import datetime as dt
import io
import json

import pytest
from django.urls import reverse

from governance.models import Binding
from governance.models.attestation import AttestationCampaign, AttestationItem
from governance.selectors import attestation as selectors
from tests.factories import CredentialFactory, WorkflowFactory
from tests.factories_attestation import item_for, open_campaign

pytestmark = [pytest.mark.django_db]


@pytest.mark.embedded
def test_the_inbox_groups_my_items_by_workflow(client, personas, estate):
    shared = CredentialFactory(name="loose-key", owner=personas.owner, team=personas.team)
    campaign = open_campaign(personas)
    client.force_login(personas.owner)
    page = client.get(reverse("attestation-inbox")).content.decode()
    assert "payments-deploy-key" in page and "loose-key" in page and "platform-sync" not in page
    assert "Credentials not used by any workflow" in page
    context = selectors.inbox(user=personas.owner)
    first = context["groups"][0]
    assert first["workflow"] == estate["workflow"]
    assert [i.obj for i in first["credential_items"]] == [estate["credential"]]
    assert context["groups"][1]["credential_items"][0].obj == shared
    assert set(context["rendered_ids"]) == set(campaign.items.filter(assignee=personas.owner)
                                               .values_list("pk", flat=True))


def test_the_inbox_query_count_does_not_grow_with_items(client, personas, estate):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add_jobs(names):
        for name in names:
            workflow = WorkflowFactory(name=name, owner=personas.owner, team=personas.team)
            credential = CredentialFactory(owner=personas.owner, team=personas.team)
            Binding.objects.create(workflow=workflow, credential=credential, purpose="x")

    def queries(period):
        open_campaign(personas, period_start=period)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("attestation-inbox")).status_code == 200
        return len(captured)

    client.force_login(personas.owner)
    add_jobs(["job-1"])
    few = queries(dt.date(2025, 1, 1))
    add_jobs([f"job-{n}" for n in range(2, 9)])
    assert queries(dt.date(2025, 7, 1)) == few <= 16


@pytest.mark.embedded
def test_confirm_all_confirms_only_what_the_page_showed(client, personas, estate, monkeypatch):
    monkeypatch.setattr(selectors, "INBOX_LIMIT", 1)
    campaign = open_campaign(personas)
    client.force_login(personas.owner)
    response = client.get(reverse("attestation-inbox"))
    shown = response.context["rendered_ids"]
    assert len(shown) == 1 and response.context["hidden"] == 1
    assert response.content.decode().count('name="item"') == 1
    response = client.post(reverse("attestation-confirm-seen"), {"item": shown}, follow=True)
    assert "Confirmed 1 item" in response.content.decode()
    mine = campaign.items.filter(assignee=personas.owner)
    assert sorted(mine.values_list("answer", flat=True)) == ["", "confirm"]


def test_quick_answers_from_the_inbox(client, personas, estate):
    campaign = open_campaign(personas)
    item = item_for(campaign, estate["credential"])
    client.force_login(personas.owner)
    url = reverse("attestation-item", args=[item.pk])
    response = client.post(url, {"answer": "flag_storage", "comment": "", "next": "inbox"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("attestation-inbox")
    assert "comment" in response.content.decode().lower()
    assert AttestationItem.objects.get(pk=item.pk).answer == ""
    client.post(url, {"answer": "confirm", "next": "inbox"})
    assert AttestationItem.objects.get(pk=item.pk).answer == "confirm"
    assert client.post(url, {"answer": "confirm"}).status_code == 404  # answered: no form any more


def test_the_item_page_answers_for_the_assignee_only(client, personas, estate):
    item = item_for(open_campaign(personas), estate["workflow"])
    url = reverse("attestation-item", args=[item.pk])
    client.force_login(personas.backup_owner)
    page = client.get(url)
    assert page.status_code == 200 and page.context["form"] is None
    assert client.post(url, {"answer": "confirm"}).status_code == 404
    client.force_login(personas.owner)
    response = client.post(url, {"answer": "transfer", "comment": "Moves to platform"})
    assert response.status_code == 200 and "Say who should own it instead." in response.content.decode()


@pytest.mark.embedded
def test_security_admins_open_a_campaign_by_hand_once(client, personas, estate):
    client.force_login(personas.secadmin)
    data = {"scope_type": "team", "scope_team": personas.team.pk, "period_start": "2026-01-01",
            "period_end": "2026-06-30", "due_at": "2026-07-31T12:00", "consequence": "finding"}
    response = client.post(reverse("attestation-campaign-create"), data, follow=True)
    campaign = AttestationCampaign.objects.get()
    assert response.redirect_chain[-1][0] == campaign.get_absolute_url()
    assert "opened with 2 item(s)" in response.content.decode()
    response = client.post(reverse("attestation-campaign-create"), data, follow=True)
    assert "exists already" in response.content.decode() and AttestationCampaign.objects.count() == 1
    response = client.post(reverse("attestation-campaign-create"), {**data, "scope_team": ""})
    assert response.status_code == 200 and "Choose the team" in response.content.decode()


def test_the_campaign_page_shows_progress_and_exports_evidence(client, personas, estate):
    campaign = open_campaign(personas, due_in_days=-1)
    from governance.audit import Actor
    from governance.services.attestation import attestation_item_answer

    attestation_item_answer(actor=Actor.for_user(personas.owner),
                            item_id=item_for(campaign, estate["workflow"]).pk,
                            answer="flag_storage", comment="Key is in a CI variable")
    client.force_login(personas.auditor)
    page = client.get(reverse("attestation-campaign-detail", args=[campaign.pk]))
    progress = page.context["progress"]
    assert (progress["total"], progress["answered"], progress["percent"]) == (4, 1, 25)
    assert {r["name"]: r["answered"] for r in progress["teams"]} == {"Payments": 1, "Platform": 0}
    assert len(progress["overdue"]) == 3 and "Key is in a CI variable" in page.content.decode()
    rows = list(csv.DictReader(io.StringIO(client.get(
        reverse("attestation-campaign-export", args=[campaign.pk, "csv"])).content.decode())))
    assert len(rows) == 4 and {r["answer"] for r in rows} == {"", "flag_storage"}
    data = json.loads(client.get(reverse("attestation-campaign-export", args=[campaign.pk, "json"])).content)
    flagged = next(r for r in data if r["answer"])
    assert flagged["answered_by"] == personas.owner.username and flagged["object"] == "payments-deploy"
    listing = client.get(reverse("attestation-campaign-list"))
    assert campaign.name in listing.content.decode()
