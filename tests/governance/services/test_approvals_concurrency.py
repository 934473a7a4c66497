"""Simultaneous decisions on one request: exactly one transition, one audit event, one execution.

The losers get "already decided" (ApprovalAlreadyDecided), never a server error. The full race
(50 approves and 50 rejects) runs against PostgreSQL; a smaller one runs on the embedded SQLite.
Threads share a pool smaller than the race so the test stays under PostgreSQL's connection limit;
they are all released at once by one event.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection

from governance.audit import Actor, verify_chain
from governance.models import AuditEvent, Credential, Person
from governance.models.approvals import ApprovalDecision, ApprovalStatus
from governance.services import approvals
from tests.factories_approvals import A, file_request, make_policy

WORKERS = int(os.environ.get("STEWARD_RACE_WORKERS", "24"))


def _approvers(group, count: int) -> list[Person]:
    password = make_password(None)
    people = Person.objects.bulk_create(
        [Person(username=f"racer-{i:03d}", email=f"racer-{i:03d}@example.test", password=password)
         for i in range(count)])
    group.user_set.add(*people)
    return people


def _race(request_id: int, moves: list[tuple[str, Person]]) -> list[str]:
    go = threading.Event()

    def decide(kind: str, person: Person) -> str:
        go.wait()
        try:
            if kind == "approve":
                approvals.approval_request_approve(actor=Actor.for_user(person), request_id=request_id)
            else:
                approvals.approval_request_reject(actor=Actor.for_user(person), request_id=request_id,
                                                  reason="not now")
            return {"approve": "approved", "reject": "rejected"}[kind]
        except approvals.ApprovalAlreadyDecided:
            return "already decided"
        except Exception as exc:  # the test reports any other outcome as a failure
            return f"error: {exc!r}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=min(WORKERS, len(moves))) as pool:
        futures = [pool.submit(decide, kind, person) for kind, person in moves]
        go.set()
        return [future.result(timeout=120) for future in futures]


def _assert_one_transition(request, outcomes, *, decisions: int = 1):
    errors = [o for o in outcomes if o.startswith("error")]
    assert errors == []
    winners = [o for o in outcomes if o != "already decided"]
    assert len(winners) == decisions, outcomes
    request.refresh_from_db()
    assert request.status in (ApprovalStatus.EXECUTED, ApprovalStatus.REJECTED)
    assert ApprovalDecision.objects.filter(request=request).count() == decisions
    events = AuditEvent.objects.filter(changes__approval_request__after=request.pk)
    decisions_events = events.filter(action__in=("approval.approve", "approval.reject"))
    transitions = [e for e in decisions_events if "status" in e.changes]
    assert len(transitions) == 1
    executed = events.filter(action="approval.execute").count()
    created = Credential.objects.filter(identifier=request.payload["identifier"]).count()
    if request.status == ApprovalStatus.EXECUTED:
        assert executed == 1 and created == 1
    else:
        assert executed == 0 and created == 0
    assert verify_chain().intact


def _filed(personas, estate, *, required: int = 1):
    make_policy(groups=[personas.other_team.group], required=required)
    return file_request(Actor.for_user(personas.owner), A.PROVISION_CREDENTIAL, estate, personas)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_approves_and_fifty_rejects_at_once_on_postgresql(personas, estate):
    if connection.vendor != "postgresql":
        pytest.skip("the full race runs against PostgreSQL (DATABASE_URL=postgres://...)")
    request = _filed(personas, estate)
    people = _approvers(personas.other_team.group, 100)
    moves = [("approve" if i % 2 == 0 else "reject", person) for i, person in enumerate(people)]
    _assert_one_transition(request, _race(request.pk, moves))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_of_many_approvals_execute_once_on_postgresql(personas, estate):
    if connection.vendor != "postgresql":
        pytest.skip("runs against PostgreSQL")
    request = _filed(personas, estate, required=2)
    people = _approvers(personas.other_team.group, 40)
    outcomes = _race(request.pk, [("approve", person) for person in people])
    _assert_one_transition(request, outcomes, decisions=2)
    request.refresh_from_db()
    assert request.status == ApprovalStatus.EXECUTED


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_simultaneous_decisions_embedded(personas, estate):
    request = _filed(personas, estate)
    people = _approvers(personas.other_team.group, 10)
    moves = [("approve" if i % 2 == 0 else "reject", person) for i, person in enumerate(people)]
    _assert_one_transition(request, _race(request.pk, moves))
