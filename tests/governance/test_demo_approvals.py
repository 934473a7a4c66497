"""The demo's approval history: realistic numbers, a non-empty queue, and the seeded problems intact."""

import pytest
from django.core import mail
from django.urls import reverse

from governance import demo
from governance.demo_approvals import seed_demo_approvals
from governance.models import Person
from governance.models.approvals import ApprovalRequest, ApprovalStatus
from governance.selectors.approvals import approval_queue
from governance.services.approvals import decision_blockers
from tests.governance.test_seed_demo import problem_counts

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_demo_approvals(client, django_capture_on_commit_callbacks):
    anchor = demo.demo_anchor()
    with django_capture_on_commit_callbacks(execute=True):
        demo.build_demo_estate(password="demo-pass-for-tests", anchor=anchor)
        counts = seed_demo_approvals(now=anchor)
    assert mail.outbox == []  # seeding history emails nobody
    assert counts["approval_policies"] == 4
    assert counts["approval_requests_pending"] >= 8
    assert counts["approval_requests_executed"] >= 6
    assert counts["approval_requests_rejected"] >= 4
    assert counts["approval_requests_expired"] >= 3
    assert counts["approval_requests_failed"] == 1
    failed = ApprovalRequest.objects.get(status=ApprovalStatus.FAILED)
    assert "changed since this request was filed" in failed.failure_reason

    approver = Person.objects.get(username="demo-approver")
    queue = list(approval_queue(user=approver))
    reasons = decision_blockers(person=approver, requests=queue)
    actionable = [pk for pk, reason in reasons.items() if reason is None]
    assert len(queue) >= 6 and len(actionable) >= 5
    assert any(reason and "filed" in reason for reason in reasons.values())
    assert any(reason and "own" in reason for reason in reasons.values())
    assert ApprovalRequest.objects.filter(escalated_at__isnull=False, status=ApprovalStatus.PENDING).exists()

    assert problem_counts(anchor) == demo.SEEDED_PROBLEMS

    client.force_login(approver)
    page = client.get(reverse("approval-queue"))
    assert page.status_code == 200 and page.content.decode().count("Review and decide") == len(actionable)
    client.force_login(Person.objects.get(username="demo-auditor"))
    for request in ApprovalRequest.objects.all():  # every action's diff renders
        assert client.get(reverse("approval-detail", args=[request.pk])).status_code == 200
    assert seed_demo_approvals(now=anchor) == counts  # a second run changes nothing
