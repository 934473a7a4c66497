"""Identical writes at the same moment (issue 15: "10 identical filings at once made 4 pending
requests; concurrent identical creates of credentials, bindings and portal forms give 500
(IntegrityError) in 2-3 of 10"). Real threads, each with its own PostgreSQL connection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from governance.models import Binding, Credential, System
from governance.models.approvals import ApprovalRequest, ApprovalStatus
from governance.services.duplicates import unique_violation_error
from tests.factories import CredentialFactory
from tests.factories_approvals import make_policy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
RACERS = 10


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the race needs PostgreSQL (DATABASE_URL=postgres://...)")


def race(clients, send) -> list[tuple[int, dict | str]]:
    """Send from every client at once (a barrier releases them together); (status, body) each."""
    barrier = threading.Barrier(len(clients))

    def one(client):
        barrier.wait(30)
        try:
            response = send(client)
            body = response.json() if response.get("Content-Type", "").startswith("application/json") \
                else response.content.decode()
            return response.status_code, body
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return list(pool.map(one, clients))


def api_clients(person, count=RACERS) -> list[APIClient]:
    clients = []
    for _ in range(count):
        client = APIClient(raise_request_exception=False)
        client.force_login(person)
        clients.append(client)
    return clients


def test_ten_identical_filings_at_once_made_four_pending_requests(personas, estate):
    make_policy(groups=[personas.other_team.group])
    body = {"action": "ownership_transfer", "target_type": "governance.credential",
            "target_id": estate["credential"].pk, "justification": "Olivia moves",
            "payload": {"new_owner": personas.backup_owner.pk}}
    outcomes = race(api_clients(personas.owner),
                    lambda client: client.post("/api/v1/approval-requests/", body, format="json"))
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [201] + [400] * (RACERS - 1), outcomes
    pending = ApprovalRequest.objects.get(status=ApprovalStatus.PENDING)
    for status, answer in outcomes:
        if status == 400:
            assert answer["fields"]["action"][0].startswith("The same request is already pending"), answer
    refusals = [answer["fields"]["action"][0] for status, answer in outcomes if status == 400]
    assert all(f"#{pending.pk}" in message for message in refusals), refusals  # names the pending request


def test_ten_identical_credential_creates_gave_500s(personas, estate):
    body = {"name": "racer", "kind": "api_key", "identifier": "racer-1", "system": estate["system"].pk,
            "owner": personas.owner.pk, "team": personas.team.pk}
    outcomes = race(api_clients(personas.owner),
                    lambda client: client.post("/api/v1/credentials/", body, format="json"))
    statuses = sorted(status for status, _ in outcomes)
    assert statuses.count(201) == 1 and set(statuses) <= {201, 400, 409}, outcomes
    for status, answer in outcomes:
        if status in (400, 409):
            assert "identifier" in answer["fields"] or "non_field_errors" in answer["fields"], answer
            assert "already exists" in str(answer["fields"]), answer
    assert Credential.objects.filter(identifier="racer-1").count() == 1


def test_ten_identical_binding_creates_gave_500s(personas, estate):
    spare = CredentialFactory(name="spare", system=estate["system"], owner=personas.owner, team=personas.team)
    body = {"workflow": estate["workflow"].pk, "credential": spare.pk, "purpose": "deploy"}
    outcomes = race(api_clients(personas.owner),
                    lambda client: client.post("/api/v1/bindings/", body, format="json"))
    statuses = sorted(status for status, _ in outcomes)
    assert statuses.count(201) == 1 and set(statuses) <= {201, 400, 409}, outcomes
    assert Binding.objects.filter(workflow=estate["workflow"], credential=spare).count() == 1


def test_ten_identical_portal_forms_gave_500s(personas):
    clients = []
    for _ in range(RACERS):
        client = Client(raise_request_exception=False)
        client.force_login(personas.owner)
        clients.append(client)
    form = {"name": "portal-racer", "lifecycle": "active", "environment": "prod", "criticality": "medium",
            "owner": personas.owner.pk, "team": personas.team.pk}
    outcomes = race(clients, lambda client: client.post(reverse("system-create"), form))
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [200] * (RACERS - 1) + [302], outcomes  # one made it; the others see the form again
    for status, page in outcomes:
        if status == 200:
            assert "already exists" in page
    assert System.objects.filter(name="portal-racer").count() == 1


def test_integrity_errors_other_than_unique_are_not_dressed_up(personas, estate):
    """A foreign-key or check violation is a fault, not a duplicate: it stays an error."""
    from django.db import transaction

    try:
        with transaction.atomic():
            Credential.objects.filter(pk=estate["credential"].pk).update(system_id=10**9)
    except IntegrityError as exc:
        assert unique_violation_error(exc) is None
    else:
        pytest.fail("the foreign key should have refused")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        CredentialFactory(system=estate["system"], identifier=estate["credential"].identifier)
    error = unique_violation_error(caught.value)
    assert error is not None and "already exists" in error.message_dict["identifier"][0]
