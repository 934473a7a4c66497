"""The transactional outbox: work survives a broker outage, is published once it returns, and runs once.

The broker-down tests take a private redis-server away (SIGKILL) while people press the kill
switch, rotate a credential, request reports, and file and approve a request that sends a webhook
and mail, through the portal and the API; each answer must be a success, the work waits as outbox rows, and
once the broker is back the relay publishes it and a real Celery worker (a subprocess on that broker
and on this test's database) carries out each piece exactly once.
"""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

from __future__ import annotations

import datetime as dt
import email
import email.policy
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from governance import outbox
from governance.audit import Actor
from governance.models import AuditEvent, Binding
from governance.models.integrations import DeliveryStatus, WebhookDelivery
from governance.models.lifecycle import KillSwitchActivation, KillSwitchStatus, RotationJob, RotationStatus
from governance.models.outbox import MailDelivery, MailStatus, OutboxMessage
from governance.services.mail import mail_queue
from governance.tasks.checks import sweep_task
from governance.tasks.mail import mail_deliver
from reports.models import ReportJob, ReportJobStatus
from reports.services import report_job_create
from tests.factories import WorkflowFactory
from tests.factories_approvals import make_policy
from tests.factories_integrations import bearer, make_endpoint, make_integration
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    fresh_connectors,
    kv_put,
    kv_store,
    make_credential,
    openbao,
    unique,
)
from tests.lifecycle_servers import free_port
from tests.live_broker import RedisBroker, database_url, start_worker, wait_for
from tests.webhook_receiver import Receiver


def _point_celery_at(url: str, monkeypatch) -> None:
    """Celery reads CELERY_BROKER_URL from the environment before its own configuration: set both.

    The outbox opens a fresh broker connection for each batch it publishes, so no pooled
    connection to the previous broker is left to use.
    """
    from portal.celery import app

    monkeypatch.setenv("CELERY_BROKER_URL", url)
    # setitem on the changes map, not setattr on the property: undone exactly (setattr's undo was not)
    monkeypatch.setitem(app.conf.changes, "broker_url", url)


@pytest.fixture
def live_broker(monkeypatch):
    """A private redis-server that Celery publishes to for this test; started, killed and restarted by it."""
    broker = RedisBroker()
    broker.start()
    _point_celery_at(broker.url, monkeypatch)
    yield broker
    broker.kill()


@pytest.fixture
def dead_broker(monkeypatch):
    """Celery pointed at a loopback port where nothing answers."""
    _point_celery_at(f"redis://127.0.0.1:{free_port()}/0", monkeypatch)


@pytest.fixture
def worker_factory(live_broker, transactional_db, tmp_path):
    workers = []

    def start():
        worker = start_worker(broker=live_broker, database=database_url(connection.settings_dict), workdir=tmp_path)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def mails_written(tmp_path, subject: str) -> int:
    """How many messages with this subject the worker's file mail backend wrote (headers unfolded)."""
    count = 0
    for path in (tmp_path / "mail").glob("*.log"):
        for chunk in path.read_text(errors="replace").split("\n" + "-" * 79 + "\n"):
            if chunk.strip() and email.message_from_string(chunk.lstrip("\n"), policy=email.policy.default)[
                    "Subject"] == subject:
                count += 1
    return count


def kv_version(openbao, path: str) -> int:
    metadata = openbao.client().secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")
    return int(metadata["data"]["current_version"])


# The outbox in the caller's transaction (every configuration, the embedded one too) -------------------------


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_message_is_written_in_the_callers_transaction_and_rolls_back_with_it(django_capture_on_commit_callbacks):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.enqueue(sweep_task, checks=["owner-active"], trigger="test")
        raise RuntimeError("the change fails")
    assert not OutboxMessage.objects.exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        message = outbox.enqueue(sweep_task, checks=["owner-active"], trigger="test")
    assert len(callbacks) == 1  # one publish attempt, after the commit
    stored = OutboxMessage.objects.get()
    assert (stored.task_name, stored.args, stored.kwargs) == (
        "governance.checks.sweep", [], {"checks": ["owner-active"], "trigger": "test"})
    assert stored.published_at is None and stored.message_id == message.message_id


@pytest.mark.embedded
@pytest.mark.django_db
def test_publish_after_commit_runs_the_task_with_the_message_id_as_task_id(personas, django_capture_on_commit_callbacks,
                                                                           mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = mail_queue(subject="[Steward] hello", body="b", recipients=[personas.owner.email])
    message = OutboxMessage.objects.get()
    assert message.published_at is not None and message.attempts == 1 and message.last_error == ""
    delivery.refresh_from_db()
    assert delivery.status == MailStatus.SENT and delivery.attempts == 1
    assert [m.subject for m in mailoutbox] == ["[Steward] hello"]
    # a second delivery of the same message (a relay that published twice) sends nothing
    assert mail_deliver.apply(args=[delivery.pk], task_id=str(message.message_id)).get() == "not-due-or-claimed"
    assert len(mailoutbox) == 1


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_broker_that_refuses_leaves_the_row_with_its_error_and_a_backoff(dead_broker,
                                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(sweep_task, checks=["owner-active"], trigger="test")
    row = OutboxMessage.objects.get()
    assert row.published_at is None and row.attempts == 1
    assert "OperationalError" in row.last_error and row.next_attempt_at > timezone.now()
    assert outbox.outbox_relay_once() == {"claimed": 0, "published": 0, "failed": 0}  # not due yet: backoff
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    assert outbox.outbox_relay_once() == {"claimed": 1, "published": 0, "failed": 1}
    row.refresh_from_db()
    assert row.attempts == 2 and row.published_at is None


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_relay_publishes_to_the_embedded_filesystem_broker(monkeypatch, tmp_path,
                                                               django_capture_on_commit_callbacks):
    """`make run`'s broker: kombu's filesystem transport (here in a folder of the test's own)."""
    from portal.celery import app

    queue = tmp_path / "queue"
    queue.mkdir()
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")
    monkeypatch.setattr(app.conf, "broker_transport_options", {
        "data_folder_in": str(queue), "data_folder_out": str(queue), "control_folder": str(tmp_path / "control"),
        "store_processed": False})
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        message = outbox.enqueue(sweep_task, checks=["owner-active"], trigger="test")
    call_command("outbox_relay", "--once")
    message.refresh_from_db()
    assert message.published_at is not None and message.attempts == 1
    (published,) = list(queue.iterdir())
    assert str(message.message_id) in published.read_text()  # the row's id travels as the task id


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_dedupe_key_joins_the_unpublished_message(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = outbox.enqueue(sweep_task, dedupe_key="recover:job:7", checks=["a"])
        second = outbox.enqueue(sweep_task, dedupe_key="recover:job:7", checks=["a"])
        other = outbox.enqueue(sweep_task, dedupe_key="recover:job:8", checks=["a"])
    assert first.pk == second.pk != other.pk and OutboxMessage.objects.count() == 2
    OutboxMessage.objects.filter(pk=first.pk).update(published_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=False):
        again = outbox.enqueue(sweep_task, dedupe_key="recover:job:7", checks=["a"])
    assert again.pk not in (first.pk, other.pk)  # once published, the key is free again


@pytest.mark.django_db
def test_a_countdown_becomes_the_tasks_eta(live_broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(sweep_task, countdown=600, checks=["a"])
    row = OutboxMessage.objects.get()
    assert row.published_at is not None and row.eta > timezone.now() + dt.timedelta(seconds=590)
    assert live_broker.waiting() == 1


def test_concurrent_relays_publish_each_row_once(transactional_db, monkeypatch):
    rows = OutboxMessage.objects.bulk_create(
        [OutboxMessage(task_name="governance.checks.sweep", kwargs={"checks": [str(i)]}) for i in range(60)])
    sent: list[str] = []
    lock = threading.Lock()

    def record(row, connection_):
        with lock:
            sent.append(str(row.message_id))

    monkeypatch.setattr(outbox, "_send", record)
    start = threading.Barrier(4)

    def relay():
        from django.db import connection as thread_connection

        start.wait()
        try:
            while outbox.outbox_relay_once(limit=7)["claimed"]:
                pass
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(sent) == sorted(str(r.message_id) for r in rows)  # every row, none twice
    assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()


def test_a_locked_row_is_skipped_by_another_relay(transactional_db, monkeypatch):
    """PostgreSQL: a relay that holds rows (FOR UPDATE) makes the next one take the others (SKIP LOCKED)."""
    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("SQLite serialises writing transactions instead of locking rows")
    OutboxMessage.objects.bulk_create([OutboxMessage(task_name="governance.checks.sweep") for _ in range(4)])
    held, release = threading.Event(), threading.Event()
    sent: list[int] = []
    monkeypatch.setattr(outbox, "_send", lambda row, connection_: sent.append(row.pk))

    def holder():
        from django.db import connection as thread_connection

        with transaction.atomic():
            list(OutboxMessage.objects.select_for_update().order_by("id")[:2])
            held.set()
            release.wait(timeout=30)
        thread_connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(timeout=30)
    try:
        assert outbox.outbox_relay_once()["claimed"] == 2
    finally:
        release.set()
        thread.join(timeout=30)
    first_two = list(OutboxMessage.objects.order_by("id").values_list("pk", flat=True)[:2])
    assert sorted(sent) == sorted(set(OutboxMessage.objects.values_list("pk", flat=True)) - set(first_two))


# Broker down: everything answers, everything completes once -----------------------------------------------------


@pytest.fixture
def outage_estate(personas, estate, kv_store, openbao, settings):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    flow = WorkflowFactory(name=unique("deploy"), owner=personas.owner, team=personas.team)
    kill_path, rotate_path = f"app/{unique('deploy-key')}", f"app/{unique('rotated')}"
    kv_put(openbao, kill_path, {"value": "v"})
    kv_put(openbao, rotate_path, {"value": "v"})
    killed = make_credential(personas, store=kv_store, path=kill_path)
    Binding.objects.create(workflow=flow, credential=killed, purpose="deploy")
    rotated = make_credential(personas, store=kv_store, path=rotate_path)
    make_policy(name="Standard", groups=[personas.other_team.group, personas.team.group])
    _, token = make_integration(owner=personas.owner, scopes=["read", "file_requests"], name="jira")
    _, decider = make_integration(owner=personas.approver, scopes=["read", "decide_requests"], name="chatops")
    return {"flow": flow, "killed": killed, "rotated": rotated, "rotate_path": rotate_path, "token": token,
            "decider": decider}


def test_broker_down_kill_switch_rotation_reports_webhook_and_mail_answer_and_complete_once(
        live_broker, worker_factory, outage_estate, personas, estate, openbao, client, tmp_path):
    from rest_framework.test import APIClient

    with Receiver() as receiver:
        make_endpoint(owner=personas.owner, url=receiver.url, event_types=["approval_request.filed"])
        baseline = set(OutboxMessage.objects.values_list("pk", flat=True))
        live_broker.kill()  # the outage begins

        client.force_login(personas.owner)
        api = APIClient()
        answers = {
            "kill switch (portal)": client.post(reverse("killswitch-confirm", args=[outage_estate["flow"].pk]),
                                                {"reason": "Token leaked"}),
            "rotate now (portal)": client.post(reverse("credential-rotate", args=[outage_estate["rotated"].pk])),
            "report (portal)": client.post(reverse("report-list"), {"kind": "inventory", "scope": "team:Payments"}),
            "report (API)": api.post("/api/v1/report-jobs/", {"kind": "inventory",
                                                             "parameters": {"scope": "team:Payments"}},
                                     format="json", HTTP_IDEMPOTENCY_KEY="report-1",
                                     **bearer(outage_estate["token"])),
            "file a request (API)": api.post("/api/v1/approval-requests/", {
                "action": "ownership_transfer", "target_type": "governance.credential",
                "target_id": estate["credential"].pk, "payload": {"new_owner": personas.backup_owner.pk},
                "justification": "Olivia moves to Platform"}, format="json", HTTP_IDEMPOTENCY_KEY="file-1",
                **bearer(outage_estate["token"])),
        }
        filed = answers["file a request (API)"].json()["id"]
        answers["approve it (API)"] = api.post(f"/api/v1/approval-requests/{filed}/approve/", {"comment": "ok"},
                                               format="json", **bearer(outage_estate["decider"]))
        statuses = {what: response.status_code for what, response in answers.items()}
        assert statuses == {"kill switch (portal)": 302, "rotate now (portal)": 302, "report (portal)": 302,
                            "report (API)": 201, "file a request (API)": 201, "approve it (API)": 200}
        assert answers["approve it (API)"].json()["status"] == "executed"

        waiting = OutboxMessage.objects.exclude(pk__in=baseline)
        mails = MailDelivery.objects.all()
        assert mails.count() >= 1 and WebhookDelivery.objects.count() == 1
        names = sorted(waiting.values_list("task_name", flat=True))
        assert names == sorted(["governance.lifecycle.kill_switch_run", "governance.lifecycle.rotation_batch_run",
                                "reports.tasks.run_report_job", "reports.tasks.run_report_job",
                                "governance.webhooks.deliver", *["governance.mail.deliver"] * mails.count()])
        assert all(m.published_at is None and m.attempts == 1 and "OperationalError" in m.last_error
                   for m in waiting)
        activation = KillSwitchActivation.objects.get()
        assert activation.status == KillSwitchStatus.RUNNING  # suspended in Steward, its steps wait for a worker

        live_broker.start()  # the broker returns (empty: what it held was lost with it)
        OutboxMessage.objects.update(next_attempt_at=timezone.now())  # the backoff has passed
        call_command("outbox_relay", "--once")
        assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()

        worker = worker_factory()

        def all_done():
            activation.refresh_from_db()
            return (activation.status != KillSwitchStatus.RUNNING
                    and not RotationJob.objects.exclude(status=RotationStatus.SUCCEEDED).exists()
                    and ReportJob.objects.filter(status=ReportJobStatus.SUCCEEDED).count() == 2
                    and WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 1
                    and not MailDelivery.objects.exclude(status=MailStatus.SENT).exists())

        wait_for(all_done, timeout=180, what="the work queued during the outage", worker=worker)
        call_command("outbox_relay", "--once")  # nothing is left to publish again
        wait_for(lambda: live_broker.waiting() == 0, timeout=60, what="the queue drained", worker=worker)
        worker.stop()
        received = len(receiver.received)

    # Its KV-only key leaves a step done by hand at the issuer: the connector steps ran, once.
    assert activation.status == KillSwitchStatus.AWAITING_MANUAL
    counted = {action: AuditEvent.objects.filter(action=action).count()
               for action in ("credential.suspend", "killswitch.activate_awaiting", "credential.rotate",
                              "report.generate", "rotation.request", "report.request")}
    assert counted == {"credential.suspend": 1, "killswitch.activate_awaiting": 1, "credential.rotate": 1,
                       "report.generate": 2, "rotation.request": 1, "report.request": 2}
    assert kv_version(openbao, outage_estate["rotate_path"]) == 2  # one rotation: version 1 -> 2
    assert received == 1  # the filed event reached the receiver once
    subjects = Counter(MailDelivery.objects.values_list("subject", flat=True))
    assert {s: mails_written(tmp_path, s) for s in subjects} == dict(subjects)  # each delivery sent once
    assert set(MailDelivery.objects.values_list("attempts", flat=True)) == {1}


def test_a_relay_that_dies_after_publishing_publishes_again_and_the_work_runs_once(
        live_broker, worker_factory, personas, estate, monkeypatch, tmp_path):
    def die_before_marking(row):
        raise SystemError("relay killed between publishing and marking the row published")

    with monkeypatch.context() as dying:
        dying.setattr(outbox, "_mark_published", die_before_marking)
        job = report_job_create(actor=Actor.for_user(personas.owner), kind="inventory",
                                parameters={"scope": "team:Payments"})
        mail = mail_queue(subject="[Steward] once only", body="b", recipients=[personas.owner.email])
    assert live_broker.waiting() == 2  # both messages reached the broker ...
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 2  # ... and neither row knows it

    OutboxMessage.objects.update(next_attempt_at=timezone.now())  # the dead publisher's claim lapses
    assert outbox.outbox_relay_once() == {"claimed": 2, "published": 2, "failed": 0}
    assert live_broker.waiting() == 4  # each message twice, with the same task id

    worker = worker_factory()
    wait_for(lambda: live_broker.waiting() == 0, timeout=120, what="the four messages handled", worker=worker)
    worker.stop()
    job.refresh_from_db()
    mail.refresh_from_db()
    assert job.status == ReportJobStatus.SUCCEEDED and mail.status == MailStatus.SENT and mail.attempts == 1
    assert AuditEvent.objects.filter(action="report.generate").count() == 1
    assert mails_written(tmp_path, "[Steward] once only") == 1
    log = worker.output()
    message_id = str(OutboxMessage.objects.get(task_name="reports.tasks.run_report_job").message_id)
    assert log.count(f"reports.tasks.run_report_job[{message_id}] succeeded") == 2
    assert "'already-claimed'" in log and "'not-due-or-claimed'" in log
