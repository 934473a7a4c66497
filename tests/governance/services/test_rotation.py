"""Rotation and renewal through the job path, against real OpenBao, PostgreSQL and Redis."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance.audit import Actor, verify_chain
from governance.checks.base import Context
from governance.lifecycle_checks import RotationSucceeds
from governance.models import AuditEvent
from governance.models.lifecycle import AttemptOutcome, RotationJob, RotationStatus
from governance.models.notifications import Notification
from governance.services import rotation
from governance.tasks.lifecycle import rotation_job_run
from tests.factories import SystemFactory
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    dead_store,
    eager_celery,
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
    pki_store,
    redis_admin,
    redis_auth,
    redis_system,
    redis_user,
    unique,
)

pytestmark = [pytest.mark.django_db(transaction=False)]


def request_now(user, credential, capture):
    with capture(execute=True):
        job = rotation.rotation_request(actor=Actor.for_user(user), credential=credential)
    job.refresh_from_db()
    credential.refresh_from_db()
    return job


@pytest.mark.embedded
def test_kv_rotation_makes_a_new_version_with_proof(personas, kv_store, openbao, kv, eager_celery,
                                                    django_capture_on_commit_callbacks):
    path = f"app/{unique('kv')}"
    kv_put(openbao, path, {"value": "initial"})
    credential = make_credential(personas, store=kv_store, path=f"secret/data/{path}")
    before = credential.last_rotated_at
    job = request_now(personas.owner, credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.SUCCEEDED and job.new_version == "2"
    assert credential.store_version == "2" and credential.last_rotated_at > before
    attempt = job.attempts.get()
    assert attempt.outcome == AttemptOutcome.SUCCEEDED and "version 2 is current" in attempt.proof[0]
    assert credential.observation.observed_version == "2"
    assert kv.read_value(path)["value"] != "initial"
    event = AuditEvent.objects.filter(action="credential.rotate", object_id=str(credential.pk)).get()
    assert event.actor_kind == "system" and "version 2" in event.summary
    assert "initial" not in str(event.changes)


def test_postgres_rotation_new_password_works_old_refused(personas, kv_store, pg_system, pg_role, pg_cluster, kv,
                                                          eager_celery, django_capture_on_commit_callbacks):
    credential = make_credential(personas, store=kv_store, path=f"secret/data/{pg_role['path']}", system=pg_system,
                                 kind="password", identifier=pg_role["name"])
    job = request_now(personas.owner, credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.SUCCEEDED, job.last_error
    new_password = kv.read_value(pg_role["path"])["password"]
    assert pg_login(pg_cluster, pg_role["name"], new_password)
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    proof = job.attempts.get().proof
    assert any("previous password is refused" in line for line in proof)
    assert_nowhere_in_steward(new_password, pg_role["password"])


def assert_nowhere_in_steward(*values):
    """Generated secret values live in memory and in OpenBao only: not in any row Steward wrote."""
    from django.apps import apps
    from django.core import serializers

    for model in apps.get_app_config("governance").get_models():
        dump = serializers.serialize("json", model.objects.all())
        for value in values:
            assert value not in dump, f"a secret value was stored in {model.__name__}"


def test_redis_rotation_new_password_works_old_refused(personas, kv_store, redis_system, redis_user, kv,
                                                       eager_celery, django_capture_on_commit_callbacks):
    credential = make_credential(personas, store=kv_store, path=redis_user["path"], system=redis_system,
                                 kind="service_account", identifier=redis_user["name"])
    job = request_now(personas.owner, credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.SUCCEEDED, job.last_error
    new_password = kv.read_value(redis_user["path"])["password"]
    assert redis_auth(redis_user["name"], new_password)
    assert not redis_auth(redis_user["name"], redis_user["password"])
    assert_nowhere_in_steward(new_password, redis_user["password"])


def test_certificate_renewed_before_expiry(personas, pki_store, openbao, eager_celery, settings,
                                           django_capture_on_commit_callbacks):
    from governance.connectors.registry import pki_connector
    from tests.governance.connectors.conftest import ref

    settings.STEWARD_CERT_RENEW_BEFORE_DAYS = 30
    issued = pki_connector(pki_store).issue(ref(name="ingress", kind="certificate", max_age_days=10))
    system = SystemFactory(name=unique("system"), owner=personas.owner, team=personas.team,
                           hosts=["ingress.test.internal"])
    credential = make_credential(personas, store=pki_store, path=issued.store_path, kind="certificate", system=system,
                                 identifier=issued.identifier, expires_at=issued.expires_at, rotation_max_age_days=90)
    not_due = make_credential(personas, store=pki_store, path="pki/cert/aa-bb", kind="certificate",
                              expires_at=timezone.now() + dt.timedelta(days=200))
    with django_capture_on_commit_callbacks(execute=True):
        summary = rotation.rotation_schedule_due()
    assert summary["renewals"] == 1
    credential.refresh_from_db()
    job = RotationJob.objects.get(credential=credential)
    assert job.trigger == "renewal" and job.status == RotationStatus.SUCCEEDED, job.last_error
    assert credential.identifier != issued.identifier
    assert credential.expires_at - issued.expires_at > dt.timedelta(days=70)  # 90-day policy vs 10 days
    assert credential.store_path == f"pki/cert/{credential.identifier.replace(':', '-')}"
    assert not RotationJob.objects.filter(credential=not_due).exists()


@pytest.mark.embedded
def test_redelivered_rotation_task_does_nothing_twice(personas, kv_store, openbao, kv):
    path = f"app/{unique('redelivery')}"
    kv_put(openbao, path, {"value": "x"})
    credential = make_credential(personas, store=kv_store, path=path)
    job = RotationJob.objects.create(credential=credential, due_on=timezone.now().date(), trigger="schedule")
    first = rotation_job_run.apply(args=[job.pk]).get()
    second = rotation_job_run.apply(args=[job.pk]).get()
    assert (first, second) == ("succeeded", "skipped")
    assert job.attempts.count() == 1
    assert kv.current_version(path) == 2
    assert AuditEvent.objects.filter(action="credential.rotate", object_id=str(credential.pk)).count() == 1


def test_a_running_job_whose_lease_ran_out_is_claimed_again(personas, kv_store, openbao, settings):
    path = f"app/{unique('lease')}"
    kv_put(openbao, path, {"value": "x"})
    credential = make_credential(personas, store=kv_store, path=path)
    job = RotationJob.objects.create(credential=credential, due_on=timezone.now().date(), trigger="schedule",
                                     status=RotationStatus.RUNNING, claimed_at=timezone.now(), attempt_count=1,
                                     lease_token="a-worker-that-died", lease_expires_at=timezone.now() + dt.timedelta(
                                         minutes=5))
    assert rotation.rotation_job_execute(job_id=job.pk).status == "skipped"
    RotationJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert rotation.rotation_job_execute(job_id=job.pk).status == "succeeded"
    assert list(job.attempts.values_list("number", "outcome", "error_code")) == [
        (1, "failed", "lost"), (2, "succeeded", "")]  # the attempt the dead worker left is recorded as lost


@pytest.mark.embedded
def test_failing_connector_leaves_the_credential_unchanged(personas, dead_store, eager_celery, mailoutbox,
                                                           django_capture_on_commit_callbacks):
    credential = make_credential(personas, store=dead_store, path="secret/data/app/unreachable")
    before = (credential.last_rotated_at, credential.store_version, credential.status)
    job = request_now(personas.owner, credential, django_capture_on_commit_callbacks)
    assert (credential.last_rotated_at, credential.store_version, credential.status) == before
    assert job.status == RotationStatus.FAILED
    outcomes = list(job.attempts.values_list("outcome", flat=True))
    assert outcomes[-1] == AttemptOutcome.FAILED and set(outcomes[:-1]) <= {AttemptOutcome.RETRYING}
    # transient: the sweep's attempt, then the unit task's first try and its retries, every one recorded
    assert len(outcomes) == 2 + rotation_job_run.max_retries
    assert "did not answer" in job.last_error
    assert AuditEvent.objects.filter(action="credential.rotation_failed", object_id=str(credential.pk)).exists()
    assert [m.to for m in mail.outbox] == [[personas.owner.email]]
    assert "failed" in mail.outbox[0].subject
    assert list(Notification.objects.filter(kind="rotation_failed").values_list("recipient", "object_id")) == [
        (personas.owner.pk, credential.pk)]
    failures = RotationSucceeds().evaluate(Context.current()).failures
    assert ("governance.credential", credential.pk) in failures
    from governance.models.checks import Finding
    from governance.services.sweep import sweep_run

    sweep_run(checks=["rotation-succeeds"], trigger="test")  # what the failure asks for after commit
    assert Finding.objects.filter(failed_check__code="rotation-succeeds", object_id=credential.pk,
                                  state="open").exists()


def test_a_broken_reference_fails_at_once_without_retries(personas, kv_store, eager_celery,
                                                          django_capture_on_commit_callbacks):
    credential = make_credential(personas, store=kv_store, path="secret/data/app/never-written")
    job = request_now(personas.owner, credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.FAILED and job.attempts.count() == 1
    assert job.attempts.get().error_code == "broken"


def test_schedule_is_idempotent_and_uses_observed_times(personas, kv_store, openbao):
    path = f"app/{unique('due')}"
    kv_put(openbao, path, {"value": "x"})
    old = timezone.now() - dt.timedelta(days=200)
    due = make_credential(personas, store=kv_store, path=path, last_rotated_at=old, rotation_max_age_days=90)
    observed_fresh = make_credential(personas, store=kv_store, path=path, last_rotated_at=old,
                                     rotation_max_age_days=90)
    from governance.models.lifecycle import CredentialObservation

    CredentialObservation.objects.create(credential=observed_fresh, state="ok", observed_at=timezone.now(),
                                         observed_rotated_at=timezone.now() - dt.timedelta(days=3))
    first = rotation.rotation_schedule_due()
    second = rotation.rotation_schedule_due()
    assert RotationJob.objects.filter(credential=due).count() == 1
    assert not RotationJob.objects.filter(credential=observed_fresh).exists()
    assert first["scheduled"] >= 1 and second["scheduled"] == 0


def test_only_those_who_may_change_it_request_a_rotation(personas, kv_store):
    credential = make_credential(personas, store=kv_store, path="app/x")
    for person in (personas.outsider, personas.auditor, personas.approver):
        with pytest.raises(PermissionDenied):
            rotation.rotation_request(actor=Actor.for_user(person), credential=credential)


def test_no_connector_for_an_unmanaged_store(personas):
    from tests.factories import SecretStoreFactory

    store = SecretStoreFactory(name=unique("sheet"), kind="spreadsheet", address="https://example.test/x.xlsx")
    credential = make_credential(personas, store=store, path="row 12")
    with pytest.raises(ValidationError, match="No connector"):
        rotation.rotation_request(actor=Actor.for_user(personas.owner), credential=credential)


def test_privileged_rotation_waits_for_an_approved_request(personas, kv_store, openbao, estate, eager_celery,
                                                            django_capture_on_commit_callbacks):
    from governance.models import Binding
    from governance.models.approvals import ApprovalPolicy, ApprovalRequest

    path = f"app/{unique('admin')}"
    kv_put(openbao, path, {"value": "x"})
    credential = make_credential(personas, store=kv_store, path=path, privilege_level="admin")
    policy = ApprovalPolicy.objects.create(name=unique("policy"), actions=[rotation.PRIVILEGED_ROTATION_ACTION])
    workflow = estate["workflow"]
    workflow.approval_policy = policy
    workflow.save()
    Binding.objects.create(workflow=workflow, credential=credential, purpose="deploy")
    job = request_now(personas.owner, credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.AWAITING_APPROVAL and job.attempts.count() == 0
    unapproved = ApprovalRequest(pk=999, action=rotation.PRIVILEGED_ROTATION_ACTION, status="pending")
    with pytest.raises(ValidationError):
        rotation.rotation_job_approve(actor=Actor.system(), credential=credential, approval_request=unapproved)
    approved = ApprovalRequest(pk=1000, action=rotation.PRIVILEGED_ROTATION_ACTION, status="approved")
    with django_capture_on_commit_callbacks(execute=True):
        rotation.rotation_job_approve(actor=Actor.system(task_id="approval-1000"), credential=credential,
                                      approval_request=approved)
    job.refresh_from_db()
    assert job.status == RotationStatus.SUCCEEDED and job.approval_request_id == 1000


@pytest.mark.embedded
def test_the_sweeps_batch_rotates_each_and_records_a_failure_alone(personas, kv_store, openbao, kv):
    from governance.tasks.lifecycle import rotation_batch_run

    old = timezone.now() - dt.timedelta(days=400)
    paths = [f"app/{unique('batch')}" for _ in range(3)]
    for path in paths:
        kv_put(openbao, path, {"value": "x"})
    good = [make_credential(personas, store=kv_store, path=p, last_rotated_at=old) for p in paths]
    broken = make_credential(personas, store=kv_store, path="secret/data/app/gone", last_rotated_at=old)
    jobs = [RotationJob.objects.create(credential=c, due_on=timezone.now().date(), trigger="schedule")
            for c in [*good, broken]]
    counts = rotation_batch_run.apply(args=[[j.pk for j in jobs]]).get()
    assert counts == {"skipped": 0, "failed": 1, "succeeded": 3}
    assert [kv.current_version(p) for p in paths] == [2, 2, 2]
    for job in jobs:
        job.refresh_from_db()
        assert job.attempts.count() == 1
    assert [j.status for j in jobs] == ["succeeded"] * 3 + ["failed"]
    events = AuditEvent.objects.filter(action="credential.rotate").order_by("sequence")
    assert sorted(int(e.object_id) for e in events) == sorted(c.pk for c in good)
    for credential in good:
        before = credential.updated_at
        credential.refresh_from_db()
        assert credential.store_version == "2" and credential.last_rotated_at > old
        assert credential.updated_at > before
        event = events.get(object_id=str(credential.pk))
        assert event.changes["store_version"] == {"before": "1", "after": "2"}
    broken.refresh_from_db()
    assert broken.last_rotated_at == old  # the failure wrote nothing onto its credential
    assert verify_chain().intact
    again = rotation_batch_run.apply(args=[[j.pk for j in jobs]]).get()
    assert again == {"skipped": 4}  # a redelivered batch does nothing twice


def test_a_batch_leaves_a_job_another_worker_reclaimed_to_that_worker(personas, kv_store, openbao, kv, monkeypatch):
    """The lease ran out while the connector worked and another worker claimed the job: its row is not ours."""
    from governance.connectors import registry
    from governance.services import rotation_batch

    old = timezone.now() - dt.timedelta(days=400)
    paths = [f"app/{unique('lease')}" for _ in range(2)]
    for path in paths:
        kv_put(openbao, path, {"value": "x"})
    credentials = [make_credential(personas, store=kv_store, path=p, last_rotated_at=old) for p in paths]
    jobs = [RotationJob.objects.create(credential=c, due_on=timezone.now().date(), trigger="schedule")
            for c in credentials]
    real_connector_for = registry.connector_for

    def connector_for(credential):
        if credential.pk == credentials[1].pk:  # meanwhile, another worker took this job over
            RotationJob.objects.filter(pk=jobs[1].pk).update(lease_token="another-worker")
        return real_connector_for(credential)

    monkeypatch.setattr(rotation.registry, "connector_for", connector_for)
    counts = rotation_batch.rotation_jobs_execute(job_ids=[j.pk for j in jobs])
    # Only the job still held is reported and recorded as rotated; the other is the new holder's to record.
    assert (counts["succeeded"], counts["lost"]) == ([jobs[0].pk], [jobs[1].pk])
    for job in jobs:
        job.refresh_from_db()
    assert (jobs[0].status, jobs[0].new_version) == (RotationStatus.SUCCEEDED, "2")
    assert (jobs[1].status, jobs[1].new_version) == (RotationStatus.RUNNING, "")  # left to the other worker
    credentials[1].refresh_from_db()
    assert credentials[1].store_version == "1"  # a stale holder records nothing
    assert not AuditEvent.objects.filter(action="credential.rotate", object_id=str(credentials[1].pk)).exists()
