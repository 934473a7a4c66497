"""The audit trail anchored outside the database: TRUNCATE refused, a keyed chain, signed checkpoints.

Each attack is done as an attacker with database access would do it (tests/audit_tamper.py: the
append-only trigger disabled, or the TRUNCATE trigger dropped as a superuser can), then
verify_audit_chain must catch it and name it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from governance import audit_keys
from governance.audit import Actor, PendingEvent, audit_append, audit_append_many, content_digest, verify_chain
from governance.audit_anchor import (
    Checkpoint,
    FileSink,
    audit_trail_verify,
    checkpoint_write,
    read_checkpoints,
)
from governance.models import AuditEvent
from tests.audit_tamper import tamper
from tests.governance.connectors.conftest import TOKEN_ENV, openbao  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

CHAIN_KEY = "anchor-test-chain-key-" + "k" * 8 + "0123456789abcdef"


def _append(n: int, start: int = 0) -> None:
    actor = Actor.system(task_id="anchor-test")
    for i in range(start, start + n):
        with transaction.atomic():
            audit_append(actor=actor, action="test.event", object_type="test", object_id=i, summary=f"event {i}",
                         changes={"n": {"before": i, "after": i + 1}})


def _verify_fails(*names: str) -> str:
    with pytest.raises(CommandError) as info:
        call_command("verify_audit_chain")
    message = str(info.value)
    for name in names:
        assert name in message, message
    return message


def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE and its trigger are PostgreSQL's")


def _rewrite_from(sequence: int, link) -> None:
    """Edit event #sequence and recompute every later link with `link`, as a forger without the key would."""
    events = list(AuditEvent.objects.filter(sequence__gte=sequence).order_by("sequence"))
    prev = events[0].prev_hash
    for event in events:
        if event.sequence == sequence:
            event.summary = "nothing happened here"
        event.prev_hash = prev
        event.hash = prev = link(event.sequence, prev, content_digest(event))
        tamper("UPDATE governance_auditevent SET summary = %s, prev_hash = %s, hash = %s WHERE id = %s",
               [event.summary, event.prev_hash, event.hash, event.pk])


def _checkpoints(settings) -> list[dict]:
    path = Path(settings.STEWARD_AUDIT_CHECKPOINT_FILE)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# TRUNCATE


def test_truncate_is_refused_by_the_trigger():
    _postgres_only()
    _append(3)
    with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE governance_auditevent")
    assert AuditEvent.objects.count() == 3


def test_truncate_with_the_trigger_dropped_is_caught_and_named():
    """Reproduction: TRUNCATE, then verify_audit_chain reported an intact chain of 0 events."""
    _postgres_only()
    _append(5)
    checkpoint_write(reason="test")
    with connection.cursor() as cursor:  # a superuser attacker: drop the guard, empty the table
        cursor.execute("DROP TRIGGER governance_auditevent_no_truncate ON governance_auditevent")
        cursor.execute("TRUNCATE governance_auditevent")
    assert AuditEvent.objects.count() == 0
    _verify_fails("the audit table is empty", "recorded 5 events", "truncated or deleted")


def test_an_emptied_table_is_caught_on_sqlite_too(settings):
    _append(4)
    checkpoint_write(reason="test")
    tamper("DELETE FROM governance_auditevent", [])
    _verify_fails("the audit table is empty", "recorded 4 events")


# Deleted newest events


@pytest.mark.parametrize("deleted", [1, 50])
def test_deleting_the_newest_events_is_caught(deleted):
    """Reproduction: deleting the newest 1 or 50 events still verified."""
    _append(55)
    checkpoint_write(reason="test")
    tamper("DELETE FROM governance_auditevent WHERE sequence > %s", [55 - deleted])
    assert verify_chain().intact  # what the chain alone cannot see
    _verify_fails(f"the chain ends at #{55 - deleted}", "recorded #55",
                  f"the newest {deleted} {'event was' if deleted == 1 else 'events were'} deleted (truncated tail)")


def test_deleting_the_tail_and_appending_again_is_caught():
    """Deleted tail hidden behind new events: the event at the checkpoint's sequence is not the one signed."""
    _append(10)
    checkpoint_write(reason="test")
    tamper("DELETE FROM governance_auditevent WHERE sequence > %s", [7])
    _append(5, start=100)
    _verify_fails("event #10 does not match the checkpoint", "rewritten after the checkpoint")


# Rewrites


def test_a_rewrite_with_recomputed_sha256_is_caught():
    """Reproduction: editing an event and recomputing every later hash (plain SHA-256) verified."""
    _append(6)

    def sha256_link(sequence, prev, digest):
        return hashlib.sha256(f"{sequence}|{prev}|{digest}".encode()).hexdigest()

    _rewrite_from(3, sha256_link)
    _verify_fails("BROKEN at event #3", "plain SHA-256", "without the chain key")


def test_a_rewrite_with_recomputed_hmac_under_a_wrong_key_is_caught():
    _append(6)

    def wrong_key_link(sequence, prev, digest):
        return hmac.new(b"a guessed key", f"{sequence}|{prev}|{digest}".encode(), hashlib.sha256).hexdigest()

    _rewrite_from(1, wrong_key_link)
    _verify_fails("BROKEN at event #1", "keyed hash")


def test_a_rewrite_with_the_key_is_still_caught_by_the_checkpoint():
    """Even whoever holds the chain key cannot rewrite the past behind a signed checkpoint."""
    from governance.audit import link_hash

    _append(6)
    checkpoint_write(reason="test")
    _rewrite_from(2, link_hash)
    assert verify_chain().intact
    _verify_fails("event #6 does not match the checkpoint", "rewritten after the checkpoint")


def test_the_chain_is_keyed_with_the_configured_key(settings):
    settings.STEWARD_AUDIT_CHAIN_KEY = CHAIN_KEY
    _append(2)
    first = AuditEvent.objects.get(sequence=1)
    expected = hmac.new(CHAIN_KEY.encode(), f"1|{first.prev_hash}|{content_digest(first)}".encode(),
                        hashlib.sha256).hexdigest()
    assert first.hash == expected
    assert verify_chain().intact
    assert not verify_chain(key=b"another key").intact


def test_a_changed_chain_key_is_named(settings):
    _append(3)
    checkpoint_write(reason="test")
    settings.STEWARD_AUDIT_CHAIN_KEY = CHAIN_KEY
    _verify_fails("BROKEN at event #1", "is not the key the chain was written with")


def test_a_batch_is_keyed_like_single_appends(settings):
    settings.STEWARD_AUDIT_CHAIN_KEY = CHAIN_KEY
    _append(1)
    with transaction.atomic():
        audit_append_many(actor=Actor.system(task_id="batch"), events=[
            PendingEvent(action="test.batch", object_type="test", object_id=i, summary=f"batch {i}")
            for i in range(4)])
    _append(1)
    result = verify_chain()
    assert result.intact and result.events == 6


# Checkpoints


def test_a_checkpoint_records_the_head_signed(settings):
    _append(4)
    checkpoint = checkpoint_write(reason="test")
    head = AuditEvent.objects.order_by("-sequence").first()
    assert (checkpoint.sequence, checkpoint.head_hash, checkpoint.event_count) == (4, head.hash, 4)
    [stored] = _checkpoints(settings)
    assert Checkpoint.from_dict(stored) == checkpoint
    audit_keys.public_key().verify(base64.b64decode(stored["signature"]), checkpoint.signed_payload())
    call_command("verify_audit_chain")


def test_a_checkpoint_with_a_bad_signature_is_caught(settings):
    _append(3)
    checkpoint_write(reason="test")
    path = Path(settings.STEWARD_AUDIT_CHECKPOINT_FILE)
    record = json.loads(path.read_text())
    record["event_count"] = record["sequence"] = 2  # "it was always 2 events"
    path.write_text(json.dumps(record) + "\n")
    _verify_fails("has a bad signature", "altered after it was signed")


def test_a_checkpoint_signed_by_another_key_is_caught(settings, tmp_path):
    _append(2)
    checkpoint_write(reason="test")
    real = settings.STEWARD_AUDIT_SIGNING_KEY_FILE
    settings.STEWARD_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "forger.pem")  # generated: not the real key
    checkpoint_write(reason="forged")
    other = audit_keys.public_key_id()
    settings.STEWARD_AUDIT_SIGNING_KEY_FILE = real
    _verify_fails("has a bad signature", f"names signer {other}")


def test_a_garbled_checkpoint_line_is_caught(settings):
    _append(1)
    checkpoint_write(reason="test")
    with open(settings.STEWARD_AUDIT_CHECKPOINT_FILE, "a") as handle:
        handle.write("not json at all\n")
    _verify_fails("is unreadable", "the sink was altered")


def test_the_beat_task_writes_a_checkpoint(settings):
    from governance.tasks.audit import audit_checkpoint
    from portal.celery import app

    entry = app.conf.beat_schedule["audit-checkpoint"]
    assert entry["task"] == "governance.audit.checkpoint" and entry["schedule"] <= 300
    assert entry["task"] in app.tasks
    _append(3)
    result = audit_checkpoint.apply().get()
    assert result["sequence"] == 3
    [stored] = _checkpoints(settings)
    assert stored["reason"] == "schedule" and stored["sequence"] == 3


def test_report_generation_writes_a_checkpoint(personas, estate, settings, tmp_path,
                                               django_capture_on_commit_callbacks):
    from reports.services import report_job_create, report_job_run

    settings.MEDIA_ROOT = tmp_path / "media"
    job = report_job_create(actor=Actor.for_user(personas.auditor), kind="inventory", parameters={}, enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        job = report_job_run(job_id=job.pk)
    assert job.status == "succeeded"
    generated = AuditEvent.objects.get(action="report.generate", object_id=str(job.pk))
    [stored] = _checkpoints(settings)
    assert stored["reason"] == f"report {job.pk}"
    assert stored["sequence"] == generated.sequence and stored["head_hash"] == generated.hash


def test_a_failed_checkpoint_does_not_fail_the_report(personas, estate, settings, tmp_path,
                                                      django_capture_on_commit_callbacks, caplog):
    from reports.services import report_job_create, report_job_run

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STEWARD_AUDIT_CHECKPOINT_SINKS = ["syslog"]
    settings.STEWARD_AUDIT_CHECKPOINT_SYSLOG_ADDRESS = str(tmp_path / "no-such-socket")
    job = report_job_create(actor=Actor.for_user(personas.auditor), kind="inventory", parameters={}, enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        job = report_job_run(job_id=job.pk)
    assert job.status == "succeeded"
    assert "audit checkpoint was not written to syslog" in caplog.text


def test_the_syslog_sink_sends_a_signed_checkpoint(settings):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        settings.STEWARD_AUDIT_CHECKPOINT_SINKS = ["file", "syslog"]
        settings.STEWARD_AUDIT_CHECKPOINT_SYSLOG_ADDRESS = f"127.0.0.1:{collector.getsockname()[1]}"
        _append(2)
        checkpoint = checkpoint_write(reason="test")
        line = collector.recv(65536).decode()
    assert line.startswith("<85>steward: steward-audit-checkpoint {")
    export = Path(settings.STEWARD_AUDIT_CHECKPOINT_FILE).with_name("syslog-export.log")
    export.write_text(f"Dec  2 10:00:00 host other: unrelated message\nDec  2 10:00:01 host {line}\n")
    found, problems = read_checkpoints([export])
    assert checkpoint in found and problems == []


def test_an_unknown_sink_is_named(settings):
    settings.STEWARD_AUDIT_CHECKPOINT_SINKS = ["s3"]
    with pytest.raises(Exception, match="unknown sink 's3'"):
        checkpoint_write(reason="test")


# OpenBao: the chain key and a checkpoint sink


def _use_openbao(settings, openbao):  # noqa: F811
    settings.STEWARD_AUDIT_OPENBAO_ADDR = openbao.address
    settings.STEWARD_AUDIT_OPENBAO_TOKEN_ENV = TOKEN_ENV
    settings.STEWARD_AUDIT_OPENBAO_MOUNT = "secret"


def test_the_chain_key_is_read_from_openbao(settings, openbao):  # noqa: F811
    _use_openbao(settings, openbao)
    path = f"steward-test/audit-chain-{id(settings)}"
    openbao.client().secrets.kv.v2.create_or_update_secret(path=path, secret={"chain_key": CHAIN_KEY},
                                                           mount_point="secret")
    settings.STEWARD_AUDIT_CHAIN_KEY = ""
    settings.STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH = f"secret/{path}"
    assert audit_keys.chain_key() == CHAIN_KEY.encode()
    _append(2)
    assert verify_chain(key=CHAIN_KEY.encode()).intact
    settings.STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH = "secret/steward-test/no-such-key"
    with pytest.raises(Exception, match="no field 'chain_key'"):
        audit_keys.chain_key()


def test_openbao_checkpoints_are_versions_and_verified(settings, openbao):  # noqa: F811
    _use_openbao(settings, openbao)
    settings.STEWARD_AUDIT_CHECKPOINT_SINKS = ["openbao"]
    settings.STEWARD_AUDIT_CHECKPOINT_OPENBAO_PATH = f"steward-test/checkpoints-{id(settings)}"
    _append(3)
    checkpoint_write(reason="first")
    _append(2, start=10)
    checkpoint_write(reason="second")
    found, problems = read_checkpoints()
    assert problems == [] and [c.reason for c in found] == ["first", "second"]
    call_command("verify_audit_chain")
    tamper("DELETE FROM governance_auditevent WHERE sequence > %s", [4])
    _verify_fails("the chain ends at #4", "the newest 1 event was deleted")


def test_an_unreachable_openbao_sink_fails_verification(settings):
    settings.STEWARD_AUDIT_OPENBAO_ADDR = "http://127.0.0.1:9"
    settings.STEWARD_AUDIT_CHECKPOINT_SINKS = ["file", "openbao"]
    _append(1)
    with pytest.raises(Exception, match="not written to openbao"):
        checkpoint_write(reason="test")
    _verify_fails("checkpoints could not be read from openbao")


# Offline verification


def test_an_auditor_verifies_a_checkpoint_offline(settings, tmp_path, capsys):
    _append(3)
    checkpoint = checkpoint_write(reason="test")
    public_key = tmp_path / "steward-audit.pub"
    call_command("audit_public_key", output=str(public_key))
    capsys.readouterr()
    one = tmp_path / "checkpoint.json"
    one.write_text(json.dumps(checkpoint.as_dict(), indent=2))
    call_command("verify_audit_chain", checkpoint=str(one), public_key=str(public_key))
    out = capsys.readouterr().out
    assert "Checkpoint VALID" in out and f"head hash {checkpoint.head_hash}" in out and "3 events" in out
    forged = {**checkpoint.as_dict(), "head_hash": "0" * 64}
    one.write_text(json.dumps(forged))
    with pytest.raises(CommandError, match="bad signature"):
        call_command("verify_audit_chain", checkpoint=str(one), public_key=str(public_key))


def test_offline_mode_needs_a_public_key(tmp_path):
    with pytest.raises(CommandError, match="--public-key"):
        call_command("verify_audit_chain", checkpoint=str(tmp_path / "x.json"))
    with pytest.raises(CommandError, match="--public-key"):
        call_command("verify_audit_chain", checkpoint=str(tmp_path / "x.json"), public_key=str(tmp_path / "none"))


def test_the_public_key_is_printed_as_pem(capsys):
    call_command("audit_public_key")
    pem = capsys.readouterr().out
    key = serialization.load_pem_public_key(pem.encode())
    assert audit_keys.public_key_id(key) == audit_keys.public_key_id()


# Keys stay out of the database


def test_no_key_is_in_the_database(personas, estate, settings):
    """Scan every row of every table (the audit events, the stores' and lifecycle settings) for key material."""
    settings.STEWARD_AUDIT_CHAIN_KEY = CHAIN_KEY
    _append(3)
    checkpoint_write(reason="test")
    raw = audit_keys.signing_key().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                 serialization.NoEncryption())
    pem = audit_keys.signing_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
    pem_body = "".join(pem.strip().splitlines()[1:-1])
    derived = hmac.new(settings.SECRET_KEY.encode(), b"steward audit chain key/v1", hashlib.sha256).digest()
    needles = [CHAIN_KEY, CHAIN_KEY.encode().hex(), raw.hex(), base64.b64encode(raw).decode(), pem_body,
               derived.hex(), base64.b64encode(derived).decode()]
    scanned = 0
    with connection.cursor() as cursor:
        for model in apps.get_models():
            table = model._meta.db_table
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names
            for row in cursor.fetchall():
                text = " ".join(str(value) for value in row)
                scanned += 1
                for needle in needles:
                    assert needle not in text, f"key material in {table}"
    assert scanned >= AuditEvent.objects.count() > 0


def test_production_refuses_to_start_without_the_audit_keys(tmp_path):
    from tests.portal.test_settings_production import AUDIT_KEYS, SECRET_KEY, manage

    base = {"STEWARD_ENV": "production", "SECRET_KEY": SECRET_KEY, "ALLOWED_HOSTS": "steward.example.com"}
    result = manage("check", env=base)
    assert result.returncode != 0
    assert "STEWARD_AUDIT_CHAIN_KEY" in result.stderr and "STEWARD_AUDIT_SIGNING_KEY" in result.stderr
    result = manage("check", env={**base, "STEWARD_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "missing.pem"),
                                  "STEWARD_AUDIT_CHAIN_KEY": "short"})
    assert result.returncode != 0 and "at least 32 characters" in result.stderr
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(audit_keys.signing_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    result = manage("check", env={**base, "STEWARD_AUDIT_CHAIN_KEY": AUDIT_KEYS["STEWARD_AUDIT_CHAIN_KEY"],
                                  "STEWARD_AUDIT_SIGNING_KEY_FILE": str(key_file),
                                  "STEWARD_DISCOVERY_FINGERPRINT_KEY": AUDIT_KEYS["STEWARD_DISCOVERY_FINGERPRINT_KEY"]})
    assert result.returncode == 0, result.stderr


# Upgrade


def _migration():
    return importlib.import_module("governance.migrations.0004_anchor")  # its name starts with a digit


def _make_unkeyed(migration) -> None:
    """Re-link the chain with plain SHA-256, as it was before this release."""
    prev = "0" * 64
    for event in AuditEvent.objects.order_by("sequence"):
        new = migration.plain_link(event.sequence, prev, content_digest(event))
        tamper("UPDATE governance_auditevent SET prev_hash = %s, hash = %s WHERE id = %s", [prev, new, event.pk])
        prev = new


def _relink(migration) -> None:
    # relink() needs only the editor's connection; SQLite's real editor refuses to open inside the test's transaction.
    migration.relink_keyed(apps, SimpleNamespace(connection=connection))


def test_the_upgrade_relinks_an_unkeyed_chain():
    """Events chained with plain SHA-256 (before this release) verify after the data migration."""
    migration = _migration()
    _append(5)
    _make_unkeyed(migration)
    assert not verify_chain().intact
    _relink(migration)
    result = verify_chain()
    assert result.intact and result.events == 5
    with pytest.raises(DatabaseError), transaction.atomic():  # the append-only guard is back
        AuditEvent.objects.update(summary="x")


def test_the_upgrade_refuses_to_launder_a_broken_chain():
    migration = _migration()
    _append(3)
    _make_unkeyed(migration)
    tamper("UPDATE governance_auditevent SET summary = %s WHERE sequence = 2", ["edited before the upgrade"])
    with pytest.raises(RuntimeError, match="broken at event #2"):
        _relink(migration)


def test_the_file_sink_appends_lines(tmp_path):
    sink = FileSink(tmp_path / "cp.jsonl")
    _append(1)
    checkpoint = checkpoint_write(reason="test")
    sink.write(checkpoint)
    sink.write(checkpoint)
    assert [record for _, record in sink.read()] == [checkpoint.as_dict()] * 2


def test_verify_warns_without_any_checkpoint(capsys):
    _append(2)
    call_command("verify_audit_chain")
    captured = capsys.readouterr()
    assert "2 events" in captured.out and "no signed checkpoint" in captured.err
    result = audit_trail_verify()
    assert result.intact and result.checkpoints == 0
