"""An estate with problems for the report tests: unmanaged secrets, an overdue rotation, an accepted risk."""

from __future__ import annotations

import datetime as dt

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from governance.audit import Actor
from governance.choices import SecretStoreKind
from governance.models import Credential
from governance.models.approvals import ApprovalDecision, ApprovalPolicy, ApprovalRequest
from governance.models.checks import Finding
from tests.factories import CredentialFactory, SecretStoreFactory

SYSTEM_ACTOR = Actor.system(task_id="report-tests", label="report-tests")


def add_problems(personas, estate) -> dict:
    """Two leaked secrets (one per team), one overdue rotation; a sweep; an accepted risk on one leak."""
    from governance.services.findings import finding_accept_risk
    from governance.services.sweep import sweep_run

    now = timezone.now()
    ci_vars = SecretStoreFactory(name="ci-variables", kind=SecretStoreKind.CICD_VARIABLE)
    leaked = CredentialFactory(name="payments-leaked-token", system=estate["system"], owner=personas.owner,
                               team=personas.team, store=ci_vars, store_path="CI/PAYMENTS_TOKEN")
    overdue = CredentialFactory(name="payments-old-key", system=estate["system"], owner=personas.owner,
                                team=personas.team, issued_at=now - dt.timedelta(days=500),
                                last_rotated_at=now - dt.timedelta(days=400))
    other_leak = CredentialFactory(name="platform-leaked-token", system=estate["other_system"],
                                   owner=personas.approver, team=personas.other_team, store=ci_vars,
                                   store_path="CI/PLATFORM_TOKEN")
    sweep_run(trigger="report-tests")
    finding = Finding.objects.get(failed_check__code="secret-in-vault", object_id=leaked.pk)
    policy = ApprovalPolicy.objects.create(name="Risk acceptance (tests)", actions=["risk_acceptance"])
    request = ApprovalRequest.objects.create(
        action="risk_acceptance", status="executed", policy=policy,
        target_content_type=ContentType.objects.get_for_model(Credential), target_object_id=str(leaked.pk),
        requested_by=personas.owner, justification="Vendor migration in progress",
        created_at=now - dt.timedelta(days=2), expires_at=now + dt.timedelta(days=1),
        decided_at=now - dt.timedelta(days=1), executed_at=now - dt.timedelta(days=1),
    )
    ApprovalDecision.objects.create(request=request, approver=personas.approver, decision="approve",
                                    decided_at=now - dt.timedelta(days=1))
    expires = (now + dt.timedelta(days=30)).replace(microsecond=0)
    finding_accept_risk(actor=SYSTEM_ACTOR, finding_id=finding.pk, approval_request=request, expires_at=expires)
    return {"leaked": leaked, "overdue": overdue, "other_leak": other_leak, "request": request,
            "finding": finding, "risk_expires": expires, "ci_vars": ci_vars}
