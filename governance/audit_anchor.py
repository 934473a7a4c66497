"""Signed checkpoints of the audit chain, written outside the database, and verification against them.

The keyed chain (governance.audit) shows that no event was edited or re-linked without the chain
key; it cannot show that the newest events, or all of them, were deleted. A checkpoint can: every
few minutes (the beat task) and after every report, the head (sequence, hash, event count, time) is
signed with Ed25519 and written to sinks the database cannot reach: a JSON-lines file (the embedded
default), OpenBao KV (versioned) or syslog. audit_trail_verify() compares the chain with every
checkpoint it can read; an auditor verifies one offline with the exported public key
(`manage.py verify_audit_chain --checkpoint FILE --public-key FILE`).

Write a checkpoint only after the transaction that appended the events committed (the beat task
runs outside any; report generation uses transaction.on_commit), or it may record a head that a
rollback then removes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from governance.audit import GENESIS_HASH, ChainVerification, content_digest, iter_events_in_order, verify_chain
from governance.audit_keys import audit_openbao, chain_key, chain_key_id, public_key, public_key_id, signing_key
from governance.connectors.base import ConnectorError, ReferenceBroken
from governance.models import AuditEvent

FORMAT = "steward-audit-checkpoint/1"
SYSLOG_MARKER = "steward-audit-checkpoint "
SYSLOG_PRIORITY = 8 * 10 + 5  # facility authpriv, severity notice
STALE_FACTOR = 3  # a newest checkpoint older than three intervals means the beat task is not running


class CheckpointError(Exception):
    """A checkpoint could not be written to (or read from) a sink; the message names the sink."""


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, signed: what the database must still show later."""

    sequence: int
    head_hash: str
    event_count: int
    created_at: str
    reason: str
    key_id: str
    signer: str
    signature: str = ""

    def signed_payload(self) -> bytes:
        body = {"format": FORMAT, **{k: v for k, v in asdict(self).items() if k != "signature"}}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def as_dict(self) -> dict:
        return {"format": FORMAT, **asdict(self)}

    def to_line(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: object) -> Checkpoint:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} record")
        types = {"sequence": int, "event_count": int, "head_hash": str, "created_at": str, "reason": str,
                 "key_id": str, "signer": str, "signature": str}
        for name, kind in types.items():
            if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
                raise ValueError(f"field {name!r} is missing or not a {kind.__name__}")
        return cls(**{name: data[name] for name in types})

    def describe(self) -> str:
        return f"the checkpoint of {self.created_at} (#{self.sequence}, {self.reason})"


def checkpoint_sign(checkpoint: Checkpoint) -> Checkpoint:
    signature = base64.b64encode(signing_key().sign(checkpoint.signed_payload())).decode()
    return Checkpoint(**{**asdict(checkpoint), "signature": signature})


def checkpoint_signature_problem(checkpoint: Checkpoint, key: Ed25519PublicKey) -> str:
    """Why a checkpoint's signature does not verify with the public key, or "" when it does."""
    expected = public_key_id(key)
    if checkpoint.signer != expected:
        return (f"{checkpoint.describe()} has a bad signature: it names signer {checkpoint.signer}, "
                f"the public key is {expected}")
    try:
        key.verify(base64.b64decode(checkpoint.signature, validate=True), checkpoint.signed_payload())
    except (InvalidSignature, binascii.Error, ValueError):
        return f"{checkpoint.describe()} has a bad signature: it was altered after it was signed"
    return ""


def chain_head() -> tuple[int, str, int]:
    """(head sequence, head hash, event count), read in one statement so they belong to one snapshot."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT head.sequence, head.hash, (SELECT count(*) FROM {table}) FROM "
            f"(SELECT sequence, hash FROM {table} ORDER BY sequence DESC LIMIT 1) AS head")
        row = cursor.fetchone()
    return (row[0], row[1], row[2]) if row else (0, GENESIS_HASH, 0)


# Sinks


def parse_checkpoint_line(line: str) -> dict:
    """A JSON line as the file sink writes it, or a syslog line carrying the marker."""
    line = line.strip()
    if not line.startswith("{"):
        _, marker, rest = line.partition(SYSLOG_MARKER)
        if not marker:
            raise ValueError("no checkpoint on this line")
        line = rest
    return json.loads(line)


class FileSink:
    """JSON lines appended to a file (under var/ by default); readable, so verification uses it.

    A line that is not a checkpoint means the file was altered, except in a syslog export
    (skip_foreign), whose other messages are skipped.
    """

    name = "file"
    readable = True

    def __init__(self, path: str | Path, *, skip_foreign: bool = False):
        self.path = Path(path)
        self.skip_foreign = skip_foreign

    def write(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(checkpoint.to_line() + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> Iterator[tuple[str, dict | Exception]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip() or (self.skip_foreign and not line.lstrip().startswith("{")
                                        and SYSLOG_MARKER not in line):
                    continue
                try:
                    yield f"{self.path}:{number}", parse_checkpoint_line(line)
                except ValueError as error:
                    yield f"{self.path}:{number}", error


class OpenBaoSink:
    """One KV v2 secret whose versions are the checkpoints (as many as the mount's max_versions keeps)."""

    name = "openbao"
    readable = True

    def __init__(self, path: str):
        self.kv = audit_openbao()
        self.path = self.kv.path_of(path)

    def write(self, checkpoint: Checkpoint) -> None:
        try:
            self.kv.write_value(self.path, checkpoint.as_dict(), cas=None)
        except ConnectorError as error:
            raise CheckpointError(f"openbao: {error}") from None

    def read(self) -> Iterator[tuple[str, dict | Exception]]:
        label = self.kv.label(self.path)
        try:
            versions = self.kv.metadata(self.path).get("versions") or {}
        except ConnectorError as error:
            if isinstance(error, ReferenceBroken):  # nothing written yet
                return
            raise CheckpointError(f"openbao: {error}") from None
        for version in sorted(versions, key=int):
            try:
                data = self.kv.read_value(self.path, int(version))
            except ConnectorError as error:
                raise CheckpointError(f"openbao: {error}") from None
            if data is not None:  # a deleted or destroyed version has nothing left to compare
                yield f"{label} version {version}", data


class SyslogSink:
    """One RFC 3164 line per checkpoint to a syslog socket (a path) or collector (host:port, UDP).

    Write-only here: verify with the collector's export (`verify_audit_chain --checkpoints FILE`).
    """

    name = "syslog"
    readable = False

    def __init__(self, address: str):
        self.address = address

    def write(self, checkpoint: Checkpoint) -> None:
        message = f"<{SYSLOG_PRIORITY}>steward: {SYSLOG_MARKER}{checkpoint.to_line()}".encode()
        try:
            if self.address.startswith("/"):
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.connect(self.address)
                    sock.send(message)
            else:
                host, _, port = self.address.rpartition(":")
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.sendto(message, (host or "127.0.0.1", int(port or 514)))
        except (OSError, ValueError) as error:
            raise CheckpointError(f"syslog {self.address}: {error}") from None


def configured_sinks() -> list[FileSink | OpenBaoSink | SyslogSink]:
    sinks = []
    for name in settings.STEWARD_AUDIT_CHECKPOINT_SINKS:
        if name == "file":
            sinks.append(FileSink(settings.STEWARD_AUDIT_CHECKPOINT_FILE))
        elif name == "openbao":
            sinks.append(OpenBaoSink(settings.STEWARD_AUDIT_CHECKPOINT_OPENBAO_PATH))
        elif name == "syslog":
            sinks.append(SyslogSink(settings.STEWARD_AUDIT_CHECKPOINT_SYSLOG_ADDRESS))
        else:
            raise ImproperlyConfigured(f"STEWARD_AUDIT_CHECKPOINT_SINKS: unknown sink {name!r} "
                                       "(file, openbao or syslog)")
    if not sinks:
        raise ImproperlyConfigured("STEWARD_AUDIT_CHECKPOINT_SINKS names no sink.")
    return sinks


def checkpoint_write(*, reason: str) -> Checkpoint:
    """Sign the committed head and write it to every configured sink; raise naming each sink that failed."""
    sequence, head_hash, count = chain_head()
    checkpoint = checkpoint_sign(Checkpoint(
        sequence=sequence, head_hash=head_hash, event_count=count,
        created_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), reason=reason[:200],
        key_id=chain_key_id(), signer=public_key_id()))
    failures = []
    for sink in configured_sinks():
        try:
            sink.write(checkpoint)
        except (CheckpointError, OSError) as error:
            failures.append(str(error) if isinstance(error, CheckpointError) else f"{sink.name}: {error}")
    if failures:
        raise CheckpointError("the audit checkpoint was not written to " + "; ".join(failures))
    return checkpoint


def checkpoint_after_commit(*, reason: str) -> None:
    """Write a checkpoint once the current transaction commits; a failure is logged, the work stands."""

    def write_audit_checkpoint() -> None:
        checkpoint_write(reason=reason)

    transaction.on_commit(write_audit_checkpoint, robust=True)


# Verification


@dataclass
class AnchorVerification:
    """The chain verified by its keyed hashes and against every checkpoint that could be read."""

    chain: ChainVerification
    head_sequence: int
    event_count: int
    checkpoints: int = 0
    latest: Checkpoint | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.chain.intact and not self.problems


def read_checkpoints(extra_files: Iterable[str | Path] = ()) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint in the readable sinks and the given files, and a problem for each unreadable one."""
    sources = [sink for sink in configured_sinks() if sink.readable]
    sources += [FileSink(path, skip_foreign=True) for path in extra_files]
    checkpoints, problems = [], []
    for source in sources:
        try:
            for where, record in source.read():
                if isinstance(record, Exception):
                    problems.append(f"checkpoint {where} is unreadable ({record}): the sink was altered")
                    continue
                try:
                    checkpoints.append(Checkpoint.from_dict(record))
                except ValueError as error:
                    problems.append(f"checkpoint {where} is malformed ({error}): the sink was altered")
        except (CheckpointError, OSError) as error:
            problems.append(f"checkpoints could not be read from {source.name}: {error}")
    return checkpoints, problems


def _plain_link(event: AuditEvent) -> str:
    """The unkeyed link of the old chain format: a rewrite that recomputed plain SHA-256 carries it."""
    return hashlib.sha256(f"{event.sequence}|{event.prev_hash}|{content_digest(event)}".encode()).hexdigest()


def _chain_problem(chain: ChainVerification) -> str:
    bad = AuditEvent.objects.filter(sequence=chain.first_bad_sequence).first()
    if bad is not None and bad.hash == _plain_link(bad):
        unmigrated = " (or, from event #1 on, migration 0004_anchor was never applied)" if bad.sequence == 1 else ""
        return (f"event #{bad.sequence} carries a plain SHA-256 hash instead of its keyed hash: the chain was "
                f"rewritten by someone without the chain key{unmigrated}")
    return chain.reason


def _compare(checkpoint: Checkpoint, *, head_sequence: int, count: int, seen: dict[int, str],
             chain: ChainVerification) -> tuple[str, str] | None:
    """(kind, message) when the database no longer shows what the checkpoint recorded."""
    if count == 0 and checkpoint.event_count > 0:
        return "emptied", (f"the audit table is empty but {checkpoint.describe()} recorded "
                           f"{checkpoint.event_count} events: the table was truncated or deleted")
    if head_sequence < checkpoint.sequence:
        missing = checkpoint.sequence - head_sequence
        return "tail", (f"the chain ends at #{head_sequence} but {checkpoint.describe()} recorded "
                        f"#{checkpoint.sequence}: the newest {missing} "
                        f"{'event was' if missing == 1 else 'events were'} deleted (truncated tail)")
    if count < checkpoint.event_count:
        return "count", (f"the table holds {count} events but {checkpoint.describe()} recorded "
                         f"{checkpoint.event_count}: events were deleted")
    if checkpoint.sequence == 0:
        return None
    if checkpoint.sequence in seen:
        if seen[checkpoint.sequence] != checkpoint.head_hash:
            return "rewritten", (f"event #{checkpoint.sequence} does not match {checkpoint.describe()}: the chain "
                                 "was rewritten after the checkpoint")
    elif chain.intact:
        return "rewritten", f"event #{checkpoint.sequence} of {checkpoint.describe()} is missing"
    return None


def audit_trail_verify(*, extra_files: Iterable[str | Path] = (), key: Ed25519PublicKey | None = None,
                       stale_after: dt.timedelta | None = None) -> AnchorVerification:
    """Verify the keyed chain, every checkpoint's signature, and the chain against each valid checkpoint."""
    checkpoints, problems = read_checkpoints(extra_files)
    key = key or public_key()
    valid = []
    bad_signatures = []
    for checkpoint in checkpoints:
        problem = checkpoint_signature_problem(checkpoint, key)
        if problem:
            bad_signatures.append(problem)
        else:
            valid.append(checkpoint)
    problems += _first_and_count(bad_signatures)

    head_sequence, _, count = chain_head()
    wanted = {checkpoint.sequence for checkpoint in valid}
    seen: dict[int, str] = {}

    def tap(events):
        for event in events:
            if event.sequence in wanted:
                seen[event.sequence] = event.hash
            yield event

    chain = verify_chain(tap(iter_events_in_order()))
    result = AnchorVerification(chain=chain, head_sequence=head_sequence, event_count=count)
    if not chain.intact:
        problems.insert(0, f"audit chain BROKEN at event #{chain.first_bad_sequence}: {_chain_problem(chain)} "
                           f"({chain.events} events verified before it)")
    current_key_id = chain_key_id(chain_key())
    by_kind: dict[str, list[str]] = {}
    for checkpoint in sorted(valid, key=lambda c: (c.sequence, c.created_at), reverse=True):
        found = _compare(checkpoint, head_sequence=head_sequence, count=count, seen=seen, chain=chain)
        if found:
            by_kind.setdefault(found[0], []).append(found[1])
        if checkpoint.key_id != current_key_id:
            by_kind.setdefault("key", []).append(
                f"{checkpoint.describe()} was written with chain key {checkpoint.key_id}, but the key configured "
                f"now is {current_key_id}: STEWARD_AUDIT_CHAIN_KEY is not the key the chain was written with")
    for messages in by_kind.values():
        problems += _first_and_count(messages)
    result.problems = problems
    result.checkpoints = len(valid)
    result.latest = max(valid, key=lambda c: (c.created_at, c.sequence)) if valid else None
    if result.latest is None:
        if count:
            result.warnings.append("no signed checkpoint was found: the chain was verified only against itself, "
                                   "so deleted newest events would go unnoticed")
    else:
        interval = settings.STEWARD_AUDIT_CHECKPOINT_INTERVAL_SECONDS
        stale_after = stale_after or dt.timedelta(seconds=STALE_FACTOR * interval)
        written = dt.datetime.strptime(result.latest.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        if dt.datetime.now(dt.UTC) - written > stale_after:
            result.warnings.append(f"the newest checkpoint is from {result.latest.created_at}: is the "
                                   "audit-checkpoint beat task running?")
    return result


def _first_and_count(messages: list[str]) -> list[str]:
    """The first message of a kind, and how many more checkpoints said the same."""
    if len(messages) <= 1:
        return messages
    return [f"{messages[0]} (and {len(messages) - 1} more checkpoints)"]


def checkpoints_verify_offline(path: str | Path, key: Ed25519PublicKey) -> tuple[list[Checkpoint], list[str]]:
    """Verify the signatures of the checkpoints in a file, without the database or the chain key."""
    checkpoints, problems = read_checkpoints_from(Path(path))
    valid = []
    for checkpoint in checkpoints:
        problem = checkpoint_signature_problem(checkpoint, key)
        if problem:
            problems.append(problem)
        else:
            valid.append(checkpoint)
    return valid, problems


def read_checkpoints_from(path: Path) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints of one file: JSON lines, a syslog export, or one pretty-printed JSON object."""
    try:
        whole = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        try:
            return [Checkpoint.from_dict(whole)], []
        except ValueError as error:
            return [], [f"{path} holds no valid checkpoint ({error})"]
    checkpoints, problems = [], []
    for where, record in FileSink(path, skip_foreign=True).read():
        try:
            if isinstance(record, Exception):
                raise record
            checkpoints.append(Checkpoint.from_dict(record))
        except ValueError as error:
            problems.append(f"checkpoint {where} is unreadable ({error})")
    return checkpoints, problems
