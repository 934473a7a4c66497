"""Sign-in lockout per (account, address) and the client address behind trusted proxies (issue 15)."""

import uuid

import pytest
from django.test import RequestFactory
from django.urls import reverse

from governance.models import AuditEvent
from portal.client_address import client_address

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
PASSWORD = "pw-for-tests-1"


def sign_in(client, username, password, **meta):
    return client.post(reverse("login"), {"username": username, "password": password}, **meta)


def test_random_names_from_one_address_lock_out_nobody_else_there(client, personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT * 3):
        assert sign_in(client, f"nobody-{uuid.uuid4().hex[:8]}", "wrong").status_code == 200
    response = sign_in(client, personas.owner.username, PASSWORD)
    assert response.status_code == 302 and response.url == reverse("home")


def test_an_account_locked_at_one_address_still_signs_in_from_another(client, personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, personas.owner.username, "wrong", REMOTE_ADDR="203.0.113.7")
    assert sign_in(client, personas.owner.username, PASSWORD, REMOTE_ADDR="203.0.113.7").status_code == 429
    assert sign_in(client, personas.owner.username, PASSWORD, REMOTE_ADDR="198.51.100.9").status_code == 302


def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own(client, personas, settings):
    settings.STEWARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    via_proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, personas.owner.username, "wrong", HTTP_X_FORWARDED_FOR="203.0.113.7", **via_proxy)
    assert sign_in(client, personas.owner.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7",
                   **via_proxy).status_code == 429
    # another client behind the same proxy is not locked out
    assert sign_in(client, personas.owner.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.9",
                   **via_proxy).status_code == 302


def test_a_forged_forwarded_for_from_an_untrusted_address_changes_nothing(client, personas, settings):
    settings.STEWARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, personas.owner.username, "wrong", REMOTE_ADDR="203.0.113.7",
                HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    assert sign_in(client, personas.owner.username, PASSWORD, REMOTE_ADDR="203.0.113.7",
                   HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 429


@pytest.mark.parametrize(("remote", "forwarded", "trusted", "expected"), [
    ("203.0.113.7", "", [], "203.0.113.7"),
    ("10.0.0.2", "198.51.100.9", [], "10.0.0.2"),                      # no trusted proxy: header ignored
    ("10.0.0.2", "198.51.100.9", ["10.0.0.0/8"], "198.51.100.9"),
    ("10.0.0.2", "6.6.6.6, 198.51.100.9", ["10.0.0.0/8"], "198.51.100.9"),  # spoofed left entry ignored
    ("10.0.0.2", "198.51.100.9, 10.0.0.5", ["10.0.0.0/8"], "198.51.100.9"),  # two proxy hops
    ("10.0.0.2", "garbage, 10.0.0.5", ["10.0.0.0/8"], "10.0.0.5"),     # stops at the last good hop
    ("10.0.0.2", "[2001:db8::1]:443", ["10.0.0.0/8"], "2001:db8::1"),
    ("::ffff:10.0.0.2", "198.51.100.9:5555", ["10.0.0.0/8"], "198.51.100.9"),
    ("203.0.113.7", "198.51.100.9", ["10.0.0.0/8"], "203.0.113.7"),
])
def test_client_address(remote, forwarded, trusted, expected, settings):
    settings.STEWARD_TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_the_audit_trail_records_the_client_behind_the_proxy(client, personas, settings):
    settings.STEWARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    client.force_login(personas.owner)
    response = client.post(reverse("system-create"), {
        "name": "proxied-system", "lifecycle": "active", "environment": "prod", "criticality": "medium",
        "owner": personas.owner.pk, "team": personas.team.pk}, REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="system.create").source_address == "198.51.100.9"
