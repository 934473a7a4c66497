"""The home page's findings panel is risk-ranked (#19, 1): severity, the object's criticality and
privilege, then age; never simply the newest first."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.models.checks import Finding
from portal.home import risk_ranked
from tests.factories import CredentialFactory, SystemFactory
from tests.factories_checks import FindingFactory, load_catalogue

pytestmark = [pytest.mark.django_db]


def _finding(personas, code, *, criticality, privilege="read", days_old=0):
    system = SystemFactory(criticality=criticality, owner=personas.owner, team=personas.team)
    credential = CredentialFactory(system=system, privilege_level=privilege, owner=personas.owner,
                                   team=personas.team)
    seen = timezone.now() - dt.timedelta(days=days_old)
    return FindingFactory.for_object(credential, code=code, first_seen_at=seen, last_seen_at=seen)


def test_home_findings_are_worst_first(client, personas, estate, django_assert_max_num_queries):
    load_catalogue()
    medium_old = _finding(personas, "rotation-age", criticality="critical", days_old=90)
    critical_low = _finding(personas, "secret-in-vault", criticality="low", privilege="admin", days_old=30)
    critical_high_new = _finding(personas, "secret-in-vault", criticality="high", days_old=1)
    critical_high_admin = _finding(personas, "secret-in-vault", criticality="high", privilege="admin")
    critical_high_old = _finding(personas, "secret-in-vault", criticality="high", days_old=10)
    with django_assert_max_num_queries(1):
        ranked = list(risk_ranked(Finding.objects.filter(pk__in=[f.pk for f in (
            medium_old, critical_low, critical_high_new, critical_high_admin, critical_high_old)])))
    assert ranked == [critical_high_admin, critical_high_old, critical_high_new, critical_low, medium_old]
    client.force_login(personas.owner)
    body = client.get(reverse("home")).content.decode()
    panel = body[body.index("Open findings, worst first"):]
    positions = [panel.index(f.object_repr) for f in (critical_high_admin, critical_high_old, medium_old)]
    assert positions == sorted(positions)
