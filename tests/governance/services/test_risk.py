"""Risk (#19): the sweep ranks findings worst first and scores each credential with its reasons."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from governance.checks.credentials import RotationWithinPolicy
from governance.models import Binding, Credential
from governance.models.checks import Finding
from governance.selectors.checks import worst_first
from governance.services import sweep as sweep_module
from governance.services.risk import credential_risk_refresh
from governance.services.sweep import sweep_run
from tests.factories import CredentialFactory, SystemFactory, WorkflowFactory

pytestmark = [pytest.mark.django_db]

OLD = dt.timedelta(days=400)


def _credential(personas, *, criticality, privilege="read", store=True, **fields):
    system = SystemFactory(criticality=criticality, owner=personas.owner, team=personas.team)
    extra = {} if store else {"store": None, "store_path": ""}
    return CredentialFactory(system=system, privilege_level=privilege, owner=personas.owner, team=personas.team,
                             **extra, **fields)


def _finding(code, credential) -> Finding:
    return Finding.objects.get(failed_check__code=code, object_type="governance.credential", object_id=credential.pk,
                               state="open")


@pytest.fixture
def ranked(personas, estate):
    admin_critical = _credential(personas, criticality="critical", privilege="admin", store=False)
    read_low = _credential(personas, criticality="low", store=False)
    overdue_critical = _credential(personas, criticality="critical", last_rotated_at=timezone.now() - OLD,
                                   issued_at=timezone.now() - OLD)
    sweep_run(trigger="test")
    return {"admin_critical": admin_critical, "read_low": read_low, "overdue_critical": overdue_critical}


def test_a_critical_finding_on_a_critical_systems_admin_credential_ranks_first(ranked):
    top = _finding("secret-in-vault", ranked["admin_critical"])
    low_system = _finding("secret-in-vault", ranked["read_low"])
    admin_high = _finding("least-privilege", ranked["admin_critical"])
    medium = _finding("rotation-age", ranked["overdue_critical"])
    assert top.risk_rank == 0  # critical severity, critical system, admin privilege
    assert (low_system.risk_rank, admin_high.risk_rank, medium.risk_rank) == (32, 100, 202)
    ids = [top.pk, low_system.pk, admin_high.pk, medium.pk]
    assert list(worst_first(Finding.objects.filter(pk__in=ids)).values_list("pk", flat=True)) == ids


def test_the_rank_follows_the_object_without_touching_the_finding_otherwise(ranked):
    finding = _finding("secret-in-vault", ranked["read_low"])
    seen = finding.last_seen_at
    system = ranked["read_low"].system
    system.criticality = "critical"
    system.save()
    run = sweep_run(checks=["secret-in-vault"], trigger="test")
    finding.refresh_from_db()
    assert finding.risk_rank == 2  # now on a critical system (read privilege)
    assert run.counts["secret-in-vault"]["reranked"] == 1 and run.counts["secret-in-vault"]["refreshed"] == 0
    assert finding.last_seen_at == seen  # a re-rank is not a refresh: the evidence did not change


def test_a_severity_change_reranks_every_finding_of_the_check(ranked, monkeypatch):
    monkeypatch.setattr(RotationWithinPolicy, "severity", "low")  # the catalogue sync writes it to the Check row
    sweep_run(checks=["rotation-age"], trigger="test")
    assert _finding("rotation-age", ranked["overdue_critical"]).risk_rank == 302


def test_the_sweep_scores_credentials_with_their_reasons(personas, ranked):
    admin = Credential.objects.get(pk=ranked["admin_critical"].pk)
    highs = Finding.objects.filter(object_id=admin.pk, object_type="governance.credential", state="open",
                                   failed_check__severity="high").count()  # least-privilege, and others it fails
    assert admin.risk_reasons == ["1 open critical finding", f"{highs} open high findings", "admin privilege",
                                  "unmanaged store", "critical-criticality system"]  # the heaviest first
    assert admin.risk_score == min(25 + 15 * highs, 60) + 15 + 15 + 10
    overdue = Credential.objects.get(pk=ranked["overdue_critical"].pk)
    due = overdue.swept_rotation_due_at
    assert due is not None and due < timezone.now() - dt.timedelta(days=300)
    days = (timezone.now() - due).days
    assert f"rotation overdue by {days} days" in overdue.risk_reasons
    managed_read = CredentialFactory(owner=personas.owner, team=personas.team, system=SystemFactory(criticality="low"),
                                     last_attested_at=timezone.now())
    credential_risk_refresh(now=timezone.now())
    managed_read.refresh_from_db()
    assert managed_read.risk_score == 0 and managed_read.risk_reasons == []


def test_shared_expired_and_revoked(personas, estate):
    now = timezone.now()
    certificate = _credential(personas, criticality="medium", kind="certificate", expires_at=now - dt.timedelta(days=2))
    for _ in range(3):
        Binding.objects.create(workflow=WorkflowFactory(owner=personas.owner, team=personas.team),
                               credential=certificate, purpose="tls")
    revoked = _credential(personas, criticality="critical", privilege="admin", store=False, status="revoked")
    assert credential_risk_refresh(now=now) >= 2
    certificate.refresh_from_db()
    assert "expired" in certificate.risk_reasons and "used by 3 workflows" in certificate.risk_reasons
    assert certificate.risk_score == 20 + 10  # expired, and two workflows beyond the first (no findings yet)
    assert certificate.swept_expires_at == certificate.expires_at
    revoked.refresh_from_db()
    assert (revoked.risk_score, revoked.risk_reasons) == (0, [])  # not live: nothing to weigh


def test_a_second_pass_with_nothing_changed_writes_nothing(personas, ranked):
    now = timezone.now()
    credential_risk_refresh(now=now)
    assert credential_risk_refresh(now=now) == 0


def test_the_pass_in_small_ranges_scores_every_credential(personas, ranked):
    Credential.objects.update(risk_score=0, risk_reasons=[], swept_rotation_due_at=None)
    total = Credential.objects.count()
    assert credential_risk_refresh(now=timezone.now(), batch=2) == total  # every range, the last one too
    assert not Credential.objects.filter(swept_rotation_due_at=None).exists()
    assert Credential.objects.get(pk=ranked["admin_critical"].pk).risk_score > 0


def test_a_failing_risk_pass_leaves_the_findings_and_says_so(personas, estate, monkeypatch):
    def broken(*, now):
        raise RuntimeError("no scores today")

    monkeypatch.setattr(sweep_module, "credential_risk_refresh", broken)
    run = sweep_run(trigger="test")
    assert run.status == "partial" and "no scores today" in run.errors[sweep_module.RISK_PASS]
    assert Finding.objects.exists()
