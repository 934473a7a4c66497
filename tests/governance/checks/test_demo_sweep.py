"""On the demo estate, one sweep opens a finding for every seeded problem; the dashboard shows them."""

import datetime as dt

import pytest
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from governance import demo
from governance.choices import MANAGED_STORE_KINDS, CredentialKind, CredentialStatus, SystemLifecycle, WorkflowStatus
from governance.models import Credential, Person, System, Workflow
from governance.models.checks import UNRESOLVED_STATES, Finding
from governance.services.sweep import sweep_run

pytestmark = pytest.mark.django_db

LIVE = (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED)
RUNNING = (WorkflowStatus.ACTIVE, WorkflowStatus.SUSPENDED)


def seeded(anchor):
    """check code -> the objects seeded with that problem, found independently of the checks."""
    active = Credential.objects.filter(status=CredentialStatus.ACTIVE)
    running = Workflow.objects.filter(status__in=RUNNING)
    overdue = [c.pk for c in active.exclude(kind=CredentialKind.CERTIFICATE)
               if anchor - c.last_rotated_at > dt.timedelta(days=c.rotation_max_age_days or 90)]
    wildcard = [c.pk for c in active if any(s == "*" or s.endswith(":*") for s in c.scopes)]
    return {
        "secret-in-vault": Credential.objects.filter(status__in=LIVE).exclude(store__kind__in=MANAGED_STORE_KINDS),
        "rotation-age": Credential.objects.filter(pk__in=overdue),
        "cert-expiry": active.filter(kind=CredentialKind.CERTIFICATE, expires_at__lt=anchor + dt.timedelta(days=30)),
        "owner-named": [*Workflow.objects.filter(owner__isnull=True).exclude(status=WorkflowStatus.RETIRED),
                        *Credential.objects.filter(owner__isnull=True, status__in=LIVE)],
        "retired-app-offboarded": System.objects.filter(
            lifecycle=SystemLifecycle.RETIRED, credentials__status=CredentialStatus.ACTIVE).distinct(),
        "no-reuse": active.annotate(uses=Count("bindings")).filter(uses__gt=1),
        "least-privilege": active.filter(Q(pk__in=wildcard) | Q(privilege_level="admin")),
        "human-use": active.filter(human_use_detected=True),
        "vendor-creds-reviewed": active.filter(system__third_party=True, third_party_reviewed_at__isnull=True),
        "kill-switch": running.filter(
            Q(shutdown_procedure="") | Q(last_drilled_at__isnull=True) | Q(last_drill_result="failed")
            | Q(last_drilled_at__lt=anchor - dt.timedelta(days=365))),
        "approval-sod": active.filter(privilege_level="admin"),
    }


def test_sweeping_the_demo_estate_opens_a_finding_for_every_seeded_problem(client):
    anchor = demo.demo_anchor()
    demo.build_demo_estate(password="demo-pass-for-tests", anchor=anchor)
    run = sweep_run(trigger="test")
    assert run.status == "succeeded", run.errors
    unresolved = set(Finding.objects.filter(state__in=UNRESOLVED_STATES).values_list(
        "failed_check__code", "object_type", "object_id"))
    for code, objects in seeded(anchor).items():
        objects = list(objects)
        assert objects, f"the demo seeds no problem for {code}"
        missing = [str(o) for o in objects if (code, o._meta.label_lower, o.pk) not in unresolved]
        assert missing == [], f"{code}: no finding for {missing}"
    counts = {code: sum(1 for c, _, _ in unresolved if c == code) for code in seeded(anchor)}
    assert counts["retired-app-offboarded"] == 1
    retired = Finding.objects.get(failed_check__code="retired-app-offboarded")
    assert retired.evidence["active_credentials"] == demo.SEEDED_PROBLEMS["retired_system_active_credentials"]
    assert counts["human-use"] == demo.SEEDED_PROBLEMS["human_use_credentials"]
    assert counts["vendor-creds-reviewed"] == demo.SEEDED_PROBLEMS["third_party_unreviewed"]
    assert sweep_run(trigger="test").counts["rotation-age"]["opened"] == 0

    client.force_login(Person.objects.get(username="demo-auditor"))
    response = client.get(reverse("posture-dashboard"))
    by_framework = {row["framework"].key: row["result"] for row in response.context["frameworks"]}
    assert len(by_framework) == 7 and all(result.failed > 0 for result in by_framework.values())
    assert response.context["severity"]["critical"] >= demo.SEEDED_PROBLEMS["unmanaged_store_credentials"]
    page = client.get(reverse("framework-detail", args=["owasp_nhi_top10_2025"]))
    rows = {row.control.identifier: row.result for row in page.context["controls"]}
    assert rows["NHI2:2025"].failed >= demo.SEEDED_PROBLEMS["unmanaged_store_credentials"]
    assert rows["NHI10:2025"].failed >= demo.SEEDED_PROBLEMS["human_use_credentials"]
    assert timezone.now() - run.started_at < dt.timedelta(minutes=5)
