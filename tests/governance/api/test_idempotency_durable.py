"""Idempotency records live in the transaction of the work (issue 15: "a 500 after commit releases
the Idempotency-Key, so a client's retry runs the work again (two report jobs from one key). A
gunicorn worker killed mid-request leaves its key in progress (409) for 24 h")."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import System
from governance.models.integrations import IdempotencyRecord
from governance.services import inventory as inventory_services
from reports import api as reports_api
from reports import services as report_services
from reports import tasks as report_tasks
from reports.models import ReportJob

REPORT = {"kind": "inventory", "parameters": {"scope": "team:Payments"}}


def client_for(person) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_login(person)
    return client


@pytest.fixture
def no_broker(monkeypatch):
    """The render is not what these tests are about: the message is dropped, never sent."""
    monkeypatch.setattr(report_tasks.run_report_job, "delay", lambda *args, **kwargs: None)


@pytest.mark.django_db(transaction=True)
def test_500_after_commit_released_the_key_and_the_retry_made_a_second_report_job(personas, monkeypatch,
                                                                                   no_broker):
    original = report_services.report_job_create
    calls = []

    def fails_after_commit(**kwargs):
        job = original(**kwargs)
        calls.append(job.pk)

        def broker_gone():
            raise ConnectionError("the broker went away after the commit")

        if len(calls) == 1:
            transaction.on_commit(broker_gone)
        return job

    monkeypatch.setattr(reports_api, "report_job_create", fails_after_commit)
    client = client_for(personas.owner)
    first = client.post("/api/v1/report-jobs/", REPORT, format="json", HTTP_IDEMPOTENCY_KEY="report-1")
    assert first.status_code == 500
    assert ReportJob.objects.count() == 1  # the work committed
    retry = client.post("/api/v1/report-jobs/", REPORT, format="json", HTTP_IDEMPOTENCY_KEY="report-1")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == calls[0]
    assert ReportJob.objects.count() == 1 and len(calls) == 1  # the work did not run again


@pytest.mark.django_db(transaction=True)
def test_work_that_rolled_back_releases_the_key(personas, monkeypatch, no_broker):
    original = report_services.report_job_create

    def fails_inside(**kwargs):
        original(**kwargs)
        raise RuntimeError("failed before the commit")

    monkeypatch.setattr(reports_api, "report_job_create", fails_inside)
    client = client_for(personas.owner)
    assert client.post("/api/v1/report-jobs/", REPORT, format="json",
                       HTTP_IDEMPOTENCY_KEY="report-2").status_code == 500
    assert not ReportJob.objects.exists() and not IdempotencyRecord.objects.exists()
    monkeypatch.setattr(reports_api, "report_job_create", original)
    assert client.post("/api/v1/report-jobs/", REPORT, format="json",
                       HTTP_IDEMPOTENCY_KEY="report-2").status_code == 201
    assert ReportJob.objects.count() == 1


@pytest.mark.django_db
def test_killed_worker_left_its_key_in_progress_for_24_hours(personas, monkeypatch):
    """A worker killed mid-request runs no cleanup: its claim stays, its work never committed."""
    import governance.api.idempotency as idempotency

    original = inventory_services.system_create

    def killed(**kwargs):
        raise SystemExit("SIGKILL")  # the process ends; in production nothing after this line runs

    monkeypatch.setattr(idempotency, "_release", lambda *args: None)  # a killed process releases nothing
    monkeypatch.setattr(inventory_services, "system_create", killed)
    client = client_for(personas.owner)
    body = {"name": "leased", "owner": personas.owner.pk}
    with pytest.raises(SystemExit):
        client.post("/api/v1/systems/", body, format="json", HTTP_IDEMPOTENCY_KEY="sys-1")
    record = IdempotencyRecord.objects.get(key="sys-1")
    assert record.response_status is None
    assert dt.timedelta(seconds=60) < record.lease_expires_at - timezone.now() <= dt.timedelta(seconds=120)
    monkeypatch.setattr(inventory_services, "system_create", original)
    # while its lease runs, the key is in progress
    busy = client.post("/api/v1/systems/", body, format="json", HTTP_IDEMPOTENCY_KEY="sys-1")
    assert busy.status_code == 409 and busy.json()["code"] == "in_progress"
    # the lease lapses (two minutes later): the retry runs the work, once
    IdempotencyRecord.objects.filter(pk=record.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    retried = client.post("/api/v1/systems/", body, format="json", HTTP_IDEMPOTENCY_KEY="sys-1")
    assert retried.status_code == 201, retried.json()
    assert System.objects.filter(name="leased").count() == 1
    again = client.post("/api/v1/systems/", body, format="json", HTTP_IDEMPOTENCY_KEY="sys-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == retried.json()["id"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_that_outlived_its_lease_does_not_commit_beside_the_one_that_took_over(personas, monkeypatch,
                                                                                        no_broker):
    if connection.vendor != "postgresql":
        pytest.skip("two requests at once need PostgreSQL")
    original = report_services.report_job_create
    started, release = threading.Event(), threading.Event()

    def slow(**kwargs):
        if threading.current_thread().name == "slow-request":  # holds the key, then works past its lease
            started.set()
            release.wait(30)
        return original(**kwargs)

    monkeypatch.setattr(reports_api, "report_job_create", slow)
    outcome = {}

    def slow_request():
        try:
            response = client_for(personas.owner).post("/api/v1/report-jobs/", REPORT, format="json",
                                                       HTTP_IDEMPOTENCY_KEY="report-3")
            outcome["slow"] = (response.status_code, response.json())
        finally:
            connection.close()

    thread = threading.Thread(target=slow_request, name="slow-request")
    thread.start()
    assert started.wait(30)
    IdempotencyRecord.objects.filter(key="report-3").update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    took_over = client_for(personas.owner).post("/api/v1/report-jobs/", REPORT, format="json",
                                                HTTP_IDEMPOTENCY_KEY="report-3")
    assert took_over.status_code == 201, took_over.json()
    release.set()
    thread.join(30)
    status, answer = outcome["slow"]
    assert status == 409 and answer["code"] == "lease_lapsed", answer
    assert list(ReportJob.objects.values_list("pk", flat=True)) == [took_over.json()["id"]]
    record = IdempotencyRecord.objects.get(key="report-3")
    assert record.response_status == 201 and record.response_body["id"] == took_over.json()["id"]
