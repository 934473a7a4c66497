"""Webhook targets (issue 15): IPv6 forms that embed a forbidden IPv4 address are refused, and a delivery
connects to the address vetted by the check, so a name re-pointed after the check (DNS rebinding)
cannot send Steward somewhere else."""

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from governance.models.integrations import AttemptOutcome, WebhookDelivery
from governance.services import webhooks as services
from governance.services.webhook_targets import embedded_ipv4, is_public, webhook_url_check
from tests.factories_integrations import make_endpoint
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

FORBIDDEN_IN_DISGUISE = [
    "2002:7f00:1::1",              # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",            # 6to4 of 169.254.169.254 (cloud metadata)
    "2002:0a00:0001::1",           # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1",             # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",          # NAT64 of the metadata address
    "64:ff9b::c0a8:101",           # NAT64 of 192.168.1.1
    "64:ff9b:1::a9fe:a9fe",        # local-use NAT64: never public
    "::ffff:127.0.0.1",            # IPv4-mapped loopback
    "::ffff:169.254.169.254",      # IPv4-mapped metadata
    "::127.0.0.1",                 # IPv4-compatible loopback
    "::a9fe:a9fe",                 # IPv4-compatible metadata
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]


@pytest.mark.embedded
@pytest.mark.parametrize("address", FORBIDDEN_IN_DISGUISE)
def test_ipv6_forms_of_forbidden_addresses_are_refused(address, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = []
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(ValidationError) as refused:
        webhook_url_check(f"https://[{address}]/hook")
    assert "IPv6 form" in refused.value.message_dict["url"][0]


@pytest.mark.embedded
@pytest.mark.parametrize(("address", "inner"), [
    ("2002:5db8:d70e::1", "93.184.215.14"), ("64:ff9b::5db8:d70e", "93.184.215.14"),
    ("::ffff:93.184.215.14", "93.184.215.14"),
])
def test_wrappers_of_public_addresses_are_judged_by_the_host_inside(address, inner, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = []
    assert str(embedded_ipv4(ipaddress.ip_address(address))) == inner
    assert webhook_url_check(f"https://[{address}]/hook").addresses == (ipaddress.ip_address(address),)


def test_a_name_that_resolves_to_a_disguised_forbidden_address_is_refused(monkeypatch, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = []
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2002:a9fe:a9fe::1", port, 0, 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(ValidationError):
        webhook_url_check("https://hooks.example.com/hook")


def test_the_delivery_connects_to_the_vetted_address_not_to_the_name_again(personas, monkeypatch, settings):
    """DNS rebinding: at the delivery the name answers 127.0.0.1 (allow-listed as an address) to the check,
    then 127.0.0.2 (where nothing listens) to any later lookup. A delivery that resolved the name again
    after its check would connect there and fail."""
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1/32"]
    settings.STEWARD_WEBHOOK_TIMEOUT_SECONDS = 3
    real = socket.getaddrinfo
    answers, lookups = ["127.0.0.1"], []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            lookups.append(host)
            address = answers.pop(0) if answers else "127.0.0.2"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        url = f"http://rebind.example:{port}/hook?x=1"
        endpoint, _ = make_endpoint(owner=personas.owner, url=url, event_types=["approval_request.filed"])
        (delivery,) = [d for d in services.webhook_event_emit(event_type="approval_request.filed", payload={"a": 1})
                       if d.endpoint_id == endpoint.pk]
        answers[:], lookups[:] = ["127.0.0.1"], []  # the record is saved; now the name rebinds after one answer
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        result = services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert result.outcome == AttemptOutcome.SUCCEEDED, delivery.attempts.get().error
    assert lookups == ["rebind.example"]  # resolved once, by the check
    (received,) = receiver.received
    assert received.path == "/hook?x=1" and received.headers["host"] == f"rebind.example:{port}"


def test_a_vetted_address_that_does_not_answer_is_a_connection_error(personas, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint, _ = make_endpoint(owner=personas.owner, url=f"http://127.0.0.1:{port}/h",
                                event_types=["approval_request.filed"])
    (delivery,) = [d for d in services.webhook_event_emit(event_type="approval_request.filed", payload={"a": 1})
                   if d.endpoint_id == endpoint.pk]
    result = services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert result.outcome == AttemptOutcome.RETRY
    assert "ConnectionError: 127.0.0.1" in delivery.attempts.get().error
