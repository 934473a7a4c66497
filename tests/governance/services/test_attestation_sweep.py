"""The attestation sweep: scheduled campaigns, reminders, escalation and consequences, each once."""

import datetime as dt
import importlib

import pytest
from django.utils import timezone

from governance.models import AuditEvent, Workflow
from governance.models.attestation import AttestationCampaign, AttestationItem, CampaignStatus
from governance.models.lifecycle import KillSwitchActivation
from governance.services import attestation as svc
from governance.services.attestation_sweep import period_containing
from tests.factories_attestation import item_for, open_campaign

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def no_schedule(settings):
    settings.STEWARD_ATTESTATION_SCHEDULE = {"campaigns": []}


def sweep(capture, now=None):
    with capture(execute=True):
        return svc.attestation_campaigns_sweep(now=now or timezone.now())


def test_periods_are_calendar_aligned():
    assert period_containing(dt.date(2026, 5, 10), 3) == (dt.date(2026, 4, 1), dt.date(2026, 6, 30))
    assert period_containing(dt.date(2026, 12, 31), 6) == (dt.date(2026, 7, 1), dt.date(2026, 12, 31))
    assert period_containing(dt.date(2026, 1, 1), 12) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    with pytest.raises(ValueError):
        period_containing(dt.date(2026, 1, 1), 5)


@pytest.mark.embedded
def test_the_schedule_opens_each_periods_campaigns_once(personas, estate, django_capture_on_commit_callbacks):
    Workflow.objects.filter(pk=estate["workflow"].pk).update(can_rotate=True)
    now = dt.datetime(2026, 4, 3, 6, 0, tzinfo=dt.UTC)
    assert sweep(django_capture_on_commit_callbacks, now)["opened"] == 2
    assert sweep(django_capture_on_commit_callbacks, now + dt.timedelta(hours=1))["opened"] == 0
    privileged = AttestationCampaign.objects.get(scope_type="privileged")
    assert (privileged.period_start, privileged.period_end) == (dt.date(2026, 4, 1), dt.date(2026, 6, 30))
    assert privileged.due_at == dt.datetime(2026, 4, 22, tzinfo=dt.UTC) and privileged.scheduled
    assert privileged.grace_until == privileged.due_at + dt.timedelta(days=14)
    standard = AttestationCampaign.objects.get(scope_type="estate")
    assert standard.exclude_privileged and standard.period_start == dt.date(2026, 1, 1)
    assert standard.due_at == now + dt.timedelta(days=30)  # opened late in its half-year: full time given
    assert "payments-deploy" not in set(standard.items.values_list("object_repr", flat=True))
    assert set(privileged.items.values_list("object_repr", flat=True)) == {"payments-deploy",
                                                                          "payments-deploy-key"}


@pytest.mark.embedded
def test_reminders_go_once_before_the_due_date(personas, estate, no_schedule, mailoutbox,
                                               django_capture_on_commit_callbacks):
    soon = open_campaign(personas, due_in_days=3)
    later = open_campaign(personas, due_in_days=20, period_start=dt.date(2020, 1, 1))
    mailoutbox.clear()
    counts = sweep(django_capture_on_commit_callbacks)
    assert counts["reminded"] == 4 and counts["escalated"] == 0
    assert sorted(m.to[0] for m in mailoutbox) == sorted([personas.owner.email, personas.approver.email])
    assert not soon.items.filter(reminded_at__isnull=True).exists()
    assert not later.items.filter(reminded_at__isnull=False).exists()
    assert sweep(django_capture_on_commit_callbacks)["reminded"] == 0
    assert len(mailoutbox) == 2 and AuditEvent.objects.filter(action="attestation.remind").count() == 2


@pytest.mark.embedded
def test_overdue_items_escalate_once_to_the_team_manager(personas, estate, no_schedule, mailoutbox,
                                                         django_capture_on_commit_callbacks):
    campaign = open_campaign(personas, due_in_days=-1)
    svc.attestation_item_answer(actor=svc.Actor.for_user(personas.owner),
                                item_id=item_for(campaign, estate["credential"]).pk, answer="confirm")
    mailoutbox.clear()
    counts = sweep(django_capture_on_commit_callbacks)
    assert counts == {"opened": 0, "reminded": 0, "escalated": 3, "consequences": 0, "closed": 0}
    assert item_for(campaign, estate["workflow"]).escalated_to == personas.backup_owner
    assert item_for(campaign, estate["other_workflow"]).escalated_to is None  # Platform has no manager
    assert item_for(campaign, estate["credential"]).escalated_at is None  # answered in time
    recipients = sorted(m.to[0] for m in mailoutbox)
    assert recipients == sorted([personas.backup_owner.email, personas.secadmin.email])
    assert sweep(django_capture_on_commit_callbacks)["escalated"] == 0 and len(mailoutbox) == 2


@pytest.mark.embedded
def test_the_grace_deadline_applies_the_consequence_once_and_closes(personas, estate, no_schedule,
                                                                    django_capture_on_commit_callbacks):
    campaign = open_campaign(personas, due_in_days=-10, grace_days=9)
    counts = sweep(django_capture_on_commit_callbacks)
    assert counts["escalated"] == 4 and counts["consequences"] == 4 and counts["closed"] == 1
    assert set(campaign.items.values_list("consequence", flat=True)) == {"finding"}
    # The lapse is a finding of the attestation check, opened by the sweep that the consequence requests.
    from governance.models.checks import Finding
    from governance.services.sweep import sweep_run

    sweep_run(checks=["attestation"], trigger="test")
    assert Finding.objects.filter(failed_check__code="attestation", object_type="governance.workflow",
                                  object_id=estate["workflow"].pk, state="open").exists()
    assert AuditEvent.objects.filter(action="attestation.consequence").count() == 4
    assert AttestationCampaign.objects.get(pk=campaign.pk).status == CampaignStatus.CLOSED
    again = sweep(django_capture_on_commit_callbacks)
    assert again["consequences"] == 0 and again["closed"] == 0


def test_the_suspension_consequence_uses_the_kill_switch_or_falls_back(personas, estate, no_schedule,
                                                                       django_capture_on_commit_callbacks):
    campaign = open_campaign(personas, due_in_days=-10, grace_days=9, consequence="suspension")
    with django_capture_on_commit_callbacks(execute=False):  # not the kill switch's connector task
        svc.attestation_campaigns_sweep(now=timezone.now())
    item = item_for(campaign, estate["workflow"])
    workflow = Workflow.objects.get(pk=estate["workflow"].pk)
    activation = KillSwitchActivation.objects.get(workflow=workflow)
    assert item.consequence == "suspension" and workflow.status == "suspended"
    assert item.consequence_ref == str(activation.pk) and "Not attested" in activation.reason
    assert item_for(campaign, estate["credential"]).consequence in ("finding", "recorded")  # never suspended


def test_a_campaign_closes_once_every_item_is_answered(personas, estate, no_schedule,
                                                       django_capture_on_commit_callbacks):
    campaign = open_campaign(personas)
    for item in campaign.items.all():
        svc.attestation_items_confirm_seen(actor=svc.Actor.for_user(item.assignee), item_ids=[item.pk])
    assert sweep(django_capture_on_commit_callbacks)["closed"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED and campaign.closed_at is not None
    assert AttestationItem.objects.filter(reminded_at__isnull=False).count() == 0


def test_the_task_calls_the_sweep(personas, no_schedule):
    tasks = importlib.import_module("governance.tasks.attestation")
    assert tasks.attestation_sweep.run() == {"opened": 0, "reminded": 0, "escalated": 0, "consequences": 0,
                                             "closed": 0}
