"""Sign-in hardening: lockout after repeated failures, idle and absolute session lifetimes."""

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_repeated_failures_lock_the_account_even_with_the_right_password(client, personas, settings):
    url = reverse("login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(url, {"username": personas.owner.username, "password": "wrong"})
        assert response.status_code == 200 and b"Please enter a correct username" in response.content
    assert client.post(url, {"username": personas.owner.username, "password": "wrong"}).status_code == 429
    response = client.post(url, {"username": personas.owner.username, "password": "pw-for-tests-1"})
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content


def test_a_good_sign_in_works(client, personas):
    response = client.post(reverse("login"), {"username": personas.owner.username, "password": "pw-for-tests-1"})
    assert response.status_code == 302 and response.url == reverse("home")


def test_idle_session_ends(client, personas, settings):
    settings.STEWARD_SESSION_IDLE_SECONDS = 0
    client.force_login(personas.owner)
    assert client.get(reverse("home")).status_code == 200  # first request stamps the session
    import time

    time.sleep(1.1)
    response = client.get(reverse("workflow-list"))
    assert response.status_code == 302 and reverse("login") in response.url


def test_absolute_session_lifetime(client, personas, settings):
    client.force_login(personas.owner)
    assert client.get(reverse("home")).status_code == 200
    session = client.session
    session["steward_session_started"] -= settings.STEWARD_SESSION_ABSOLUTE_SECONDS + 1
    session.save()
    response = client.get(reverse("home"))
    assert response.status_code == 302


def test_requests_carry_a_request_id_into_the_audit_trail(client, personas):
    from governance.models import AuditEvent

    client.force_login(personas.owner)
    response = client.post(reverse("system-create"), {
        "name": "new-system", "lifecycle": "active", "environment": "prod", "criticality": "medium",
        "owner": personas.owner.pk, "team": personas.team.pk}, HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="system.create")
    # The server's own id names the request; the client's X-Request-ID is kept apart (issue 14).
    assert event.request_id == response["X-Request-ID"] and event.request_id != "req-123"
    assert event.client_request_id == "req-123" and event.source_address == "127.0.0.1"
