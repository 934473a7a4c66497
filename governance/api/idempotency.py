"""Idempotency-Key on every POST that creates something.

The same key with the same body (per principal: integration or person) returns the first
response again, marked with the header Idempotent-Replayed: true; the same key with another body
is a 409. A token or signing secret in the first response is not stored (it is shown once):
a replay carries null in its place.

A key is claimed by inserting its row (a unique constraint) with a short request lease
(STEWARD_IDEMPOTENCY_LEASE_SECONDS, default 120, never renewed): a second request with the key
gets a 409 while the lease runs, and may run the work once the lease has lapsed (its worker died).
The work and the recorded response commit in one transaction, so a result that committed is
always replayed, even when the client saw a 5xx from something that failed after the commit; work
that rolled back (an exception, a 5xx answer) releases the key. Completed records are kept for
STEWARD_IDEMPOTENCY_TTL_HOURS (default 24) and then swept.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from governance.api.authentication import integration_of
from governance.api.errors import Conflict
from governance.models.integrations import IdempotencyRecord
from governance.services.integrations import idempotency_lease, idempotency_ttl

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
SHOWN_ONCE_FIELDS = frozenset({"token", "secret"})


def ttl() -> dt.timedelta:
    return idempotency_ttl()


def lease() -> dt.timedelta:
    return idempotency_lease()


def _principal(request) -> tuple[str, dict]:
    auth = integration_of(request)
    if auth is not None:
        return f"integration:{auth.integration.pk}", {"integration": auth.integration}
    return f"person:{request.user.pk}", {"user": request.user}


def _request_hash(request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, cls=JSONEncoder, default=str)
    except (TypeError, ValueError):
        body = repr(request.data)
    material = f"{request.method}\n{request.path}\n{body}"
    return hashlib.sha256(material.encode()).hexdigest()


def _jsonable(data):
    return json.loads(json.dumps(data, cls=JSONEncoder))


def _without_secrets(data):
    """A token or signing secret is shown once and never stored, not even here: a replay carries null."""
    if isinstance(data, dict):
        return {k: (None if k in SHOWN_ONCE_FIELDS else _without_secrets(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [_without_secrets(v) for v in data]
    return data


class _RolledBack(Exception):
    """The handler answered 5xx: its work is rolled back and the key released."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


def _replay_or_refuse(*, principal: str, key: str, request_hash: str, token: str, now) -> Response | None:
    """The key is taken: replay its result, refuse, or (its lease lapsed) take it over. None: run the work."""
    record = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
    if record is None:
        raise Conflict("A request with this Idempotency-Key was just released; send it again.")
    if record.request_hash != request_hash:
        raise Conflict("This Idempotency-Key was used with another request body or path.")
    if record.response_status is not None:
        response = Response(record.response_body, status=record.response_status)
        response["Idempotent-Replayed"] = "true"
        return response
    taken_over = IdempotencyRecord.objects.filter(
        pk=record.pk, response_status__isnull=True, lease_expires_at__lte=now,
    ).update(lease_token=token, lease_expires_at=now + lease())
    if not taken_over:
        raise Conflict("A request with this Idempotency-Key is still in progress.", code="in_progress")
    return None


def _release(principal: str, key: str, token: str) -> None:
    IdempotencyRecord.objects.filter(principal=principal, key=key, lease_token=token,
                                     response_status__isnull=True).delete()


def run_idempotent(request, handler) -> Response:
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return handler()
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError({HEADER: [f"At most {MAX_KEY_LENGTH} characters."]})
    principal, owner = _principal(request)
    request_hash = _request_hash(request)
    now, token = timezone.now(), secrets.token_hex(16)
    IdempotencyRecord.objects.filter(principal=principal, key=key, created_at__lt=now - ttl()).delete()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(key=key, principal=principal, method=request.method,
                                             path=request.path[:500], request_hash=request_hash,
                                             lease_token=token, lease_expires_at=now + lease(), **owner)
    except IntegrityError:
        replayed = _replay_or_refuse(principal=principal, key=key, request_hash=request_hash, token=token, now=now)
        if replayed is not None:
            return replayed
    try:
        with transaction.atomic():
            response = handler()
            if response.status_code >= 500:
                raise _RolledBack(response)
            recorded = IdempotencyRecord.objects.filter(
                principal=principal, key=key, lease_token=token, response_status__isnull=True,
            ).update(response_status=response.status_code, response_body=_without_secrets(_jsonable(response.data)),
                     lease_expires_at=None)
            if not recorded:  # the lease lapsed and another request took the key over: this work is undone
                raise Conflict("This request outlived its Idempotency-Key lease; another request with the key "
                               "took over. Send it again to see its result.", code="lease_lapsed")
    except _RolledBack as rolled_back:
        _release(principal, key, token)
        return rolled_back.response
    except BaseException:
        # Committed (the exception came after the commit, e.g. from an on-commit hook): keep the result
        # for the retry. Rolled back: release the key.
        _release(principal, key, token)
        raise
    return response
def idempotent(method):
    """Decorate a viewset action (a POST that creates something) to honour Idempotency-Key."""

    @functools.wraps(method)
    def wrapper(self, request, *args, **kwargs):
        return run_idempotent(request, lambda: method(self, request, *args, **kwargs))

    wrapper.idempotent = True
    return wrapper
