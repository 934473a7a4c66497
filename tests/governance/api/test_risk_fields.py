"""The risk and lifecycle fields the sweep sets are read-only in the API (#19): shown, never written.

Like last_attested_at (set by attestation only) they are not gated fields with an operation to change
them: nothing but the sweep sets them, so a write that sends them is ignored and the stored value stays.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import AuditEvent, Credential
from governance.services.risk import credential_risk_refresh
from governance.services.sweep import sweep_run

pytestmark = [pytest.mark.django_db]

SWEPT = ("risk_score", "risk_reasons", "swept_rotation_due_at", "swept_expires_at")


@pytest.fixture
def api(personas):
    client = APIClient()
    client.force_login(personas.owner)
    return client


@pytest.fixture
def scored(estate):
    Credential.objects.filter(pk=estate["credential"].pk).update(privilege_level="admin")
    sweep_run(trigger="test")
    credential = Credential.objects.get(pk=estate["credential"].pk)
    assert credential.risk_score > 0 and "admin privilege" in credential.risk_reasons
    return credential


def test_the_api_shows_the_score_reasons_and_lifecycle_dates(api, scored):
    body = api.get(f"/api/v1/credentials/{scored.pk}/").json()
    assert body["risk_score"] == scored.risk_score and body["risk_reasons"] == scored.risk_reasons
    assert body["swept_rotation_due_at"] is not None
    findings = api.get("/api/v1/findings/", {"object_type": "governance.credential"}).json()["results"]
    assert findings and all(isinstance(f["risk_rank"], int) and f["risk_rank"] < 999 for f in findings)


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_write_of_a_swept_field_is_ignored(api, scored, method):
    events = AuditEvent.objects.count()
    current = api.get(f"/api/v1/credentials/{scored.pk}/").json()
    body = {"risk_score": 0, "risk_reasons": [], "swept_rotation_due_at": None, "swept_expires_at": None}
    if method == "put":
        body = {**{k: current[k] for k in ("name", "kind", "system", "identifier", "store", "store_path")}, **body}
    response = getattr(api, method)(f"/api/v1/credentials/{scored.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    fresh = Credential.objects.get(pk=scored.pk)
    assert [getattr(fresh, name) for name in SWEPT] == [getattr(scored, name) for name in SWEPT]
    assert response.json()["risk_score"] == scored.risk_score
    assert AuditEvent.objects.count() == events  # nothing changed, nothing recorded


def test_the_schema_marks_them_read_only(api):
    schema = api.get("/api/schema/?format=json").json()["components"]["schemas"]
    for name in SWEPT:
        assert schema["Credential"]["properties"][name].get("readOnly") is True, name
    assert schema["Finding"]["properties"]["risk_rank"].get("readOnly") is True


def test_the_api_filters_credentials_by_lifecycle(api, estate):
    Credential.objects.filter(pk=estate["credential"].pk).update(
        kind="certificate", expires_at=timezone.now() - timezone.timedelta(days=1))
    credential_risk_refresh(now=timezone.now())
    ids = [c["id"] for c in api.get("/api/v1/credentials/", {"lifecycle": "expired"}).json()["results"]]
    assert ids == [estate["credential"].pk]
