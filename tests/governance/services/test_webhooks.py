"""Outbound webhooks: Standard Webhooks signatures checked by a real receiver, retries, URL rules,
secrets at rest (and in OpenBao), emission on commit."""

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from governance.audit import Actor
from governance.models.integrations import (
    AttemptOutcome,
    DeliveryStatus,
    SecretBackend,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from governance.services import webhook_secrets
from governance.services import webhooks as services
from governance.services.webhook_targets import webhook_url_check
from tests.factories_integrations import make_endpoint
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

FILED = "approval_request.filed"


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.STEWARD_WEBHOOK_TIMEOUT_SECONDS = 3


def emit_one(endpoint_url, personas, event=FILED, **endpoint_kwargs):
    endpoint, secret = make_endpoint(owner=personas.owner, url=endpoint_url, event_types=[event], **endpoint_kwargs)
    deliveries = services.webhook_event_emit(event_type=event, payload={"request": 7, "status": "pending"})
    (delivery,) = [d for d in deliveries if d.endpoint_id == endpoint.pk]
    return endpoint, secret, delivery


def attempt(delivery):
    """Make the next attempt now (as the task would once the backoff has passed)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    return services.webhook_delivery_attempt(delivery_id=delivery.pk)


@pytest.mark.embedded
def test_delivery_is_signed_per_standard_webhooks_and_recorded(personas):
    with Receiver() as receiver:
        endpoint, secret, delivery = emit_one(receiver.url, personas)
        result = services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert result.outcome == AttemptOutcome.SUCCEEDED
    (got,) = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)  # raises unless the signature is right
    assert payload["type"] == FILED and payload["data"] == {"request": 7, "status": "pending"}
    assert got.headers["webhook-id"] == delivery.message_id
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_secrets.generate_secret()).verify(got.body, got.headers)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.last_response_status == 200
    (row,) = delivery.attempts.all()
    assert row.response_status == 200 and row.response_body == "answer 200" and row.outcome == "succeeded"
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None  # done: nothing sent twice


@pytest.mark.embedded
def test_5xx_and_network_errors_are_retried_with_backoff_4xx_are_not(personas, settings):
    settings.STEWARD_WEBHOOK_RETRY_BASE_SECONDS = 30
    with Receiver(statuses=[503, 502, 200]) as receiver:
        _, secret, delivery = emit_one(receiver.url, personas)
        first = services.webhook_delivery_attempt(delivery_id=delivery.pk)
        assert first.outcome == AttemptOutcome.RETRY and 24 <= first.retry_in <= 36
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None  # not due yet
        second = attempt(delivery)
        assert second.outcome == AttemptOutcome.RETRY and 48 <= second.retry_in <= 72  # exponential
        assert attempt(delivery).outcome == AttemptOutcome.SUCCEEDED
    assert [a.response_status for a in WebhookAttempt.objects.filter(delivery=delivery)] == [503, 502, 200]
    # every attempt is the same message, re-signed: receivers de-duplicate on webhook-id
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    for r in receiver.received:
        Webhook(secret).verify(r.body, r.headers)

    with Receiver(statuses=[404]) as receiver:
        _, _, rejected = emit_one(receiver.url, personas, name="rejecting")
        result = services.webhook_delivery_attempt(delivery_id=rejected.pk)
        assert result.outcome == AttemptOutcome.FAILED and result.retry_in is None
        assert attempt(rejected) is None
    rejected.refresh_from_db()
    assert rejected.status == DeliveryStatus.FAILED and rejected.attempt_count == 1
    assert rejected.attempts.get().response_body == "answer 404"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_network_errors_retry_until_the_attempts_run_out(personas, settings):
    settings.STEWARD_WEBHOOK_MAX_ATTEMPTS = 3
    _, _, delivery = emit_one(f"http://127.0.0.1:{_closed_port()}/hook", personas)
    outcomes = [attempt(delivery).outcome for _ in range(3)]
    assert outcomes == [AttemptOutcome.RETRY, AttemptOutcome.RETRY, AttemptOutcome.FAILED]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert all("ConnectionError" in a.error for a in delivery.attempts.all())
    # a failed delivery can be sent again by a security admin, under the same webhook-id
    with pytest.raises(PermissionDenied):
        services.webhook_delivery_retry(actor=Actor.for_user(personas.owner), delivery=delivery)
    services.webhook_delivery_retry(actor=Actor.for_user(personas.secadmin), delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


def test_secret_rotation_sends_both_signatures_during_the_overlap(personas):
    with Receiver() as receiver:
        endpoint, old_secret = make_endpoint(owner=personas.owner, url=receiver.url, event_types=[FILED])
        endpoint, new_secret = services.webhook_endpoint_rotate_secret(
            actor=Actor.for_user(personas.secadmin), endpoint=endpoint, overlap=dt.timedelta(hours=1))
        (during,) = services.webhook_event_emit(event_type=FILED, payload={"n": 1})
        services.webhook_delivery_attempt(delivery_id=during.pk)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            previous_secret_expires_at=timezone.now() - dt.timedelta(seconds=1))
        (after,) = services.webhook_event_emit(event_type=FILED, payload={"n": 2})
        services.webhook_delivery_attempt(delivery_id=after.pk)
    first, second = receiver.received
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(first.body, first.headers)
    Webhook(new_secret).verify(first.body, first.headers)
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(second.body, second.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(second.body, second.headers)
    assert services.webhook_secret_overlaps_sweep() == 1
    endpoint.refresh_from_db()
    assert endpoint.previous_secret_ciphertext == "" and endpoint.secret_version == 2


@pytest.mark.embedded
def test_signing_secret_is_encrypted_at_rest_and_never_shown_again(personas, settings):
    endpoint, secret = make_endpoint(owner=personas.owner, url="http://127.0.0.1:9/x")
    row = WebhookEndpoint.objects.filter(pk=endpoint.pk).values().get()
    assert all(secret not in str(v) and secret.removeprefix("whsec_") not in str(v) for v in row.values())
    assert endpoint.secret_backend == SecretBackend.LOCAL
    assert webhook_secrets.load(endpoint, now=timezone.now()).current == secret
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "another-key-" * 5
    with pytest.raises(webhook_secrets.SecretUnavailable):
        webhook_secrets.load(endpoint, now=timezone.now())
    settings.SECRET_KEY_FALLBACKS = [old_key]  # a rotated SECRET_KEY keeps the secrets readable
    assert webhook_secrets.load(endpoint, now=timezone.now()).current == secret


@pytest.mark.embedded
def test_emission_creates_deliveries_for_subscribers_and_sends_after_commit(personas,
                                                                             django_capture_on_commit_callbacks):
    subscribed, _ = make_endpoint(owner=personas.owner, url="http://127.0.0.1:9/a", event_types=[FILED])
    make_endpoint(owner=personas.owner, url="http://127.0.0.1:9/b", event_types=["finding.opened"])
    disabled, _ = make_endpoint(owner=personas.owner, url="http://127.0.0.1:9/c", event_types=[FILED])
    services.webhook_endpoint_set_status(actor=Actor.for_user(personas.secadmin), endpoint=disabled, active=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deliveries = services.webhook_event_emit(event_type=FILED, payload={"at": timezone.now()})
    assert [d.endpoint_id for d in deliveries] == [subscribed.pk]
    assert len(callbacks) == 1  # the delivery task is enqueued only once the caller's transaction commits
    assert isinstance(deliveries[0].payload["data"]["at"], str)  # payloads are reduced to JSON
    with pytest.raises(ValueError):
        services.webhook_event_emit(event_type="no.such.event", payload={})


def test_a_claimed_delivery_is_not_sent_twice(personas, settings):
    settings.STEWARD_WEBHOOK_TIMEOUT_SECONDS = 60  # the claim's lease: 2 x 60 + 30 s
    _, _, delivery = emit_one("http://127.0.0.1:9/x", personas)
    now = timezone.now()
    assert services._claim(delivery.pk, now)
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    assert services.webhook_deliveries_due(now=now + dt.timedelta(seconds=90)) == []  # held
    # a worker that died holding it loses the lease: the sweep sends it again
    assert services.webhook_deliveries_due(now=now + dt.timedelta(seconds=200)) == [delivery.pk]


def test_the_task_delivers(personas):
    from governance.tasks.integrations import deliver_webhook

    with Receiver() as receiver:
        _, _, delivery = emit_one(receiver.url, personas)
        assert deliver_webhook.apply(args=[delivery.pk]).get() == AttemptOutcome.SUCCEEDED
    assert len(receiver.received) == 1


@pytest.mark.parametrize("url", [
    "http://10.0.0.5/hook", "http://192.168.1.1/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook", "http://localhost:8000/hook", "http://127.0.0.2/hook", "http://[::ffff:10.0.0.1]/x",
    "http://0.0.0.0/hook", "ftp://example.com/x", "http://user:pw@example.com/x", "http://no-such-host.invalid/x",
])
def test_private_loopback_link_local_and_odd_urls_are_refused(url, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(ValidationError) as refused:
        webhook_url_check(url)
    assert "url" in refused.value.message_dict


def test_allow_list_and_https_in_production(settings):
    webhook_url_check("http://127.0.0.1:8080/hook")  # allow-listed by the fixture
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["10.1.0.0/16", "hooks.internal"]
    webhook_url_check("http://10.1.2.3/hook")
    with pytest.raises(ValidationError):
        webhook_url_check("http://10.2.0.1/hook")
    webhook_url_check("https://93.184.215.14/hook")  # a public address (literal: no DNS needed)
    settings.PRODUCTION = True
    with pytest.raises(ValidationError) as http_refused:
        webhook_url_check("http://93.184.215.14/hook")
    assert "https" in http_refused.value.message_dict["url"][0]


def test_endpoint_management_is_for_security_admins(personas):
    admin, owner = Actor.for_user(personas.secadmin), Actor.for_user(personas.owner)
    with pytest.raises(PermissionDenied):
        services.webhook_endpoint_create(actor=owner, name="mine", url="http://127.0.0.1:9/x", event_types=[FILED],
                                         owner=personas.owner)
    with pytest.raises(ValidationError) as bad:
        services.webhook_endpoint_create(actor=admin, name="x", url="http://10.0.0.1/x", event_types=["nope"],
                                         owner=personas.owner)
    assert "event_types" in bad.value.message_dict
    endpoint, _ = services.webhook_endpoint_create(actor=admin, name="ok", url="http://127.0.0.1:9/x",
                                                   event_types=[FILED], owner=personas.owner)
    with pytest.raises(ValidationError):
        services.webhook_endpoint_update(actor=admin, endpoint=endpoint, data={"url": "http://10.0.0.1/"})
    with pytest.raises(PermissionDenied):
        services.webhook_endpoint_rotate_secret(actor=owner, endpoint=endpoint)


@pytest.fixture
def openbao(settings):
    """A real OpenBao dev server on a free loopback port, for the secret-storage backend."""
    binary = shutil.which("bao") or shutil.which("bao", path=os.path.dirname(os.sys.executable))
    if binary is None:
        pytest.skip("the OpenBao binary (bao) is not installed")
    port = _closed_port()
    process = subprocess.Popen([binary, "server", "-dev", "-dev-root-token-id=steward-test-root",
                                f"-dev-listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import hvac

        client = hvac.Client(url=f"http://127.0.0.1:{port}", token="steward-test-root")
        for _ in range(100):
            try:
                if client.sys.is_initialized() and not client.sys.is_sealed():
                    break
            except Exception:
                pass
            time.sleep(0.1)
        settings.STEWARD_OPENBAO_ADDR = f"http://127.0.0.1:{port}"
        os.environ["STEWARD_OPENBAO_TOKEN"] = "steward-test-root"
        yield client
    finally:
        os.environ.pop("STEWARD_OPENBAO_TOKEN", None)
        process.terminate()
        process.wait(timeout=10)


def test_signing_secrets_live_in_openbao_when_configured(personas, openbao):
    with Receiver() as receiver:
        endpoint, secret = make_endpoint(owner=personas.owner, url=receiver.url, event_types=[FILED])
        assert endpoint.secret_backend == SecretBackend.OPENBAO
        row = WebhookEndpoint.objects.filter(pk=endpoint.pk).values().get()
        assert row["secret_ciphertext"] == "" and secret not in json.dumps(row, default=str)
        stored = openbao.secrets.kv.v2.read_secret_version(path=f"steward/webhook-endpoints/{endpoint.pk}",
                                                           mount_point="secret", raise_on_deleted_version=True)
        assert stored["data"]["data"]["current"] == secret
        _, new_secret = services.webhook_endpoint_rotate_secret(actor=Actor.for_user(personas.secadmin),
                                                                endpoint=endpoint)
        (delivery,) = services.webhook_event_emit(event_type=FILED, payload={"n": 1})
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk).outcome == AttemptOutcome.SUCCEEDED
    (got,) = receiver.received
    Webhook(secret).verify(got.body, got.headers)
    Webhook(new_secret).verify(got.body, got.headers)
