"""Risk first, lifecycle at a glance (#19): the findings list's order, the credential list's risk and
lifecycle columns, badges and filters, with a constant number of queries per page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.checks.credentials import ThirdPartyReviewed
from governance.lists import LISTS
from governance.models import Credential
from governance.models.checks import SEVERITY_ORDER, Finding
from governance.services.risk import credential_risk_refresh
from governance.services.sweep import sweep_run
from tests.factories import CredentialFactory, SystemFactory, WorkflowFactory

pytestmark = [pytest.mark.django_db]

OLD = dt.timedelta(days=400)


def _mine(personas, **fields):
    fields.setdefault("system", SystemFactory(owner=personas.owner, team=personas.team,
                                              criticality=fields.pop("criticality", "medium")))
    return CredentialFactory(owner=personas.owner, team=personas.team, **fields)


@pytest.fixture
def lifecycle_estate(personas, estate):
    now = timezone.now()
    return {
        "overdue": _mine(personas, name="overdue-key", last_rotated_at=now - OLD, issued_at=now - OLD),
        "expiring": _mine(personas, name="expiring-cert", kind="certificate", expires_at=now + dt.timedelta(days=10)),
        "expired": _mine(personas, name="expired-cert", kind="certificate", expires_at=now - dt.timedelta(days=3)),
        "unmanaged": _mine(personas, name="admin-in-a-file", privilege_level="admin", store=None, store_path="",
                           criticality="critical"),
        "vendor": _mine(personas, name="vendor-key", system=SystemFactory(owner=personas.owner, team=personas.team,
                                                                        third_party=True)),
    }


def _names(response) -> list[str]:
    return [row.name for row in response.context["rows"]]


def test_findings_default_to_worst_first_and_severity_sorts_by_rank(client, personas, lifecycle_estate,
                                                                   monkeypatch):
    monkeypatch.setattr(ThirdPartyReviewed, "severity", "low")  # a low check: alphabetically before medium
    sweep_run(trigger="test")
    client.force_login(personas.owner)
    default = client.get(reverse("finding-list"))
    assert default.context["sort"] == "risk"
    ranks = [f.risk_rank for f in default.context["rows"]]
    assert ranks == sorted(ranks) and len(ranks) >= 5
    top = default.context["rows"][0]
    assert (top.failed_check.code, top.object_id) == ("secret-in-vault", lifecycle_estate["unmanaged"].pk)
    by_severity = client.get(reverse("finding-list"), {"sort": "severity"}).context["rows"]
    severities = [f.failed_check.severity for f in by_severity]
    assert {"critical", "medium", "low"} <= set(severities)
    assert severities == sorted(severities, key=lambda s: SEVERITY_ORDER[s])  # low last, not before medium
    assert severities != sorted(severities)  # which the text of the severity would give


def test_the_credential_list_shows_risk_and_lifecycle_at_a_glance(client, personas, lifecycle_estate):
    sweep_run(trigger="test")
    client.force_login(personas.owner)
    every_column = list(LISTS["credential"].column_keys)  # some are hidden until chosen
    response = client.get(reverse("credential-list"), {"sort": "-risk", "columns": every_column})
    rows = list(response.context["rows"])
    assert [r.risk_score for r in rows] == sorted((r.risk_score for r in rows), reverse=True)
    assert rows[0].name == "admin-in-a-file"
    body = response.content.decode()
    expired_row = body[body.index(">expired-cert<"):].split("</tr>")[0]
    assert '<span class="badge expired">expired</span>' in expired_row  # its status shows expired, not active
    assert ">active<" not in expired_row
    overdue_row = body[body.index(">overdue-key<"):].split("</tr>")[0]
    assert ">overdue</span>" in overdue_row
    expiring_row = body[body.index(">expiring-cert<"):].split("</tr>")[0]
    assert ">expiring</span>" in expiring_row
    for header in ("Risk", "Rotation due", "Last used", "Last attested"):
        assert re.search(f">{header}( [▲▼])?</a></th>", body), header


@pytest.mark.parametrize(("lifecycle", "expected"), [
    ("rotation_overdue", {"overdue-key"}),
    ("expiring", {"expiring-cert"}),
    ("expired", {"expired-cert"}),
])
def test_lifecycle_filters(client, personas, lifecycle_estate, lifecycle, expected):
    credential_risk_refresh(now=timezone.now())
    client.force_login(personas.owner)
    page = client.get(reverse("credential-list"))
    assert "Rotation overdue" in page.content.decode() and "Expiring within 30 days" in page.content.decode()
    response = client.get(reverse("credential-list"), {"lifecycle": lifecycle})
    assert set(_names(response)) == expected


@pytest.mark.parametrize("sort", ["risk", "-risk", "rotation_due", "used", "attested"])
def test_credential_list_queries_stay_constant_per_page(client, personas, lifecycle_estate, sort,
                                                        django_assert_max_num_queries):
    credential_risk_refresh(now=timezone.now())
    client.force_login(personas.owner)
    client.get(reverse("credential-list"))  # warm the session and the role cache
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("credential-list"), {"sort": sort})
    for n in range(15):
        _mine(personas, name=f"more-{n}", last_rotated_at=timezone.now() - OLD, issued_at=timezone.now() - OLD)
    credential_risk_refresh(now=timezone.now())
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("credential-list"), {"sort": sort})
    assert len(response.context["rows"]) >= 20


def test_workflow_list_sorts_by_last_attested(client, personas, estate, django_assert_max_num_queries):
    client.force_login(personas.owner)
    client.get(reverse("workflow-list"))
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("workflow-list"), {"sort": "attested"})
    for n in range(12):
        WorkflowFactory(name=f"attested-{n}", owner=personas.owner, team=personas.team,
                        last_attested_at=timezone.now() - dt.timedelta(days=n))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("workflow-list"), {"sort": "attested",
                                                         "columns": list(LISTS["workflow"].column_keys)})
    assert re.search(">Last attested ▲</a></th>", response.content.decode())
    dates = [w.last_attested_at for w in response.context["rows"] if w.last_attested_at is not None]
    assert len(dates) == 12 and dates == sorted(dates)


def test_risk_shows_on_the_credential_page_with_its_reasons(client, personas, lifecycle_estate):
    credential_risk_refresh(now=timezone.now())
    credential = Credential.objects.get(pk=lifecycle_estate["unmanaged"].pk)
    client.force_login(personas.owner)
    body = client.get(reverse("credential-detail", args=[credential.pk])).content.decode()
    assert f"Risk {credential.risk_score}/100" in body and credential.risk_score > 0
    assert "admin privilege, unmanaged store" in body


def test_findings_list_queries_do_not_grow(client, personas, lifecycle_estate, django_assert_max_num_queries):
    sweep_run(trigger="test")
    client.force_login(personas.owner)
    client.get(reverse("finding-list"))
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("finding-list"))
    for n in range(10):
        _mine(personas, name=f"bare-{n}", store=None, store_path="")
    sweep_run(checks=["secret-in-vault"], trigger="test")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("finding-list"))
    assert Finding.objects.count() >= 15 and len(response.context["rows"]) >= 15
