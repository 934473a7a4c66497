"""Leases and recovery: the lease helper, and real workers killed with SIGKILL mid-way (issue 15).

The worker tests start a real `celery -A portal worker` (pool solo) against the test database and
the test's Redis broker, make it wait at a real point (a lock the test holds: a PostgreSQL role
being altered, a credential row, a sweep's per-check advisory lock), kill it with SIGKILL, and run
the recovery task: each unit of work finishes exactly once, counted in OpenBao versions, steps and
audit events.
"""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from governance import leases
from governance.audit import Actor, verify_chain
from governance.connectors import registry
from governance.models import AuditEvent, Binding
from governance.models.checks import Check, Finding, SweepRun, SweepStatus
from governance.models.lifecycle import (
    MANUAL_ACTIONS,
    CredentialRevocation,
    KillSwitchActivation,
    KillSwitchStatus,
    RevocationStatus,
    RotationJob,
    RotationStatus,
    StepStatus,
)
from governance.services.killswitch import killswitch_activate
from governance.services.sweep import SWEEP_LOCK_CLASS
from governance.tasks.checks import sweep_task
from governance.tasks.leases import leases_recover_task
from governance.tasks.lifecycle import rotation_batch_run
from reports import builders
from reports.models import ReportJob
from reports.services import report_job_create, report_job_run
from tests.celery_worker import CeleryWorker, broker_flush, wait_for
from tests.factories import CredentialFactory, WorkflowFactory
from tests.factories_checks import load_catalogue
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    fresh_connectors,
    kv,
    kv_put,
    kv_store,
    make_credential,
    openbao,
    pg_cluster,
    pg_login,
    pg_role,
    pg_system,
    unique,
)

LEASE_SECONDS = 3


# The lease helper ------------------------------------------------------------------------------

@pytest.fixture
def short_lease(settings):
    settings.STEWARD_LEASE_SECONDS = LEASE_SECONDS
    return settings


def running_run(**fields) -> SweepRun:
    return SweepRun.objects.create(started_at=timezone.now(), trigger="test", checks=[], **fields)


def lapse(model, pk) -> None:
    model.objects.filter(pk=pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_claim_holds_the_row_until_its_lease_lapses(short_lease):
    run = running_run()  # running without a holder: free to claim
    first = leases.lease_claim(SweepRun, run.pk, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING,
                               owner="first")
    assert first is not None and not first.took_over
    run.refresh_from_db()
    assert (run.lease_token, run.lease_owner) == (first.token, "first")
    assert run.lease_expires_at > timezone.now() + dt.timedelta(seconds=LEASE_SECONDS - 1)
    assert leases.lease_claim(SweepRun, run.pk, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING) is None
    lapse(SweepRun, run.pk)
    second = leases.lease_claim(SweepRun, run.pk, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING,
                                owner="second")
    assert second is not None and second.took_over == {run.pk} and second.takeovers == {run.pk: 1}
    run.refresh_from_db()
    assert (run.lease_token, run.lease_owner, run.lease_takeovers) == (second.token, "second", 1)


@pytest.mark.embedded
@pytest.mark.django_db
def test_renewal_pushes_the_expiry_and_a_stale_holder_can_neither_renew_nor_finish(short_lease):
    run = running_run()
    stale = leases.lease_claim(SweepRun, run.pk, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING)
    SweepRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() + dt.timedelta(seconds=1))
    assert stale.renew() == 1
    run.refresh_from_db()
    assert run.lease_expires_at > timezone.now() + dt.timedelta(seconds=LEASE_SECONDS - 1)
    lapse(SweepRun, run.pk)
    current = leases.lease_claim(SweepRun, run.pk, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING)
    assert stale.renew() == 0 and not stale.holds()
    stale.renewed_at = timezone.now() - dt.timedelta(seconds=LEASE_SECONDS)  # its heartbeat is due
    with pytest.raises(leases.LeaseLost):
        stale.heartbeat()
    assert not stale.release(target=SweepStatus.SUCCEEDED, finished_at=timezone.now())
    assert SweepRun.objects.get(pk=run.pk).status == SweepStatus.RUNNING
    assert current.release(target=SweepStatus.FAILED, finished_at=timezone.now(), errors={"x": "y"})
    run.refresh_from_db()
    assert (run.status, run.lease_token, run.lease_expires_at) == (SweepStatus.FAILED, "", None)


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_batch_claim_takes_the_free_and_the_lapsed_rows_and_releases_only_those_it_still_holds(short_lease):
    free = running_run()
    lost = running_run(lease_token="dead", lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    held = running_run(lease_token="alive", lease_expires_at=timezone.now() + dt.timedelta(minutes=1))
    done = running_run()
    SweepRun.objects.filter(pk=done.pk).update(status=SweepStatus.SUCCEEDED)
    lease = leases.lease_claim_many(SweepRun, [free.pk, lost.pk, held.pk, done.pk], sources=[SweepStatus.RUNNING],
                                    running=SweepStatus.RUNNING)
    assert lease.pks == (free.pk, lost.pk) and lease.took_over == {lost.pk} and lease.takeovers == {lost.pk: 1}
    assert set(SweepRun.objects.filter(lease_token=lease.token).values_list("pk", flat=True)) == {free.pk, lost.pk}
    SweepRun.objects.filter(pk=lost.pk).update(lease_token="taken-over-meanwhile")
    released = lease.release_many({free.pk: {"counts": {"a": 1}}, lost.pk: {"counts": {"b": 2}}},
                                  target=SweepStatus.SUCCEEDED)
    assert released == {free.pk}
    assert SweepRun.objects.filter(pk=free.pk).values_list("status", "counts", "lease_token").get() == (
        SweepStatus.SUCCEEDED, {"a": 1}, "")
    assert SweepRun.objects.filter(pk=lost.pk).values_list("status", "counts").get() == (SweepStatus.RUNNING, {})


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_heartbeat_renews_only_once_a_third_of_the_lease_has_passed(short_lease, django_assert_num_queries):
    run = running_run()
    lease = leases.lease_claim(SweepRun, run.pk, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING)
    with django_assert_num_queries(0):
        lease.heartbeat()
    lease.renewed_at -= dt.timedelta(seconds=LEASE_SECONDS)
    with django_assert_num_queries(1):
        lease.heartbeat()


@pytest.mark.embedded
@pytest.mark.django_db
def test_work_taken_over_too_often_is_exhausted(short_lease):
    run = running_run(lease_token="dead", lease_takeovers=leases.max_takeovers(),
                      lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    lease = leases.lease_claim(SweepRun, run.pk, sources=[SweepStatus.RUNNING], running=SweepStatus.RUNNING)
    assert lease.exhausted()


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_recovery_resumes_lapsed_work_and_leaves_held_work_alone(short_lease):
    held = running_run(lease_token="alive", lease_expires_at=timezone.now() + dt.timedelta(minutes=1))
    lost = running_run(lease_token="dead", lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert leases_recover_task.apply().get() == {"sweep_runs": {"succeeded": 1}}
    held.refresh_from_db()
    lost.refresh_from_db()
    assert (held.status, held.lease_token) == (SweepStatus.RUNNING, "alive")
    assert (lost.status, lost.lease_takeovers, lost.lease_token) == (SweepStatus.SUCCEEDED, 1, "")
    assert leases_recover_task.apply().get() == {}  # nothing lapsed any more


@pytest.mark.django_db
def test_a_revocation_whose_worker_was_lost_after_revoking_is_recorded_not_revoked_again(
        personas, kv_store, openbao, kv, short_lease):
    path = f"app/{unique('revoked')}"
    kv_put(openbao, path, {"value": "live"})
    credential = make_credential(personas, store=kv_store, path=path)
    revocation = CredentialRevocation.objects.create(
        credential=credential, reason="manual", status=RevocationStatus.RUNNING, lease_token="a-dead-worker",
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    connector, ref = registry.connector_for(credential)
    connector.revoke(ref)  # what the dead worker did before it could record it
    destroyed = kv.metadata(path)["versions"]
    assert leases_recover_task.apply().get() == {"revocations": {"succeeded": 1}}
    revocation.refresh_from_db()
    credential.refresh_from_db()
    assert (revocation.status, credential.status) == (RevocationStatus.SUCCEEDED, "revoked")
    assert revocation.proof[0].startswith("Found already revoked in its system")
    assert kv.metadata(path)["versions"] == destroyed  # nothing was destroyed a second time
    assert events("credential.revoke", credential) == 1


@pytest.mark.django_db
def test_a_report_job_whose_renderer_was_lost_is_rendered_again_once(personas, estate, settings, short_lease,
                                                                     tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = report_job_create(actor=Actor.for_user(personas.auditor), kind="inventory", parameters={}, enqueue=False)
    ReportJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now(), lease_token="dead",
                                               lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    reports_dir = settings.MEDIA_ROOT / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    leftover = reports_dir / f".{job.pk}-dead.pdf.partial"
    leftover.write_bytes(b"%PDF half")
    assert leases_recover_task.apply().get() == {"report_jobs": {"succeeded": 1}}
    job.refresh_from_db()
    assert (job.status, job.lease_takeovers, job.lease_token) == ("succeeded", 1, "")
    assert len(job.sha256) == 64 and not leftover.exists()
    assert events("report.generate", job) == 1
    assert leases_recover_task.apply().get() == {}


@pytest.mark.django_db
def test_a_renderer_whose_job_was_taken_over_publishes_nothing(personas, estate, settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = report_job_create(actor=Actor.for_user(personas.auditor), kind="inventory", parameters={}, enqueue=False)
    real_build = builders.build

    def build(*args, **kwargs):  # meanwhile, its lease lapsed and another worker took the job over
        ReportJob.objects.filter(pk=job.pk).update(lease_token="the-new-holder")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(builders, "build", build)
    job = report_job_run(job_id=job.pk)
    assert (job.status, job.file.name, job.sha256, job.lease_token) == ("running", "", "", "the-new-holder")
    assert list((tmp_path / "media" / "reports").iterdir()) == []
    assert events("report.generate", job) == 0 and events("report.fail", job) == 0


def test_celery_is_configured_for_leases(settings):
    from portal.celery import app

    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        assert app.conf.broker_transport_options["visibility_timeout"] > settings.STEWARD_LEASE_SECONDS
    entries = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert entries["governance.leases.recover"] <= 60


# Workers killed mid-way ------------------------------------------------------------------------

needs_redis = pytest.mark.skipif(not django_settings.CELERY_BROKER_URL.startswith("redis://"),
                                 reason="a real worker needs the Redis broker (CELERY_BROKER_URL=redis://...)")


@pytest.fixture
def worker(tmp_path, short_lease):
    broker_flush()
    process = CeleryWorker(tmp_path / "worker.log", STEWARD_LEASE_SECONDS=str(LEASE_SECONDS)).start()
    yield process
    process.kill()
    broker_flush()


def wait_until_lapsed(model, pks) -> None:
    wait_for(lambda: model.objects.filter(pk__in=pks, lease_expires_at__lt=timezone.now()).count() == len(pks),
             timeout=LEASE_SECONDS * 5, what="the lapse of the dead worker's leases")


def events(action: str, obj) -> int:
    return AuditEvent.objects.filter(action=action, object_id=str(obj.pk)).count()


def waiting_on_a_lock(cursor, query_start: str) -> bool:
    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock' AND query ILIKE %s", [query_start + "%"])
    return cursor.fetchone()[0] > 0


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_rotation_batch_whose_worker_is_killed_mid_way_rotates_each_credential_once(
        personas, kv_store, openbao, kv, pg_system, pg_role, pg_cluster, worker):
    """Reproduction: a rotation killed mid-way rotated a second time (version 2 never recorded, version 3 was)."""
    paths = [f"app/{unique('killed')}" for _ in range(3)]
    for path in paths:
        kv_put(openbao, path, {"value": "initial"})
    kv_credentials = [make_credential(personas, store=kv_store, path=p) for p in paths]
    pg_credential = make_credential(personas, store=kv_store, path=f"secret/data/{pg_role['path']}", system=pg_system,
                                    kind="password", identifier=pg_role["name"])
    # Batch order (job pk): two KV credentials, the PostgreSQL role, one more KV credential.
    credentials = [kv_credentials[0], kv_credentials[1], pg_credential, kv_credentials[2]]
    kv_paths = {kv_credentials[0].pk: paths[0], kv_credentials[1].pk: paths[1], pg_credential.pk: pg_role["path"],
                kv_credentials[2].pk: paths[2]}
    jobs = [RotationJob.objects.create(credential=c, due_on=timezone.now().date(), trigger="schedule")
            for c in credentials]
    # The slow point: the test alters the role in a transaction it keeps open, so the worker's ALTER ROLE
    # waits, after it rotated the first two credentials in OpenBao and before it recorded anything.
    blocker = psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, dbname="postgres",
                              user=pg_cluster.admin_user, password=pg_cluster.admin_password, sslmode="disable")
    try:
        blocker.execute(f'ALTER ROLE "{pg_role["name"]}" CONNECTION LIMIT 50')
        rotation_batch_run.delay([job.pk for job in jobs])
        with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, dbname="postgres", autocommit=True,
                             user=pg_cluster.admin_user, password=pg_cluster.admin_password,
                             sslmode="disable") as watcher:
            wait_for(lambda: waiting_on_a_lock(watcher.cursor(), "ALTER ROLE"), timeout=60,
                     what="the worker's wait on the role", log=worker.log)
        assert [kv.current_version(paths[0]), kv.current_version(paths[1]), kv.current_version(paths[2])] == [2, 2, 1]
        worker.kill()
    finally:
        blocker.rollback()
        blocker.close()
    assert set(RotationJob.objects.filter(pk__in=[j.pk for j in jobs]).values_list("status", flat=True)) == {
        RotationStatus.RUNNING}
    assert AuditEvent.objects.filter(action="credential.rotate").count() == 0  # nothing was recorded
    wait_until_lapsed(RotationJob, [j.pk for j in jobs])

    assert leases_recover_task.apply().get() == {"rotation_jobs": {"succeeded": 4}}

    for job, credential in zip(jobs, credentials, strict=True):
        job.refresh_from_db()
        credential.refresh_from_db()
        path = kv_paths[credential.pk]
        assert kv.current_version(path) == 2, "one new version per credential, not a second one"
        assert len(kv.metadata(path)["versions"]) == 2
        assert (job.status, job.new_version, credential.store_version) == (RotationStatus.SUCCEEDED, "2", "2")
        assert list(job.attempts.values_list("number", "outcome", "error_code")) == [
            (1, "failed", "lost"), (2, "succeeded", "")]
        assert events("credential.rotate", credential) == 1
        assert job.lease_takeovers == 1 and job.lease_token == ""
    # The versions the dead worker wrote are the ones recorded (read back, not rotated again).
    for job in jobs[:2]:
        assert "not rotated again" in job.attempts.get(number=2).proof[0]
    assert "not rotated again" not in jobs[3].attempts.get(number=2).proof[0]
    new_password = kv.read_value(pg_role["path"])["password"]
    assert pg_login(pg_cluster, pg_role["name"], new_password)
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    # Run twice: the recovery and a redelivered batch message both find nothing to do.
    assert leases_recover_task.apply().get() == {}
    assert rotation_batch_run.apply(args=[[j.pk for j in jobs]]).get() == {"skipped": 4}
    assert all(kv.current_version(kv_paths[c.pk]) == 2 for c in credentials)
    assert verify_chain().intact


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_kill_switch_whose_worker_is_killed_mid_way_finishes_once_and_rechecks_the_begun_step(
        personas, kv_store, openbao, kv, worker):
    paths = [f"app/{unique('ks')}" for _ in range(3)]
    for path in paths:
        kv_put(openbao, path, {"value": "live"})
    workflow = WorkflowFactory(name=unique("wf"), owner=personas.owner, team=personas.team, status="active")
    credentials = [make_credential(personas, store=kv_store, path=p) for p in paths]
    for credential in credentials:
        Binding.objects.create(workflow=workflow, credential=credential, purpose="deploy")
    path_of = {c.pk: p for c, p in zip(credentials, paths, strict=True)}
    credentials.sort(key=lambda c: (c.name, c.pk))  # the order of the kill switch's steps
    paths = [path_of[c.pk] for c in credentials]
    steward = psycopg.connect(**psycopg_params_of_test_database())
    try:
        # The slow point: the test holds the second credential's row, so the worker suspends it in OpenBao
        # and then waits to record it.
        steward.execute("SELECT id FROM governance_credential WHERE id = %s FOR NO KEY UPDATE", [credentials[1].pk])
        activation = killswitch_activate(actor=Actor.for_user(personas.secadmin), workflow=workflow,
                                          reason="Leaked deploy key")
        with connection.cursor() as cursor:
            wait_for(lambda: waiting_on_a_lock(cursor, 'UPDATE "governance_credential"'), timeout=60,
                     what="the worker's wait on the credential", log=worker.log)
        assert kv.read_value(paths[1]) is None  # suspended in its system, not yet recorded
        worker.kill()
    finally:
        steward.rollback()
        steward.close()
    steps = {s.credential_id: s for s in activation.steps.exclude(credential=None).exclude(action__in=MANUAL_ACTIONS)}
    assert [steps[c.pk].status for c in credentials] == [StepStatus.SUCCEEDED, StepStatus.RUNNING,
                                                          StepStatus.PENDING]
    wait_until_lapsed(KillSwitchActivation, [activation.pk])

    # KV-only keys: the connector steps finish, the steps at the issuer wait for a person.
    assert leases_recover_task.apply().get() == {"kill_switches": {KillSwitchStatus.AWAITING_MANUAL: 1}}

    activation.refresh_from_db()
    assert (activation.status, activation.lease_takeovers) == (KillSwitchStatus.AWAITING_MANUAL, 1)
    steps = {s.credential_id: s for s in activation.steps.exclude(credential=None).exclude(action__in=MANUAL_ACTIONS)}
    for credential, path in zip(credentials, paths, strict=True):
        credential.refresh_from_db()
        assert credential.status == "suspended" and steps[credential.pk].status == StepStatus.SUCCEEDED
        assert kv.read_value(path) is None
        assert events("credential.suspend", credential) == 1
    assert "Found already suspended in its system" in steps[credentials[1].pk].detail  # re-checked, not redone
    assert "Found already" not in steps[credentials[2].pk].detail
    assert events("killswitch.activate_awaiting", workflow) == 1
    assert leases_recover_task.apply().get() == {}
    assert verify_chain().intact


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_sweep_whose_worker_is_killed_mid_way_is_resumed_from_its_check_and_finishes_once(worker):
    """Reproduction: a sweep killed mid-way stayed "running" forever."""
    load_catalogue()
    overdue = timezone.now() - dt.timedelta(days=400)
    credentials = [CredentialFactory(last_rotated_at=overdue, human_use_detected=True) for _ in range(3)]
    codes = ["owner-named", "rotation-age", "human-use"]
    order = list(Check.objects.filter(code__in=codes).order_by("sort_order", "code"))
    steward = psycopg.connect(**psycopg_params_of_test_database(), autocommit=True)
    try:
        # The slow point: the sweep's per-check advisory lock on the second check, held by the test.
        steward.execute("SELECT pg_advisory_lock(%s, %s)", [SWEEP_LOCK_CLASS, order[1].pk])
        sweep_task.delay(checks=codes, trigger="test")
        wait_for(lambda: SweepRun.objects.filter(counts__has_key=order[0].code).exists(), timeout=60,
                 what="the first check's counts", log=worker.log)
        with connection.cursor() as cursor:
            wait_for(lambda: waiting_on_a_lock(cursor, "SELECT pg_advisory_xact_lock"), timeout=30,
                     what="the worker's wait on the second check", log=worker.log)
        worker.kill()
    finally:
        steward.close()  # the advisory lock goes with the session
    run = SweepRun.objects.get()
    assert run.status == SweepStatus.RUNNING and list(run.counts) == [order[0].code]
    first_counts = run.counts[order[0].code]
    wait_until_lapsed(SweepRun, [run.pk])

    assert leases_recover_task.apply().get() == {"sweep_runs": {SweepStatus.SUCCEEDED: 1}}

    run.refresh_from_db()
    assert SweepRun.objects.count() == 1
    assert run.status == SweepStatus.SUCCEEDED and run.errors == {} and run.finished_at is not None
    assert set(run.counts) == set(codes) and run.counts[order[0].code] == first_counts  # not evaluated twice
    assert run.lease_takeovers == 1
    opened = Finding.objects.filter(failed_check__code__in=["rotation-age", "human-use"],
                                    object_id__in=[c.pk for c in credentials], object_type="governance.credential")
    assert opened.count() == 6
    assert AuditEvent.objects.filter(action="finding.open").count() == Finding.objects.count()
    assert leases_recover_task.apply().get() == {}
    assert verify_chain().intact


def psycopg_params_of_test_database() -> dict:
    db = connection.settings_dict
    params = {"dbname": db["NAME"], "user": db["USER"], "host": db["HOST"] or "127.0.0.1",
              "port": db["PORT"] or 5432}
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    return params
