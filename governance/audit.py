"""The one audited path: who acts (Actor), appending an event, and verifying the chain.

Every service calls audit_append() inside its own transaction, so the change and its event
commit or roll back together. Appends are serialised (a PostgreSQL advisory lock; SQLite's
IMMEDIATE transactions) so concurrent writers never fork the chain.

The links are keyed (HMAC-SHA256 with the chain key from governance.audit_keys, which never enters
the database, not even as a statement parameter), so whoever can write the table still cannot
recompute a rewritten chain. governance.audit_anchor signs checkpoints of the head outside the
database, which is what catches a deleted tail or an emptied table.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.utils import timezone

from governance.audit_keys import chain_key
from governance.models import ActorKind, AuditEvent

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 0x57E3A7D  # arbitrary, constant: "Steward audit chain"
REDACTED = "[redacted]"
REDACTED_FIELDS = frozenset({"password", "token", "token_hash", "secret", "secret_value", "signing_secret"})

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("steward_request_id", default="")
_source_address: contextvars.ContextVar[str | None] = contextvars.ContextVar("steward_source", default=None)
# What the client called its request (X-Request-ID): kept apart, never the server's request id.
_client_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("steward_client_request_id", default="")
CLIENT_REQUEST_ID_MAX = 128


@dataclass(frozen=True)
class Actor:
    """Who is acting: a person, an integration (for a named person), or a system task."""

    kind: str
    label: str
    id: int | None = None
    user: Any = None
    on_behalf_of: Any = None
    task_id: str = ""

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(kind=ActorKind.PERSON, label=user.get_username(), id=user.pk, user=user)

    @classmethod
    def system(cls, *, task_id: str = "", label: str = "steward") -> Actor:
        return cls(kind=ActorKind.SYSTEM, label=label, task_id=task_id or "")

    @classmethod
    def for_integration(cls, integration, *, on_behalf_of) -> Actor:
        return cls(
            kind=ActorKind.INTEGRATION,
            label=f"integration:{integration.name}",
            id=integration.pk,
            user=on_behalf_of,
            on_behalf_of=on_behalf_of,
        )

    @property
    def person(self):
        """The human accountable for this action (the person behind an integration), if any."""
        return self.user


def set_request_context(*, request_id: str, source_address: str | None, client_request_id: str = ""):
    """request_id is the server's own (new_request_id()); client_request_id what the client sent, cleaned."""
    return (_request_id.set(request_id), _source_address.set(source_address),
            _client_request_id.set(clean_client_request_id(client_request_id)))


def reset_request_context(tokens) -> None:
    _request_id.reset(tokens[0])
    _source_address.reset(tokens[1])
    _client_request_id.reset(tokens[2])


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_client_request_id(value: str | None) -> str:
    """A client's X-Request-ID as evidence only: printable ASCII, at most CLIENT_REQUEST_ID_MAX characters."""
    value = (value or "").strip()
    if not value.isascii() or not value.isprintable():
        return ""
    return value[:CLIENT_REQUEST_ID_MAX]


def jsonable(value: Any) -> Any:
    """Reduce a field value to plain JSON so that the canonical serialisation is stable."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    return str(value)


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": x, "after": y}} for the fields that differ; secret-looking fields redacted."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = jsonable(before.get(name)), jsonable(after.get(name))
        if old != new:
            if name in REDACTED_FIELDS:
                old, new = REDACTED, REDACTED
            changes[name] = {"before": old, "after": new}
    return changes


def canonical_event_bytes(event: AuditEvent) -> bytes:
    """The bytes of an event's content: every field but its place in the chain (sequence, prev_hash, hash)."""
    payload = {
        "occurred_at": jsonable(event.occurred_at),
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "on_behalf_of_id": event.on_behalf_of_id,
        "task_id": event.task_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "summary": event.summary,
        "changes": jsonable(event.changes),
        "request_id": event.request_id,
        "source_address": event.source_address,
    }
    if event.client_request_id:  # only when given, so events written before the field verify unchanged
        payload["client_request_id"] = event.client_request_id
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_digest(event: AuditEvent) -> str:
    return hashlib.sha256(canonical_event_bytes(event)).hexdigest()


def link_hash(sequence: int, prev_hash: str, digest: str, *, key: bytes | None = None) -> str:
    """An event's hash: its place in the chain and its content, keyed with the chain key."""
    message = f"{sequence}|{prev_hash}|{digest}".encode()
    return hmac.new(key if key is not None else chain_key(), message, hashlib.sha256).hexdigest()


def compute_event_hash(event: AuditEvent, *, key: bytes | None = None) -> str:
    return link_hash(event.sequence, event.prev_hash, content_digest(event), key=key)


# No parameters, so psycopg sends both statements in one round trip (the simple query protocol);
# the head is read by the second statement, whose snapshot is taken after the lock is held.
_PG_LOCK_AND_HEAD = (
    f"SELECT pg_advisory_xact_lock({AUDIT_LOCK_KEY:d}); "
    "SELECT sequence, hash FROM governance_auditevent ORDER BY sequence DESC LIMIT 1"
)


def lock_and_read_head() -> tuple[int, str]:
    """Take the chain lock and read the head under it: (sequence, hash), (0, genesis) when empty."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PG_LOCK_AND_HEAD)
            cursor.nextset()
            row = cursor.fetchone()
    else:
        # SQLite: the transaction already holds the database's write lock (transaction_mode IMMEDIATE).
        row = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def object_type_of(obj: models.Model | str) -> str:
    return obj if isinstance(obj, str) else obj._meta.label_lower


def audit_append(
    *,
    actor: Actor,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    summary: str,
    changes: dict | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the service's transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_append must run inside the transaction of the change it records")
    if target is not None:
        object_type = object_type or object_type_of(target)
        object_id = object_id or target.pk
    event = AuditEvent(
        occurred_at=timezone.now(),
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label[:200],
        on_behalf_of_id=getattr(actor.on_behalf_of, "pk", None),
        task_id=actor.task_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=str(target)[:300] if target is not None else "",
        summary=summary[:500],
        changes=jsonable(changes or {}),
        request_id=_request_id.get(),
        client_request_id=_client_request_id.get(),
        source_address=_source_address.get(),
    )
    digest = content_digest(event)  # computed before the chain lock: the critical section stays short
    key = chain_key()
    head_sequence, event.prev_hash = lock_and_read_head()
    event.sequence = head_sequence + 1
    event.hash = link_hash(event.sequence, event.prev_hash, digest, key=key)
    if connection.vendor == "postgresql":
        _insert_linked_postgresql(event)
    else:
        event.save(force_insert=True)
    return event


_PG_COLUMNS = (
    "occurred_at", "actor_kind", "actor_id", "actor_label", "on_behalf_of_id", "task_id", "action", "object_type",
    "object_id", "object_repr", "summary", "changes", "request_id", "source_address", "client_request_id",
)
_PG_CASTS = {"changes": "%s::jsonb", "source_address": "%s::inet"}
_PG_INSERT = (
    f"INSERT INTO governance_auditevent ({', '.join(_PG_COLUMNS)}, sequence, prev_hash, hash) "
    f"VALUES ({', '.join(_PG_CASTS.get(name, '%s') for name in _PG_COLUMNS)}, %s, %s, %s) RETURNING id"
)


def _insert_linked_postgresql(event: AuditEvent) -> None:
    """Insert an event already linked under the chain lock: one statement, one round trip."""
    values = [getattr(event, name) for name in _PG_COLUMNS]
    values[_PG_COLUMNS.index("changes")] = json.dumps(event.changes, sort_keys=True)
    with connection.cursor() as cursor:
        cursor.execute(_PG_INSERT, [*values, event.sequence, event.prev_hash, event.hash])
        (event.pk,) = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias


@dataclass(frozen=True)
class PendingEvent:
    """One event of a batch for audit_append_many (a sweep's finding changes, a rotation batch)."""

    action: str
    object_type: str
    object_id: str | int
    summary: str
    changes: dict | None = None
    object_repr: str = ""


def audit_append_many(*, actor: Actor, events: list[PendingEvent]) -> int:
    """Append a batch of events with one lock, one head read and one bulk insert.

    The chain is the same as with audit_append one by one: each event links to the one before it.
    Must run inside the transaction of the changes it records.
    """
    if not events:
        return 0
    if not connection.in_atomic_block:
        raise RuntimeError("audit_append_many must run inside the transaction of the changes it records")
    key = chain_key()
    sequence, prev_hash = lock_and_read_head()
    now, request_id, source = timezone.now(), _request_id.get(), _source_address.get()
    client_request_id = _client_request_id.get()
    rows = []
    for pending in events:
        sequence += 1
        event = AuditEvent(
            sequence=sequence, occurred_at=now, actor_kind=actor.kind, actor_id=actor.id,
            actor_label=actor.label[:200], on_behalf_of_id=getattr(actor.on_behalf_of, "pk", None),
            task_id=actor.task_id, action=pending.action, object_type=pending.object_type,
            object_id=str(pending.object_id), object_repr=pending.object_repr[:300], summary=pending.summary[:500],
            changes=jsonable(pending.changes or {}), request_id=request_id, source_address=source,
            client_request_id=client_request_id, prev_hash=prev_hash,
        )
        event.hash = prev_hash = link_hash(sequence, event.prev_hash, content_digest(event), key=key)
        rows.append(event)
    AuditEvent.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


@dataclass(frozen=True)
class ChainVerification:
    intact: bool
    events: int
    head_hash: str
    first_bad_sequence: int | None = None
    reason: str = ""


def iter_events_in_order(batch_size: int = 5000) -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("sequence").iterator(chunk_size=batch_size)


def verify_chain(events: Iterable[AuditEvent] | None = None, *, key: bytes | None = None) -> ChainVerification:
    """Recompute every keyed hash and link; name the first event that is edited, missing or out of order."""
    key = key if key is not None else chain_key()
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    count = 0
    for event in events if events is not None else iter_events_in_order():
        if event.sequence != expected_sequence:
            return ChainVerification(
                False, count, expected_prev, event.sequence,
                f"event #{event.sequence} follows #{expected_sequence - 1}: an event is missing or re-ordered",
            )
        if event.prev_hash != expected_prev:
            return ChainVerification(
                False, count, expected_prev, event.sequence,
                f"event #{event.sequence} does not link to the hash of the event before it",
            )
        if compute_event_hash(event, key=key) != event.hash:
            return ChainVerification(
                False, count, expected_prev, event.sequence,
                f"event #{event.sequence} was edited: its content no longer matches its keyed hash "
                "(or the chain was rewritten with hashes computed without the chain key)",
            )
        expected_prev = event.hash
        expected_sequence += 1
        count += 1
    return ChainVerification(True, count, expected_prev)
