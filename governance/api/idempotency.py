"""Idempotency-Key on every POST that creates something.

The same key with the same body (per principal: integration or person) returns the first
response again, marked with the header Idempotent-Replayed: true; the same key with another body
is a 409. A token or signing secret in the first response is not stored (it is shown once):
a replay carries null in its place. A key is claimed by inserting its row before the work starts
(a unique constraint), so two concurrent requests with one key never both run: the second gets
a 409 while the first is in progress. A request that fails with an exception releases its key, so it can be retried.
Records are kept for STEWARD_IDEMPOTENCY_TTL_HOURS (default 24) and then swept.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from governance.api.authentication import integration_of
from governance.api.errors import Conflict
from governance.models.integrations import IdempotencyRecord
from governance.services.integrations import idempotency_ttl

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
SHOWN_ONCE_FIELDS = frozenset({"token", "secret"})


def ttl() -> dt.timedelta:
    return idempotency_ttl()


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


def run_idempotent(request, handler) -> Response:
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return handler()
    if len(key) > MAX_KEY_LENGTH:
        from rest_framework.exceptions import ValidationError

        raise ValidationError({HEADER: [f"At most {MAX_KEY_LENGTH} characters."]})
    principal, owner = _principal(request)
    request_hash = _request_hash(request)
    IdempotencyRecord.objects.filter(principal=principal, key=key, created_at__lt=timezone.now() - ttl()).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(key=key, principal=principal, method=request.method,
                                                      path=request.path[:500], request_hash=request_hash, **owner)
    except IntegrityError:
        record = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
        if record is None:
            raise Conflict("A request with this Idempotency-Key was just released; send it again.") from None
        if record.request_hash != request_hash:
            raise Conflict("This Idempotency-Key was used with another request body or path.") from None
        if record.response_status is None:
            raise Conflict("A request with this Idempotency-Key is still in progress.") from None
        response = Response(record.response_body, status=record.response_status)
        response["Idempotent-Replayed"] = "true"
        return response
    try:
        response = handler()
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    if response.status_code >= 500:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return response
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        response_status=response.status_code, response_body=_without_secrets(_jsonable(response.data)))
    return response


def idempotent(method):
    """Decorate a viewset action (a POST that creates something) to honour Idempotency-Key."""

    @functools.wraps(method)
    def wrapper(self, request, *args, **kwargs):
        return run_idempotent(request, lambda: method(self, request, *args, **kwargs))

    wrapper.idempotent = True
    return wrapper
