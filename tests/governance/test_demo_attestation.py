"""The demo estate's attestation history: one completed and one running campaign, with overdue items."""

import datetime as dt

import pytest
from django.utils import timezone

from governance import demo
from governance.audit import verify_chain
from governance.demo_attestation import seed_demo_attestation
from governance.models import Person
from governance.models.attestation import AttestationCampaign, CampaignStatus, ItemState
from governance.selectors.attestation import inbox

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_the_demo_has_a_completed_and_a_running_campaign_with_overdue_items(mailoutbox,
                                                                          django_capture_on_commit_callbacks):
    anchor = demo.demo_anchor()
    demo.build_demo_estate(password="demo-pass-for-tests", anchor=anchor)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        counts = seed_demo_attestation(now=now)
    completed = AttestationCampaign.objects.get(status=CampaignStatus.CLOSED)
    running = AttestationCampaign.objects.get(status=CampaignStatus.OPEN)
    assert completed.scope_type == "privileged" and completed.period_end < now.date()
    assert completed.closed_at > completed.grace_until > completed.due_at
    assert completed.items.filter(state=ItemState.OPEN, consequence_applied_at__isnull=True).count() == 0
    assert running.due_at < now < running.grace_until
    overdue = running.items.filter(state=ItemState.OPEN)
    assert overdue.count() == counts["attestation_overdue"] > 10
    assert overdue.filter(escalated_at__isnull=False).count() == overdue.count()
    answered = running.items.filter(state=ItemState.ANSWERED)
    assert answered.count() > overdue.count()
    assert answered.filter(answer="flag_storage").exists()
    answer_times = answered.values_list("answered_at", flat=True)
    assert all(running.due_at - dt.timedelta(days=7) < at < now for at in answer_times)
    assert counts["attestation_lapsed"] >= 1
    assert counts["attestation_escalated"] >= counts["attestation_overdue"]
    assert inbox(user=Person.objects.get(username="demo-owner"))["total"] > 0
    assert mailoutbox == []  # history is replayed, nobody is mailed about it
    assert verify_chain().intact
    assert seed_demo_attestation(now=now) == counts  # a second run changes nothing
