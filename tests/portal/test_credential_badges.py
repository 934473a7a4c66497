"""The credential page's lifecycle badges (#19, 2): rotation overdue or due, expired or expiring (an
expired certificate never shows as plain "active"), last attested."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.models.lifecycle import CredentialObservation
from tests.factories import CredentialFactory

pytestmark = [pytest.mark.django_db]


def _page(client, personas, credential) -> str:
    client.force_login(personas.owner)
    return client.get(reverse("credential-detail", args=[credential.pk])).content.decode()


def _title(page: str) -> str:
    return page[page.index("<h1>"):page.index("</h1>")]


def test_an_expired_certificate_never_shows_as_plain_active(client, personas, estate):
    now = timezone.now()
    certificate = CredentialFactory(kind="certificate", owner=personas.owner, team=personas.team,
                                    expires_at=now + dt.timedelta(days=300))
    # The recorded expiry is far away; the certificate's own notAfter, as observed, has passed.
    CredentialObservation.objects.create(credential=certificate, state="ok", observed_at=now,
                                         observed_expires_at=now - dt.timedelta(days=2))
    page = _page(client, personas, certificate)
    title = _title(page)
    assert 'class="badge expired"' in title and "(recorded active)" in title
    assert 'class="badge active"' not in title
    assert "expired " in page[page.index('id="lifecycle-badges"'):]


def test_rotation_overdue_due_soon_expiring_and_attestation(client, personas, estate):
    now = timezone.now()
    overdue = CredentialFactory(kind="api_key", owner=personas.owner, team=personas.team,
                                last_rotated_at=now - dt.timedelta(days=200), issued_at=now - dt.timedelta(days=200))
    badges = _page(client, personas, overdue)
    assert "rotation overdue since" in badges and "never attested" in badges
    soon = CredentialFactory(kind="api_key", owner=personas.owner, team=personas.team,
                             last_rotated_at=now - dt.timedelta(days=85), expires_at=now + dt.timedelta(days=5),
                             last_attested_at=now - dt.timedelta(days=3))
    badges = _page(client, personas, soon)
    assert "rotation due " in badges and ("expires in 4 days" in badges or "expires in 5 days" in badges)
    assert f"attested {(now - dt.timedelta(days=3)):%Y-%m-%d}" in badges
    assert "rotation overdue" not in badges and "expired " not in badges
