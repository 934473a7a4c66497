"""Cloud and CI credentials through the lifecycle services: rotation that delivers to CI, kill switch, revocation.

AWS is moto in server mode (authenticating like AWS), the CI APIs the local stand-in (which
decrypts each sealed box with its private key), OpenBao a real dev server.
"""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import dataclasses

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance.audit import Actor
from governance.choices import CredentialStatus, WorkflowStatus
from governance.models import AuditEvent, Binding
from governance.models.approvals import ApprovalAction
from governance.models.deliveries import DeliveryPush, DeliveryState, PushAction, PushOutcome
from governance.models.lifecycle import (
    KillSwitchMode,
    KillSwitchStatus,
    RevocationStatus,
    RotationJob,
    RotationStatus,
)
from governance.services import deliveries, deprovision, killswitch, rotation
from governance.tasks.lifecycle import rotation_batch_run
from tests.aws_stand_in import aws, aws_settings, iam_user, signs_in  # noqa: F401  (fixture)
from tests.ci_stand_in import GITHUB_TOKEN_ENV, GITLAB_TOKEN_ENV, ci_server, project, repository  # noqa: F401
from tests.factories import SecretStoreFactory, WorkflowFactory
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    eager_celery,
    fresh_connectors,
    kv,
    kv_put,
    kv_store,
    make_credential,
    openbao,
    target_system,
    unique,
)
from tests.governance.services.test_rotation import assert_nowhere_in_steward, request_now
from tests.lifecycle_servers import free_port

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def github_store(db, ci_server):
    return SecretStoreFactory(name=unique("github"), kind="github_actions", address=ci_server.address,
                              credential_env_var=GITHUB_TOKEN_ENV, settings={"timeout": 5})


@pytest.fixture
def gitlab_store(db, ci_server):
    return SecretStoreFactory(name=unique("gitlab"), kind="gitlab_ci", address=ci_server.address,
                              credential_env_var=GITLAB_TOKEN_ENV, settings={"timeout": 5})


@pytest.fixture
def iam_credential(personas, aws, openbao, kv_store):
    """An IAM user's access key kept in OpenBao KV, on an AWS account system with an aws_iam target."""
    user, key = iam_user(aws, prefix="ci-deployer")
    path = f"aws/{unique('ci-deployer')}"
    kv_put(openbao, path, key)
    system = target_system(personas, "aws_iam", aws_settings(aws), "aws-prod")
    credential = make_credential(personas, store=kv_store, path=path, system=system, kind="api_key",
                                 identifier=user, fingerprint=key["access_key_id"])
    credential.test_key, credential.test_path = key, path
    return credential


def deliver(personas, credential, store, repo, name, value_key, environment=""):
    return deliveries.delivery_add(actor=Actor.for_user(personas.owner), credential=credential, store=store,
                                   repository=repo, variable_name=name, value_key=value_key,
                                   environment=environment)


def test_rotation_pushes_the_proven_key_to_github_and_gitlab_in_the_same_job(
        personas, aws, ci_server, iam_credential, github_store, gitlab_store, kv, eager_celery,
        django_capture_on_commit_callbacks):
    repo, gitlab_project = repository(ci_server, "production"), project(ci_server)
    deliver(personas, iam_credential, github_store, repo, "AWS_ACCESS_KEY_ID", "access_key_id")
    deliver(personas, iam_credential, github_store, repo, "AWS_SECRET_ACCESS_KEY", "secret_access_key",
            environment="production")
    deliver(personas, iam_credential, gitlab_store, gitlab_project, "AWS_SECRET_ACCESS_KEY", "secret_access_key")

    job = request_now(personas.owner, iam_credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.SUCCEEDED, job.last_error
    new = kv.read_value(iam_credential.test_path)
    assert signs_in(aws, new) and not signs_in(aws, iam_credential.test_key)
    assert iam_credential.store_version == "2" and iam_credential.fingerprint == new["access_key_id"]
    # The stand-ins opened the sealed boxes / hold the variables: the new value arrived, in the same job.
    assert ci_server.secret_value(repo, "AWS_ACCESS_KEY_ID") == new["access_key_id"]
    assert ci_server.secret_value(repo, "AWS_SECRET_ACCESS_KEY", "production") == new["secret_access_key"]
    variable = ci_server.variable(gitlab_project, "AWS_SECRET_ACCESS_KEY")
    assert variable["value"] == new["secret_access_key"] and variable["masked"] and variable["protected"]
    pushes = DeliveryPush.objects.filter(rotation_job_id=job.pk)
    assert pushes.count() == 3 and {p.outcome for p in pushes} == {PushOutcome.SUCCEEDED}
    assert {d.state for d in iam_credential.deliveries.all()} == {DeliveryState.DELIVERED}
    assert {d.delivered_version for d in iam_credential.deliveries.all()} == {"2"}
    proof = " ".join(job.attempts.get().proof)
    assert "sts:GetCallerIdentity" in proof and "sealed box" in proof and "holds the new value" in proof
    assert AuditEvent.objects.filter(action="credential.deliver", object_id=str(iam_credential.pk)).exists()
    assert_nowhere_in_steward(new["secret_access_key"], iam_credential.test_key["secret_access_key"])


def test_a_failed_push_fails_the_rotation_and_records_the_new_version(
        personas, aws, ci_server, iam_credential, github_store, kv, eager_celery,
        django_capture_on_commit_callbacks):
    repo = repository(ci_server)
    deliver(personas, iam_credential, github_store, repo, "AWS_SECRET_ACCESS_KEY", "secret_access_key")
    missing = deliver(personas, iam_credential, github_store, "acme/not-a-repo", "AWS_SECRET_ACCESS_KEY",
                      "secret_access_key")
    job = request_now(personas.owner, iam_credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.FAILED
    assert "acme/not-a-repo" in job.last_error and "proven" in job.last_error
    attempt = job.attempts.get()
    assert attempt.error_code == "delivery" and job.new_version == "2"
    new = kv.read_value(iam_credential.test_path)
    assert iam_credential.store_version == "2" and signs_in(aws, new)
    assert ci_server.secret_value(repo, "AWS_SECRET_ACCESS_KEY") == new["secret_access_key"]
    missing.refresh_from_db()
    assert missing.state == DeliveryState.FAILED and missing.last_error
    assert DeliveryPush.objects.get(delivery=missing).outcome == PushOutcome.FAILED
    assert AuditEvent.objects.filter(action="credential.rotation_failed", object_id=str(iam_credential.pk)).exists()


def test_the_batch_path_delivers_the_proven_value_once_every_proof_ran(
        personas, aws, ci_server, iam_credential, github_store, kv_store, openbao, kv):
    """rotation_batch_run finds the credentials with deliveries in one query and pushes in the same job."""
    repo = repository(ci_server)
    deliver(personas, iam_credential, github_store, repo, "AWS_SECRET_ACCESS_KEY", "secret_access_key")
    path = f"app/{unique('plain')}"
    kv_put(openbao, path, {"value": "x"})
    plain = make_credential(personas, store=kv_store, path=path)  # no delivery: nothing to push
    failing = make_credential(personas, store=kv_store, path=f"app/{unique('fails')}")
    kv_put(openbao, failing.store_path, {"value": "y"})
    deliver(personas, failing, github_store, "acme/not-a-repo", "VALUE", "value")
    jobs = [RotationJob.objects.create(credential=c, due_on=timezone.now().date(), trigger="schedule")
            for c in (iam_credential, plain, failing)]
    assert rotation_batch_run.apply(args=[[j.pk for j in jobs]]).get() == {"skipped": 0, "succeeded": 2,
                                                                           "failed": 1}
    for job in jobs:
        job.refresh_from_db()
    assert [j.status for j in jobs] == [RotationStatus.SUCCEEDED, RotationStatus.SUCCEEDED, RotationStatus.FAILED]
    new = kv.read_value(iam_credential.test_path)
    assert ci_server.secret_value(repo, "AWS_SECRET_ACCESS_KEY") == new["secret_access_key"]
    assert DeliveryPush.objects.get(rotation_job_id=jobs[0].pk).outcome == PushOutcome.SUCCEEDED
    assert not DeliveryPush.objects.filter(rotation_job_id=jobs[1].pk).exists()
    attempt = jobs[2].attempts.get()
    assert attempt.error_code == "delivery" and jobs[2].new_version == "2"  # rotated and proven, not delivered
    failing.refresh_from_db()
    assert failing.store_version == "2"


def test_an_unreachable_ci_api_is_a_failure_not_a_success(
        personas, aws, iam_credential, eager_celery, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setenv(GITHUB_TOKEN_ENV, "token")
    dead = SecretStoreFactory(name=unique("github-dead"), kind="github_actions",
                              address=f"http://127.0.0.1:{free_port()}", credential_env_var=GITHUB_TOKEN_ENV,
                              settings={"timeout": 2})
    deliver(personas, iam_credential, dead, "acme/app", "AWS_SECRET_ACCESS_KEY", "secret_access_key")
    job = request_now(personas.owner, iam_credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.FAILED and "did not answer" in job.last_error


@pytest.fixture
def pipeline(personas, iam_credential, github_store, gitlab_store, ci_server):
    """A CI pipeline using the IAM key, delivered to a GitHub secret and a GitLab variable."""
    flow = WorkflowFactory(name=unique("deploy"), owner=personas.owner, team=personas.team, kind="cicd_pipeline",
                           shutdown_procedure="Stop the pipeline.", kill_switch_steps="Revoke its AWS key.")
    Binding.objects.create(workflow=flow, credential=iam_credential, purpose="deploy")
    repo, gitlab_project = repository(ci_server), project(ci_server)
    for store, where in ((github_store, repo), (gitlab_store, gitlab_project)):
        delivery = deliver(personas, iam_credential, store, where, "AWS_SECRET_ACCESS_KEY", "secret_access_key")
        registry_push(delivery, iam_credential.test_key["secret_access_key"])
    flow.repo, flow.project = repo, gitlab_project
    return flow


def registry_push(delivery, value):
    from governance.connectors import registry

    registry.ci_connector(delivery.store).push(deliveries.location_of(delivery), value)


def test_kill_switch_deactivates_the_key_at_aws_and_deletes_the_ci_variables(
        personas, aws, ci_server, pipeline, iam_credential, kv, eager_celery, monkeypatch,
        django_capture_on_commit_callbacks):
    assert ci_server.secret_value(pipeline.repo, "AWS_SECRET_ACCESS_KEY") == iam_credential.test_key[
        "secret_access_key"]
    with django_capture_on_commit_callbacks(execute=True):
        activation = killswitch.killswitch_activate(actor=Actor.for_user(personas.owner), workflow=pipeline,
                                                     reason="Key printed in a CI log")
    activation.refresh_from_db()
    iam_credential.refresh_from_db()
    assert activation.status == KillSwitchStatus.COMPLETED, list(activation.steps.values("label", "detail"))
    assert iam_credential.status == CredentialStatus.SUSPENDED
    assert not signs_in(aws, iam_credential.test_key)  # revoked at the issuer, not "act on it by hand"
    assert ci_server.secret_value(pipeline.repo, "AWS_SECRET_ACCESS_KEY") is None
    assert ci_server.variable(pipeline.project, "AWS_SECRET_ACCESS_KEY") is None
    step = activation.steps.get(credential=iam_credential)
    assert any("Inactive at the issuer" in line for line in step.proof)
    assert sum("deleted; the API answers 404" in line for line in step.proof) == 2
    assert {d.state for d in iam_credential.deliveries.all()} == {DeliveryState.WITHDRAWN}

    # Reactivation (approved): a new key, never the one live during the incident, pushed to CI again.
    from governance.services import approvals
    from governance.services.approvals_registry import ACTIONS, get_action
    from tests.factories_approvals import make_policy

    make_policy(groups=[personas.other_team.group])
    spec = get_action(ApprovalAction.REACTIVATION)
    monkeypatch.setitem(ACTIONS, ApprovalAction.REACTIVATION,
                        dataclasses.replace(spec, execute=killswitch.reactivation_approved_execute))
    with django_capture_on_commit_callbacks(execute=True):
        request = approvals.approval_request_file(actor=Actor.for_user(personas.owner),
                                                  action=ApprovalAction.REACTIVATION, target=pipeline, payload={},
                                                  justification="Log purged, key replaced")
    with django_capture_on_commit_callbacks(execute=True):
        approvals.approval_request_approve(actor=Actor.for_user(personas.approver), request_id=request.pk)
    pipeline.refresh_from_db()
    iam_credential.refresh_from_db()
    reactivation = pipeline.kill_switch_activations.get(mode=KillSwitchMode.REACTIVATE)
    assert reactivation.status == KillSwitchStatus.COMPLETED, list(reactivation.steps.values("detail"))
    assert pipeline.status == WorkflowStatus.ACTIVE and iam_credential.status == CredentialStatus.ACTIVE
    new = kv.read_value(iam_credential.test_path)
    assert new["access_key_id"] != iam_credential.test_key["access_key_id"]
    assert signs_in(aws, new) and not signs_in(aws, iam_credential.test_key)
    assert iam_credential.fingerprint == new["access_key_id"]
    assert ci_server.secret_value(pipeline.repo, "AWS_SECRET_ACCESS_KEY") == new["secret_access_key"]
    assert ci_server.variable(pipeline.project, "AWS_SECRET_ACCESS_KEY")["value"] == new["secret_access_key"]


def test_kill_switch_step_fails_when_a_ci_variable_cannot_be_deleted(
        personas, aws, pipeline, iam_credential, eager_celery, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setenv(GITLAB_TOKEN_ENV, "revoked-token")
    with django_capture_on_commit_callbacks(execute=True):
        activation = killswitch.killswitch_activate(actor=Actor.for_user(personas.owner), workflow=pipeline,
                                                     reason="Incident")
    activation.refresh_from_db()
    assert activation.status == KillSwitchStatus.FAILED
    step = activation.steps.get(credential=iam_credential)
    assert step.status == "failed" and "401" in step.detail
    assert not signs_in(aws, iam_credential.test_key)  # the key itself is deactivated all the same
    failed = DeliveryPush.objects.get(kill_switch_step_id=step.pk, outcome=PushOutcome.FAILED)
    assert failed.action == PushAction.DELETE


def test_revocation_deletes_the_ci_variables_then_the_key(
        personas, aws, ci_server, pipeline, iam_credential, kv, eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        revocation = deprovision.credential_revoke(actor=Actor.for_user(personas.owner), credential=iam_credential,
                                                   reason="No longer deployed")
    revocation.refresh_from_db()
    assert revocation.status == RevocationStatus.SUCCEEDED, revocation.error
    assert not signs_in(aws, iam_credential.test_key)
    assert ci_server.secret_value(pipeline.repo, "AWS_SECRET_ACCESS_KEY") is None
    assert ci_server.variable(pipeline.project, "AWS_SECRET_ACCESS_KEY") is None
    assert kv.read_value(iam_credential.test_path) is None
    assert any("deleted; the API answers 404" in line for line in revocation.proof)


def test_a_delivery_names_a_ci_store_and_a_variable(personas, iam_credential, kv_store, github_store):
    with pytest.raises(ValidationError, match="not a CI store"):
        deliver(personas, iam_credential, kv_store, "acme/app", "TOKEN", "value")
    with pytest.raises(ValidationError, match="owner/repo"):
        deliver(personas, iam_credential, github_store, "just-a-name", "TOKEN", "value")
    with pytest.raises(ValidationError, match="letters, digits"):
        deliver(personas, iam_credential, github_store, "acme/app", "NOT-A-NAME", "value")
    with pytest.raises(PermissionDenied):
        deliveries.delivery_add(actor=Actor.for_user(personas.outsider), credential=iam_credential,
                                store=github_store, repository="acme/app", variable_name="TOKEN")
    deliver(personas, iam_credential, github_store, "acme/app", "TOKEN", "value")
    with pytest.raises(ValidationError, match="already receives"):
        deliver(personas, iam_credential, github_store, "acme/app", "TOKEN", "value")


def test_ci_and_secrets_manager_credentials_fall_due_on_schedule_like_kv_ones(personas, github_store):
    import datetime as dt

    from django.utils import timezone

    now = timezone.now()
    old = make_credential(personas, store=github_store, path="acme/app/API_TOKEN", rotation_max_age_days=30,
                          last_rotated_at=now - dt.timedelta(days=45), issued_at=now - dt.timedelta(days=45))
    fresh = make_credential(personas, store=github_store, path="acme/app/OTHER_TOKEN", rotation_max_age_days=30,
                            last_rotated_at=now - dt.timedelta(days=1), issued_at=now - dt.timedelta(days=1))
    due = set(rotation.credentials_due_for_rotation(now=now).values_list("pk", flat=True))
    assert old.pk in due and fresh.pk not in due
    assert "openbao_pki" not in rotation.ROTATED_STORE_KINDS
