"""Sweep now (services.sweep_now): one at a time, queued through the outbox, resumed by the lease recovery when
its message never reaches a worker, and refused to anyone but a security admin."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from governance import leases
from governance.audit import Actor
from governance.models.checks import SweepRun, SweepStatus
from governance.models.outbox import OutboxMessage
from governance.services.sweep_now import SweepAlreadyRunning, sweep_now_request


@pytest.mark.django_db
def test_the_run_and_its_message_are_written_together_and_nobody_holds_it_yet(personas):
    run = sweep_now_request(actor=Actor.for_user(personas.secadmin), checks=["owner-active"])
    assert run.status == SweepStatus.RUNNING and run.trigger == "manual" and run.checks == ["owner-active"]
    assert run.lease_token == "" and run.lease_expires_at > timezone.now()
    message = OutboxMessage.objects.get(task_name="governance.checks.sweep_now_run")
    assert message.args == [run.pk]
    with pytest.raises(SweepAlreadyRunning):
        sweep_now_request(actor=Actor.for_user(personas.secadmin))


@pytest.mark.django_db
def test_a_queued_run_whose_message_never_arrived_is_run_by_the_lease_recovery(personas):
    run = sweep_now_request(actor=Actor.for_user(personas.secadmin), checks=["owner-active"])
    SweepRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    results = leases.leases_recover()
    assert results["sweep_runs"] == {SweepStatus.SUCCEEDED: 1}
    run.refresh_from_db()
    assert run.status == SweepStatus.SUCCEEDED and "owner-active" in run.counts and run.finished_at


@pytest.mark.django_db
def test_only_security_admins_and_only_known_checks(personas):
    for person in (personas.owner, personas.auditor, personas.approver):
        with pytest.raises(PermissionDenied):
            sweep_now_request(actor=Actor.for_user(person))
    with pytest.raises(ValidationError) as refused:
        sweep_now_request(actor=Actor.for_user(personas.secadmin), checks=["owner-active", "no-such-check"])
    assert "no-such-check" in refused.value.message_dict["checks"][0]
    assert not SweepRun.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_six_sweep_now_requests_at_once_start_one_sweep(personas):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs PostgreSQL")
    clients = []
    for _ in range(6):
        client = APIClient(raise_request_exception=False)
        client.force_login(personas.secadmin)
        clients.append(client)
    barrier = threading.Barrier(len(clients))

    def one(client):
        barrier.wait(30)
        try:
            return client.post("/api/v1/sweep-runs/", {"checks": ["owner-active"]}, format="json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        statuses = sorted(pool.map(one, clients))
    assert statuses == [202] + [409] * 5
    assert SweepRun.objects.count() == 1
