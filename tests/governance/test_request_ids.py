"""The server names every request itself; a client's X-Request-ID is kept apart (issue 14: "a
client-supplied X-Request-ID is stored as the audit event's request id")."""

import pytest
from rest_framework.test import APIClient

from governance.audit import CLIENT_REQUEST_ID_MAX, content_digest, verify_chain
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db


def session(person) -> APIClient:
    client = APIClient()
    client.force_login(person)
    return client


def test_forged_x_request_id_shared_a_security_admins_event_request_id(personas):
    admin = session(personas.secadmin).post("/api/v1/systems/", {"name": "admin-made"}, format="json")
    assert admin.status_code == 201
    admin_event = AuditEvent.objects.get(action="system.create", object_repr="admin-made")
    assert admin_event.request_id == admin["X-Request-ID"]
    forged = session(personas.owner).post("/api/v1/systems/", {"name": "owner-made", "owner": personas.owner.pk},
                                          format="json", HTTP_X_REQUEST_ID=admin_event.request_id)
    assert forged.status_code == 201, forged.json()
    event = AuditEvent.objects.get(action="system.create", object_repr="owner-made")
    assert event.request_id != admin_event.request_id
    assert event.request_id == forged["X-Request-ID"] and len(event.request_id) == 32
    assert event.client_request_id == admin_event.request_id  # kept, apart, as evidence
    assert not AuditEvent.objects.filter(request_id=admin_event.request_id).exclude(pk=admin_event.pk).exists()
    assert verify_chain().intact


def test_error_bodies_carry_the_servers_request_id(personas):
    response = session(personas.owner).post("/api/v1/systems/", {"name": ""}, format="json",
                                            HTTP_X_REQUEST_ID="client-1")
    assert response.status_code == 400
    assert response.json()["request_id"] == response["X-Request-ID"] != "client-1"


@pytest.mark.parametrize(("sent", "kept"), [
    ("ticket-42", "ticket-42"),
    ("x" * 500, "x" * CLIENT_REQUEST_ID_MAX),
    ("bad\x01id", ""),
    ("caf\u00e9", ""),
    ("   ", ""),
])
def test_client_request_id_is_printable_and_capped(personas, sent, kept):
    client = session(personas.owner)
    response = client.post("/api/v1/systems/", {"name": "cid", "owner": personas.owner.pk}, format="json",
                           HTTP_X_REQUEST_ID=sent)
    assert response.status_code == 201
    assert AuditEvent.objects.get(action="system.create").client_request_id == kept


def test_client_request_id_is_part_of_the_chained_content(personas):
    session(personas.owner).post("/api/v1/systems/", {"name": "chained", "owner": personas.owner.pk},
                                 format="json", HTTP_X_REQUEST_ID="ticket-7")
    event = AuditEvent.objects.get(action="system.create")
    digest = content_digest(event)
    event.client_request_id = "ticket-8"
    assert content_digest(event) != digest
