"""The audit trail: one event per change, hash-chained, append-only, verifiable, never forked."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

from governance.audit import GENESIS_HASH, Actor, audit_append, verify_chain
from governance.models import AuditEvent
from governance.services import inventory as inventory_services
from tests.audit_tamper import tamper

pytestmark = pytest.mark.embedded


def _append(n, actor=None):
    actor = actor or Actor.system(task_id="test")
    for i in range(n):
        with transaction.atomic():
            audit_append(actor=actor, action="test.event", object_type="test", object_id=i, summary=f"event {i}",
                         changes={"n": {"before": i, "after": i + 1}})


@pytest.mark.django_db
def test_events_chain_from_genesis():
    _append(3)
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    result = verify_chain()
    assert result.intact and result.events == 3 and result.head_hash == events[2].hash


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError):
        audit_append(actor=Actor.system(), action="x", object_type="t", summary="s")


@pytest.mark.django_db
def test_a_service_writes_one_event_with_before_and_after(personas):
    actor = Actor.for_user(personas.owner)
    system = inventory_services.system_create(actor=actor, data={"name": "billing", "team": personas.team})
    inventory_services.system_update(actor=actor, system=system, data={"criticality": "high"})
    events = list(AuditEvent.objects.filter(object_type="governance.system").order_by("sequence"))
    assert [e.action for e in events] == ["system.create", "system.update"]
    assert events[1].changes == {"criticality": {"before": "medium", "after": "high"}}
    assert events[1].actor_label == personas.owner.username and events[1].actor_kind == "person"


@pytest.mark.django_db
def test_a_failed_service_call_leaves_no_event(personas):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        inventory_services.system_create(actor=Actor.for_user(personas.owner),
                                         data={"name": "x", "lifecycle": "nonsense"})
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_the_model_has_no_update_or_delete_path():
    _append(1)
    event = AuditEvent.objects.get()
    with pytest.raises(RuntimeError):
        event.save()
    with pytest.raises(RuntimeError):
        event.delete()


@pytest.mark.django_db
def test_database_refuses_updates():
    _append(1)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.update(summary="rewritten")


@pytest.mark.django_db
def test_postgres_refuses_deletes():
    if connection.vendor != "postgresql":
        pytest.skip("the DELETE trigger is PostgreSQL's")
    _append(1)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all()._raw_delete(AuditEvent.objects.db)


@pytest.mark.django_db
def test_verify_command_names_an_edited_event(capsys):
    _append(5)
    call_command("verify_audit_chain")
    assert "5 events" in capsys.readouterr().out
    tamper("UPDATE governance_auditevent SET summary = %s WHERE sequence = %s", ["nothing happened", 3])
    with pytest.raises(CommandError, match="#3"):
        call_command("verify_audit_chain")


@pytest.mark.django_db
def test_verify_names_a_deleted_event():
    _append(5)
    tamper("DELETE FROM governance_auditevent WHERE sequence = %s", [2])
    result = verify_chain()
    assert not result.intact and result.first_bad_sequence == 3


@pytest.mark.django_db
def test_verify_names_reordered_events():
    _append(4)
    # Swap the sequence numbers of events 2 and 3 (through a free slot, to keep the unique index happy).
    tamper("UPDATE governance_auditevent SET sequence = 1000 WHERE sequence = 2", [])
    tamper("UPDATE governance_auditevent SET sequence = 2 WHERE sequence = 3", [])
    tamper("UPDATE governance_auditevent SET sequence = 3 WHERE sequence = 1000", [])
    result = verify_chain()
    assert not result.intact and result.first_bad_sequence == 2


@pytest.mark.django_db
def test_verify_catches_a_recomputed_hash():
    """Editing an event and recomputing its own hash still breaks the next event's link."""
    from governance.audit import compute_event_hash

    _append(3)
    event = AuditEvent.objects.get(sequence=2)
    event.summary = "forged"
    forged_hash = compute_event_hash(event)
    tamper("UPDATE governance_auditevent SET summary = %s, hash = %s WHERE sequence = 2", ["forged", forged_hash])
    result = verify_chain()
    assert not result.intact and result.first_bad_sequence == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    """8 writers append at once; the chain stays linear (PostgreSQL advisory lock / SQLite write lock)."""
    writers, per_writer = 8, 15
    errors = []

    def write(n):
        try:
            _append(per_writer, Actor.system(task_id=f"writer-{n}"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = verify_chain()
    assert result.intact, result.reason
    assert result.events == writers * per_writer


@pytest.mark.django_db
def test_a_batch_appends_one_linked_run_of_events():
    from governance.audit import PendingEvent, audit_append_many

    _append(2)
    with transaction.atomic():
        added = audit_append_many(actor=Actor.system(task_id="batch"), events=[
            PendingEvent(action="test.batch", object_type="test", object_id=i, summary=f"batch {i}") for i in range(3)])
    _append(1)
    assert added == 3
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5, 6]
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:], strict=False))
    assert verify_chain().intact
