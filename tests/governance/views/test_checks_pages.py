"""Findings, posture, framework and check pages: filters, bulk acknowledge, what each persona sees."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from governance.models import Credential
from governance.models.checks import Check, Control, Finding, FindingState
from governance.services.posture import posture_snapshot_take
from governance.services.sweep import sweep_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def swept(estate):
    """The estate with one overdue credential of each team, swept."""
    Credential.objects.filter(pk__in=[estate["credential"].pk, estate["other_credential"].pk]).update(
        last_rotated_at=timezone.now() - dt.timedelta(days=400))
    sweep_run(trigger="test")
    return {c.object_id: c for c in Finding.objects.filter(failed_check__code="rotation-age")}


def _rows(response):
    return {f.pk for f in response.context["rows"]}


@pytest.mark.embedded
def test_finding_list_shows_only_findings_of_visible_objects(client, personas, estate, swept):
    client.force_login(personas.owner)
    response = client.get(reverse("finding-list"), {"check": "rotation-age"})
    assert _rows(response) == {swept[estate["credential"].pk].pk}
    assert response.context["changeable"] == _rows(response)
    client.force_login(personas.auditor)
    response = client.get(reverse("finding-list"), {"check": "rotation-age"})
    assert _rows(response) == {f.pk for f in swept.values()} and response.context["changeable"] == set()


def test_finding_list_filters(client, personas, estate, swept):
    client.force_login(personas.secadmin)
    url = reverse("finding-list")
    ours = swept[estate["credential"].pk]
    assert _rows(client.get(url, {"check": "rotation-age", "team": personas.team.pk})) == {ours.pk}
    assert _rows(client.get(url, {"check": "rotation-age", "owner": personas.approver.pk})) == {
        swept[estate["other_credential"].pk].pk}
    nhi7 = Control.objects.get(identifier="NHI7:2025")
    assert _rows(client.get(url, {"control": nhi7.pk})) >= {f.pk for f in swept.values()}
    nhi10 = Control.objects.get(identifier="NHI10:2025")
    assert not _rows(client.get(url, {"control": nhi10.pk})) & {f.pk for f in swept.values()}
    assert _rows(client.get(url, {"severity": "medium", "check": "rotation-age"})) == {f.pk for f in swept.values()}
    assert _rows(client.get(url, {"severity": "critical", "check": "rotation-age"})) == set()
    Finding.objects.filter(pk=ours.pk).update(state=FindingState.RESOLVED, resolved_at=timezone.now())
    assert ours.pk not in _rows(client.get(url))  # unresolved by default
    assert ours.pk in _rows(client.get(url, {"state": "resolved"}))


@pytest.mark.embedded
def test_bulk_acknowledge(client, personas, estate, swept):
    client.force_login(personas.owner)
    ours = swept[estate["credential"].pk]
    response = client.post(reverse("finding-acknowledge"), {"finding": [ours.pk], "comment": "on it",
                                                            "next": "/findings/?check=rotation-age"})
    assert response.status_code == 302 and response.url == "/findings/?check=rotation-age"
    ours.refresh_from_db()
    assert ours.state == FindingState.ACKNOWLEDGED and ours.acknowledged_comment == "on it"
    theirs = swept[estate["other_credential"].pk]
    response = client.post(reverse("finding-acknowledge"), {"finding": [theirs.pk], "next": "https://evil.test/"},
                           follow=True)
    theirs.refresh_from_db()
    assert theirs.state == FindingState.OPEN
    assert response.redirect_chain[0][0] == reverse("finding-list")
    assert "not yours to acknowledge" in response.content.decode()


def test_finding_page_shows_evidence_controls_remediation_history_and_risk_acceptance(client, personas, estate,
                                                                                    swept):
    ours = swept[estate["credential"].pk]
    client.force_login(personas.owner)
    page = client.get(reverse("finding-detail", args=[ours.pk])).content.decode()
    assert "Max age days" in page and "NHI7:2025" in page and "PR.AA-01" in page and "formerly PR.AC-1" in page
    assert "Rotate the credential" in page and "finding.open" in page
    assert f'href="/approvals/new/risk_acceptance/?object=finding:{ours.pk}"' in page
    client.force_login(personas.auditor)
    page = client.get(reverse("finding-detail", args=[ours.pk])).content.decode()
    assert "risk_acceptance" not in page and "Acknowledge" not in page


@pytest.mark.embedded
def test_posture_dashboard_per_framework_with_inline_svg(client, personas, swept):
    posture_snapshot_take()
    client.force_login(personas.auditor)
    response = client.get(reverse("posture-dashboard"))
    page = response.content.decode()
    assert response.context["scope"].kind == "estate"
    assert "OWASP Top 10 Non-Human Identities Risks" in page and "<svg" in page
    scripts = re.findall(r"<script[^>]*>", page)
    assert all(re.search(r'src="/static/js/[\w-]+\.js"', tag) for tag in scripts)  # own files, nothing inline
    assert "cdn" not in page.lower()
    rotation = next(r for r in response.context["checks"] if r["check"].code == "rotation-age")["result"]
    assert (rotation.evaluated, rotation.failed) == (2, 2)


def test_posture_for_a_team_member_covers_their_teams_only(client, personas, estate, swept):
    client.force_login(personas.owner)
    response = client.get(reverse("posture-dashboard"))
    scope = response.context["scope"]
    assert scope.kind == "team" and scope.team_ids == [personas.team.pk]
    rotation = next(r for r in response.context["checks"] if r["check"].code == "rotation-age")["result"]
    assert (rotation.evaluated, rotation.failed) == (1, 1)
    assert [c.pk for c in response.context["rotations"]] == [estate["credential"].pk]
    assert client.get(reverse("posture-dashboard"), {"team": personas.other_team.pk}).status_code == 404


def test_framework_page_lists_controls_checks_and_counts(client, personas, swept):
    client.force_login(personas.secadmin)
    response = client.get(reverse("framework-detail", args=["nist_csf_2_0"]))
    rows = {row.control.identifier: row for row in response.context["controls"]}
    assert "rotation-age" in {m.mapped_check.code for m in rows["PR.AA-01"].mappings}
    assert rows["PR.AA-01"].control.aliases == ["PR.AC-1"]
    assert rows["PR.AA-01"].result.failed >= 2
    assert rows["PR.AA-01"].open_by_severity["medium"] >= 2  # the two rotation-age findings at least
    assert "formerly PR.AC-1" in response.content.decode()
    assert client.get(reverse("framework-detail", args=["nope"])).status_code == 404


def test_checks_page_lists_every_check_of_the_catalogue(client, personas, swept):
    client.force_login(personas.outsider)
    page = client.get(reverse("check-list")).content.decode()
    names = list(Check.objects.values_list("name", flat=True))
    assert len(names) >= 16 and page.count('<section class="card"') == len(names)
    assert [name for name in names if escape(name) not in page] == []
    assert "within 30 days" in page  # the configured certificate warning window is written in


def test_object_posture_page(client, personas, estate, swept):
    client.force_login(personas.owner)
    response = client.get(reverse("posture-object", args=["credentials", estate["credential"].pk]))
    states = {row["check"].code: row["state"] for row in response.context["rows"]}
    assert states["rotation-age"] == "failed" and states["secret-in-vault"] == "passed"
    assert client.get(reverse("posture-object", args=["credentials", estate["other_credential"].pk])).status_code == 404


def test_finding_list_queries_do_not_grow_with_the_number_of_findings(client, personas, estate, swept,
                                                                      django_assert_max_num_queries):
    from tests.factories import CredentialFactory

    client.force_login(personas.owner)
    client.get(reverse("finding-list"))  # warm the session and the role cache
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("finding-list"))
    for _ in range(12):
        CredentialFactory(owner=personas.owner, team=personas.team, system=estate["system"],
                          last_rotated_at=timezone.now() - dt.timedelta(days=400))
    sweep_run(checks=["rotation-age"], trigger="test")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("finding-list"))
    assert len(response.context["rows"]) >= 13


def test_posture_lists_the_rotations_the_last_sweep_found_due(client, personas, estate, swept):
    """The 'Rotations due' card reads the date the sweep stored (as of that sweep), overdue ones marked."""
    client.force_login(personas.auditor)
    response = client.get(reverse("posture-dashboard"))
    due = {c.pk for c in response.context["rotations"]}
    assert {estate["credential"].pk, estate["other_credential"].pk} <= due
    assert "overdue</span>" in response.content.decode()
    client.force_login(personas.owner)  # an owner sees only the rotations of what they may see
    mine = {c.pk for c in client.get(reverse("posture-dashboard")).context["rotations"]}
    assert estate["credential"].pk in mine and estate["other_credential"].pk not in mine
