"""The home page's findings panel is risk-ranked (#19, 1): severity, the object's criticality and
privilege, then age; never simply the newest first. The rank is the one the sweep stored."""

import pytest
from django.urls import reverse

from governance.models.checks import Finding
from governance.services.sweep import sweep_run
from tests.factories import CredentialFactory, SystemFactory

pytestmark = [pytest.mark.django_db]


def _unmanaged(personas, *, criticality, privilege="read"):
    system = SystemFactory(criticality=criticality, owner=personas.owner, team=personas.team)
    return CredentialFactory(system=system, privilege_level=privilege, owner=personas.owner, team=personas.team,
                             store=None, store_path="")


def test_home_findings_are_worst_first(client, personas, estate, django_assert_max_num_queries):
    low = _unmanaged(personas, criticality="low")
    high_admin = _unmanaged(personas, criticality="high", privilege="admin")
    high = _unmanaged(personas, criticality="high")
    sweep_run(checks=["secret-in-vault"], trigger="test")
    ranked = [Finding.objects.get(object_id=c.pk, object_type="governance.credential").pk
              for c in (high_admin, high, low)]
    client.force_login(personas.owner)
    client.get(reverse("home"))
    with django_assert_max_num_queries(60) as queries:
        response = client.get(reverse("home"))
    assert [f.pk for f in response.context["owner"]["findings"]][:3] == ranked
    body = response.content.decode()
    panel = body[body.index("Open findings, worst first"):]
    positions = [panel.index(f"{c.name} · ") for c in (high_admin, high, low)]
    assert positions == sorted(positions)
    assert "high criticality · admin privilege" in panel
    ordering = [q["sql"] for q in queries.captured_queries if "risk_rank" in q["sql"] and "ORDER BY" in q["sql"]]
    assert ordering, "the panel orders by the stored rank"
