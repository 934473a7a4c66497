"""Connector health (#19, 5): a store's settings as fields, "Test connection" recorded, failures counted."""

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.connectors import registry
from governance.connectors.base import CredentialRef, ProbeCheck, ProbeResult, Unreachable
from governance.models import AuditEvent
from governance.models.lifecycle import AttemptOutcome, RotationAttempt, RotationJob
from governance.selectors.stores import STORE_PROBED
from tests.factories import CredentialFactory, SecretStoreFactory

pytestmark = [pytest.mark.django_db]


class _FakeConnector:
    def __init__(self, result=None, error=None):
        self.result, self.error, self.probed = result, error, []

    def probe(self, ref):
        self.probed.append(ref.name)
        if self.error:
            raise self.error
        return self.result


@pytest.fixture
def store(personas):
    store = SecretStoreFactory(name="vault-prod", settings={"mount": "secret", "namespace": "payments"})
    CredentialFactory(name="held-key", store=store, owner=personas.owner, team=personas.team)
    return store


def _use(monkeypatch, connector):
    monkeypatch.setattr(registry, "connector_for",
                        lambda credential: (connector, CredentialRef.from_credential(credential)))


def test_settings_are_labelled_fields_not_a_python_dict(client, personas, store):
    client.force_login(personas.owner)
    body = client.get(reverse("secretstore-detail", args=[store.pk])).content.decode()
    assert "{&#x27;mount&#x27;" not in body and "{'mount'" not in body
    assert "<dt>Mount</dt><dd><code>secret</code></dd>" in body
    assert "<dt>Namespace</dt><dd><code>payments</code></dd>" in body
    assert "never tested" in body
    assert "Test connection" not in body  # not a security admin


def test_security_admin_tests_the_connection_and_the_page_shows_the_outcome(client, personas, store, monkeypatch):
    connector = _FakeConnector(result=ProbeResult((ProbeCheck("OpenBao reachable and token valid", True, "ok"),)))
    _use(monkeypatch, connector)
    client.force_login(personas.secadmin)
    assert b"Test connection" in client.get(reverse("secretstore-detail", args=[store.pk])).content
    response = client.post(reverse("secretstore-probe", args=[store.pk]))
    assert response.status_code == 302 and connector.probed == ["held-key"]
    body = client.get(reverse("secretstore-detail", args=[store.pk])).content.decode()
    assert "reachable" in body and "OpenBao reachable and token valid: ok" in body

    failing = _FakeConnector(error=Unreachable("connection refused by 127.0.0.1:8200"))
    _use(monkeypatch, failing)
    client.post(reverse("secretstore-probe", args=[store.pk]))
    body = client.get(reverse("secretstore-detail", args=[store.pk])).content.decode()
    assert "failing" in body and "connection refused by 127.0.0.1:8200" in body
    events = AuditEvent.objects.filter(action=STORE_PROBED, object_id=str(store.pk)).order_by("sequence")
    assert [e.changes["outcome"] for e in events] == ["ok", "failed"]
    assert all(e.changes["attempted_at"] for e in events)


def test_only_security_admins_may_test_and_an_unmanaged_store_is_refused(client, personas, store, monkeypatch):
    _use(monkeypatch, _FakeConnector(result=ProbeResult()))
    client.force_login(personas.owner)
    assert client.post(reverse("secretstore-probe", args=[store.pk])).status_code == 404
    unmanaged = SecretStoreFactory(kind="source_code")
    client.force_login(personas.secadmin)
    client.post(reverse("secretstore-probe", args=[unmanaged.pk]))
    assert not AuditEvent.objects.filter(action=STORE_PROBED).exists()


def test_a_store_without_credentials_records_a_failed_probe(client, personas, monkeypatch):
    empty = SecretStoreFactory()
    client.force_login(personas.secadmin)
    client.post(reverse("secretstore-probe", args=[empty.pk]))
    event = AuditEvent.objects.get(action=STORE_PROBED)
    assert event.changes["outcome"] == "failed" and "no credential" in event.changes["detail"]


def test_home_counts_connection_errors_as_failed_attempts(client, personas, estate):
    job = RotationJob.objects.create(credential=estate["credential"], due_on=timezone.now().date(), trigger="manual")
    outcomes = [AttemptOutcome.RETRYING] * 4 + [AttemptOutcome.SUCCEEDED]
    for number, outcome in enumerate(outcomes, start=1):
        RotationAttempt.objects.create(job=job, number=number, started_at=timezone.now(), outcome=outcome,
                                       error_code="unreachable" if outcome == AttemptOutcome.RETRYING else "")
    client.force_login(personas.secadmin)
    body = client.get(reverse("home")).content.decode()
    assert '<div class="stat">4 / 5</div>' in body and "4 of them connection errors" in body
