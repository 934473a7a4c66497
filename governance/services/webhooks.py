"""Outbound webhooks: endpoints, events, deliveries and attempts (Standard Webhooks signatures).

Other capabilities call webhook_event_emit() inside their own transaction: it writes one delivery
row per subscribed endpoint and enqueues the deliveries when (and only if) that transaction
commits. Each attempt is a row. Network errors and 5xx answers are retried with exponential
backoff and jitter; 4xx (and 3xx: redirects are not followed) are recorded as failed, not retried.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance import task_names
from governance.audit import Actor, jsonable
from governance.models import Person, Team
from governance.models.integrations import (
    SUBSCRIBABLE_EVENTS,
    AttemptOutcome,
    DeliveryStatus,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from governance.outbox import enqueue_many
from governance.secret_guard import reject_secret_values
from governance.services import webhook_secrets
from governance.services.common import ensure_security_admin, record, snapshot
from governance.services.webhook_targets import DeliveryFailed, post_to_vetted, sign, webhook_url_check
from governance.transitions import compare_and_set

ENDPOINT_FIELDS = ("name", "url", "description", "event_types", "owner", "team", "status")
RESPONSE_BODY_LIMIT = 2000
USER_AGENT = f"Steward-Webhooks/{getattr(settings, 'STEWARD_VERSION', '0')}"



def _validate_events(event_types: Iterable[str]) -> list[str]:
    event_types = list(dict.fromkeys(event_types or ()))
    unknown = [e for e in event_types if e not in SUBSCRIBABLE_EVENTS]
    if not event_types:
        raise ValidationError({"event_types": "Subscribe to at least one event."})
    if unknown:
        raise ValidationError({"event_types": f"Unknown event(s): {', '.join(map(str, unknown))}."})
    return event_types


def _validate_owner(owner: Person | None) -> None:
    if owner is None or owner.is_departed or not owner.is_active:
        raise ValidationError({"owner": "An endpoint needs an active owner."})


def webhook_endpoint_create(
    *, actor: Actor, name: str, url: str, event_types: Iterable[str], owner: Person, team: Team | None = None,
    description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint and generate its signing secret. Returns the secret: shown once."""
    ensure_security_admin(actor)
    event_types = _validate_events(event_types)
    _validate_owner(owner)
    reject_secret_values({"name": name, "url": url, "description": description})
    webhook_url_check(url)
    secret = webhook_secrets.generate_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint(name=name, url=url, description=description, event_types=event_types,
                                   owner=owner, team=team, created_by=actor.person,
                                   secret_backend=webhook_secrets.backend_for_new_endpoint())
        endpoint.full_clean(exclude=["secret_ciphertext"])
        endpoint.save()
        _store_secret(endpoint, current=secret, previous=None, previous_expires_at=None)
        record(actor=actor, action="webhook_endpoint.create", instance=endpoint,
               summary=f"Registered webhook endpoint {endpoint}", before={},
               after=snapshot(endpoint, ENDPOINT_FIELDS))
    return endpoint, secret


def _store_secret(endpoint, **kwargs) -> None:
    try:
        fields = webhook_secrets.store(endpoint, **kwargs)
    except webhook_secrets.SecretUnavailable as exc:
        raise ValidationError({"secret": str(exc)}) from exc
    endpoint.save(update_fields=[*fields, "updated_at"])


def webhook_endpoint_update(*, actor: Actor, endpoint: WebhookEndpoint, data: Mapping[str, Any]) -> WebhookEndpoint:
    ensure_security_admin(actor)
    allowed = {"name", "url", "description", "event_types", "owner", "team"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError({name: "Unknown or read-only field." for name in unknown})
    data = dict(data)
    if "event_types" in data:
        data["event_types"] = _validate_events(data["event_types"])
    if "owner" in data:
        _validate_owner(data["owner"])
    reject_secret_values(data, [f for f in ("name", "url", "description") if f in data])
    if "url" in data:
        webhook_url_check(data["url"])
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = snapshot(endpoint, ENDPOINT_FIELDS)
        for name, value in data.items():
            setattr(endpoint, name, value)
        endpoint.full_clean()
        endpoint.save()
        after = snapshot(endpoint, ENDPOINT_FIELDS)
        if before != after:
            record(actor=actor, action="webhook_endpoint.update", instance=endpoint,
                   summary=f"Updated webhook endpoint {endpoint}", before=before, after=after)
    return endpoint


def webhook_endpoint_rotate_secret(
    *, actor: Actor, endpoint: WebhookEndpoint, overlap: dt.timedelta | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret; during the overlap both signatures are sent so receivers can switch."""
    ensure_security_admin(actor)
    overlap = dt.timedelta(hours=settings.STEWARD_WEBHOOK_SECRET_OVERLAP_HOURS) if overlap is None else overlap
    if overlap < dt.timedelta(0) or overlap > dt.timedelta(days=7):
        raise ValidationError({"overlap_hours": "The overlap is between 0 and 168 hours."})
    new_secret = webhook_secrets.generate_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        now = timezone.now()
        try:
            current = webhook_secrets.load(endpoint, now=now).current
        except webhook_secrets.SecretUnavailable:
            current = None  # unreadable (key changed): rotate without overlap
        previous = current if overlap and current else None
        endpoint.secret_version += 1
        endpoint.secret_rotated_at = now
        endpoint.save(update_fields=["secret_version", "secret_rotated_at", "updated_at"])
        _store_secret(endpoint, current=new_secret, previous=previous,
                      previous_expires_at=now + overlap if previous else None)
        record(actor=actor, action="webhook_endpoint.rotate_secret", instance=endpoint,
               summary=f"Rotated the signing secret of {endpoint} (version {endpoint.secret_version}); "
                       + (f"both signatures sent until {now + overlap:%Y-%m-%d %H:%M} UTC" if previous
                          else "no overlap"),
               before={}, after={"secret_version": endpoint.secret_version})
    return endpoint, new_secret


def webhook_endpoint_set_status(*, actor: Actor, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    ensure_security_admin(actor)
    status = EndpointStatus.ACTIVE if active else EndpointStatus.DISABLED
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if endpoint.status == status:
            raise ValidationError({"status": f"The endpoint is already {endpoint.get_status_display().lower()}."})
        before = snapshot(endpoint, ("status",))
        endpoint.status = status
        endpoint.save(update_fields=["status", "updated_at"])
        record(actor=actor, action="webhook_endpoint.enable" if active else "webhook_endpoint.disable",
               instance=endpoint, summary=f"{'Enabled' if active else 'Disabled'} webhook endpoint {endpoint}",
               before=before, after=snapshot(endpoint, ("status",)))
    return endpoint


def _envelope(event_type: str, payload: Mapping[str, Any], now: dt.datetime) -> dict:
    return {"type": event_type, "timestamp": jsonable(now), "data": jsonable(dict(payload))}


def _enqueue(delivery_ids: list[int]) -> None:
    """One outbox message per delivery, in the caller's transaction (published after it commits)."""
    enqueue_many(task_names.WEBHOOK_DELIVER, [[pk] for pk in delivery_ids])


def _create_deliveries(endpoints, event_type: str, payloads: Iterable[Mapping[str, Any]]) -> list[WebhookDelivery]:
    """One delivery per endpoint and payload, in one bulk insert; queued for sending after commit."""
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(endpoint=e, message_id=f"msg_{uuid.uuid4().hex}", event_type=event_type,
                        payload=_envelope(event_type, payload, now), next_attempt_at=now)
        for payload in payloads for e in endpoints
    ], batch_size=1000)
    _enqueue([d.pk for d in deliveries])
    return deliveries


def webhook_subscribers(event_type: str) -> list[WebhookEndpoint]:
    """The active endpoints subscribed to event_type (callers with many events look them up once)."""
    if event_type not in SUBSCRIBABLE_EVENTS:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    return [e for e in WebhookEndpoint.objects.filter(status=EndpointStatus.ACTIVE).order_by("pk")
            if event_type in (e.event_types or [])]


def webhook_event_emit(*, event_type: str, payload: dict) -> list[WebhookDelivery]:
    """Queue event_type for every active endpoint subscribed to it; sent after the caller's commit."""
    return webhook_events_emit(event_type=event_type, payloads=[payload])


def webhook_events_emit(*, event_type: str, payloads: Iterable[dict],
                        endpoints: list[WebhookEndpoint] | None = None) -> list[WebhookDelivery]:
    """Many events of one type (a sweep's findings): the subscribers are looked up once."""
    endpoints = webhook_subscribers(event_type) if endpoints is None else endpoints
    if not endpoints:
        return []
    with transaction.atomic():
        return _create_deliveries(endpoints, event_type, payloads)


def webhook_endpoint_ping(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a test event to one endpoint, so its owner can check the receiver and the signature."""
    ensure_security_admin(actor)
    with transaction.atomic():
        (delivery,) = _create_deliveries([endpoint], WebhookEventType.PING,
                                         [{"endpoint": endpoint.name, "requested_by": actor.label}])
    return delivery


def webhook_delivery_retry(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a failed delivery again (same webhook-id, so receivers can de-duplicate)."""
    ensure_security_admin(actor)
    with transaction.atomic():
        now = timezone.now()
        changed = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.PENDING, next_attempt_at=now, completed_at=None, claimed_until=None)
        if not changed:
            raise ValidationError({"status": "Only a failed delivery can be sent again."})
        delivery.refresh_from_db()
        record(actor=actor, action="webhook_delivery.retry", instance=delivery.endpoint,
               summary=f"Re-sent delivery {delivery.message_id} to {delivery.endpoint}", before={},
               after={"message_id": delivery.message_id})
        _enqueue([delivery.pk])
    return delivery


@dataclass(frozen=True)
class AttemptResult:
    outcome: str
    retry_in: float | None = None
    response_status: int | None = None


def retry_delay(attempt_number: int) -> float:
    """Exponential backoff with ±20% jitter: base, 2·base, 4·base, ... capped."""
    base = float(settings.STEWARD_WEBHOOK_RETRY_BASE_SECONDS)
    cap = float(settings.STEWARD_WEBHOOK_RETRY_MAX_SECONDS)
    return min(cap, base * 2 ** (attempt_number - 1)) * random.uniform(0.8, 1.2)


def _claim(delivery_id: int, now: dt.datetime) -> dt.datetime | None:
    """Hold a due delivery for one attempt (compare-and-set); the held-until time is the claim's token."""
    lease = now + dt.timedelta(seconds=settings.STEWARD_WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + dt.timedelta(seconds=1))
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    claimed = compare_and_set(WebhookDelivery, delivery_id, field="status", sources=[DeliveryStatus.PENDING],
                              target=DeliveryStatus.PENDING, where=due & free, claimed_until=lease)
    return lease if claimed else None


def _send(delivery: WebhookDelivery, now: dt.datetime) -> dict:
    """One HTTP attempt. Returns the attempt's fields; never raises for the receiver's faults."""
    endpoint = delivery.endpoint
    result = {"request_headers": {}, "response_status": None, "response_body": "", "error": "", "transient": False}
    if endpoint.status != EndpointStatus.ACTIVE:
        return {**result, "error": "The endpoint is disabled."}
    try:
        target = webhook_url_check(endpoint.url)
    except ValidationError as exc:
        return {**result, "error": " ".join(exc.message_dict.get("url", exc.messages))}
    try:
        keys = webhook_secrets.load(endpoint, now=now)
    except webhook_secrets.SecretUnavailable as exc:
        return {**result, "error": str(exc), "transient": True}
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(message_id=delivery.message_id, timestamp=timestamp, body=body,
                                  secrets_=[keys.current, *([keys.previous] if keys.previous else [])]),
    }
    result["request_headers"] = headers
    timeout = float(settings.STEWARD_WEBHOOK_TIMEOUT_SECONDS)
    try:
        if settings.STEWARD_WEBHOOK_TRUST_ENV and requests.utils.get_environ_proxies(endpoint.url):
            status, text = _post_through_proxy(endpoint.url, body=body, headers=headers, timeout=timeout)
        else:
            status, text = post_to_vetted(target, endpoint.url, body=body, headers=headers, timeout=timeout,
                                          read_limit=RESPONSE_BODY_LIMIT * 4)
    except DeliveryFailed as exc:
        return {**result, "error": str(exc), "transient": True}
    return {**result, "response_status": status, "response_body": text[:RESPONSE_BODY_LIMIT],
            "transient": status >= 500}


def _post_through_proxy(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """STEWARD_WEBHOOK_TRUST_ENV with a proxy configured: the proxy resolves the name and must itself
    refuse internal destinations (docs/integrations.md); the address check above still ran."""
    with requests.Session() as session:
        try:
            response = session.post(url, data=body, headers=headers, timeout=(min(5, timeout), timeout),
                                    allow_redirects=False, stream=True)
            text = response.raw.read(RESPONSE_BODY_LIMIT * 4, decode_content=True).decode("utf-8", "replace")
            response.close()
        except requests.RequestException as exc:
            raise DeliveryFailed(f"{exc.__class__.__name__}: {str(exc)[:500]}") from exc
    return response.status_code, text


def webhook_delivery_attempt(*, delivery_id: int) -> AttemptResult | None:
    """Claim a due delivery (compare-and-set), make one attempt, record it. None if not ours to send."""
    now = timezone.now()
    held_until = _claim(delivery_id, now)
    if held_until is None:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    started = time.monotonic()
    sent = _send(delivery, now)
    duration_ms = int((time.monotonic() - started) * 1000)
    status = sent["response_status"]
    number = delivery.attempt_count + 1
    max_attempts = int(settings.STEWARD_WEBHOOK_MAX_ATTEMPTS)
    if status is not None and 200 <= status < 300:
        outcome, retry_in = AttemptOutcome.SUCCEEDED, None
    elif sent["transient"] and number < max_attempts:
        outcome, retry_in = AttemptOutcome.RETRY, retry_delay(number)
    else:
        outcome, retry_in = AttemptOutcome.FAILED, None
    finished = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, number=number, started_at=now, duration_ms=duration_ms,
            request_headers=sent["request_headers"], response_status=status,
            response_body=sent["response_body"], error=sent["error"], outcome=outcome)
        update = {"attempt_count": number, "last_response_status": status, "claimed_until": None}
        if outcome == AttemptOutcome.RETRY:
            target = DeliveryStatus.PENDING
            update["next_attempt_at"] = finished + dt.timedelta(seconds=retry_in)
        else:
            target = DeliveryStatus.SUCCEEDED if outcome == AttemptOutcome.SUCCEEDED else DeliveryStatus.FAILED
            update.update(completed_at=finished, next_attempt_at=None)
        # Released only while this claim holds it: a claim that ran out and was taken over records nothing.
        if not compare_and_set(WebhookDelivery, delivery.pk, field="status", sources=[DeliveryStatus.PENDING],
                               target=target, where={"claimed_until": held_until}, **update):
            transaction.set_rollback(True)
            return None
    return AttemptResult(outcome=outcome, retry_in=retry_in, response_status=status)


def webhook_deliveries_due(*, now: dt.datetime | None = None, limit: int = 200) -> list[int]:
    """Pending deliveries whose time has come and that nobody holds (lost messages, restarts)."""
    now = now or timezone.now()
    grace = now - dt.timedelta(seconds=60)
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=grace)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


def webhook_secret_overlaps_sweep(*, now: dt.datetime | None = None) -> int:
    """Forget previous signing secrets whose overlap has ended."""
    now = now or timezone.now()
    done = 0
    for endpoint in WebhookEndpoint.objects.filter(previous_secret_expires_at__lte=now)[:200]:
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
            if endpoint.previous_secret_expires_at is None or endpoint.previous_secret_expires_at > now:
                continue
            try:
                current = webhook_secrets.load(endpoint, now=now).current
            except webhook_secrets.SecretUnavailable:
                continue
            _store_secret(endpoint, current=current, previous=None, previous_expires_at=None)
            done += 1
    return done
