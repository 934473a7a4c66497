"""Kill switch, drill and reactivation against real OpenBao, PostgreSQL and Redis."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from governance.audit import Actor
from governance.choices import CredentialStatus, DrillResult, WorkflowStatus
from governance.models import AuditEvent, Binding
from governance.models.approvals import ApprovalAction
from governance.models.lifecycle import MANUAL_ACTIONS, KillSwitchMode, KillSwitchStatus, StepAction, StepStatus
from governance.selectors.lifecycle import workflow_live_credentials
from governance.services import killswitch
from tests.factories import WorkflowFactory
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
    redis_admin,
    redis_auth,
    redis_system,
    redis_user,
    unique,
)

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def workflow(personas, kv_store, openbao, redis_system, redis_user, pg_system, pg_role):
    """A workflow using an API key in OpenBao KV, a Redis ACL user and a PostgreSQL role."""
    flow = WorkflowFactory(name=unique("nightly-etl"), owner=personas.owner, team=personas.team,
                           shutdown_procedure="Stop the DAG.", kill_switch_steps="Suspend its credentials.")
    path = f"app/{unique('etl-key')}"
    kv_put(openbao, path, {"value": "api-key"})
    credentials = {
        "kv": make_credential(personas, store=kv_store, path=path),
        "redis": make_credential(personas, store=kv_store, path=redis_user["path"], system=redis_system,
                                 kind="password", identifier=redis_user["name"]),
        "pg": make_credential(personas, store=kv_store, path=pg_role["path"], system=pg_system,
                              kind="password", identifier=pg_role["name"]),
    }
    for credential in credentials.values():
        Binding.objects.create(workflow=flow, credential=credential, purpose="etl")
    flow.test_credentials = credentials
    flow.kv_path = path
    return flow


def activate(user, workflow, capture, reason="Leaked token in a CI log"):
    with capture(execute=True):
        activation = killswitch.killswitch_activate(actor=Actor.for_user(user), workflow=workflow, reason=reason)
    activation.refresh_from_db()
    return activation


def test_kill_switch_suspends_every_bound_credential_with_proof(personas, workflow, kv, redis_user, pg_role,
                                                                 pg_cluster, eager_celery,
                                                                 django_capture_on_commit_callbacks):
    activation = activate(personas.owner, workflow, django_capture_on_commit_callbacks)
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.SUSPENDED
    steps = list(activation.steps.order_by("position"))
    connector_steps = [s for s in steps if s.action not in MANUAL_ACTIONS]
    assert [s.status for s in connector_steps] == [StepStatus.SUCCEEDED] * 4
    assert all(s.proof for s in connector_steps[1:])
    for credential in workflow.test_credentials.values():
        credential.refresh_from_db()
        assert credential.status == CredentialStatus.SUSPENDED
    assert kv.read_value(workflow.kv_path) is None
    assert not redis_auth(redis_user["name"], redis_user["password"])
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    assert AuditEvent.objects.filter(action="credential.suspend").count() == 3
    # The API key lives only in KV: hiding Steward's copy does not revoke it where it is accepted, so that is a
    # step done by hand, given to the credential's owner, and the kill switch is not complete until it is done.
    manual = [s for s in steps if s.action in MANUAL_ACTIONS]
    assert [(s.action, s.credential_id, s.status, s.assignee) for s in manual] == [
        (StepAction.MANUAL_ISSUER, workflow.test_credentials["kv"].pk, StepStatus.AWAITING, personas.owner)]
    assert activation.status == KillSwitchStatus.AWAITING_MANUAL and activation.finished_at is None
    progress = killswitch.kill_switch_progress(activation)
    assert not progress["finished"] and progress["manual_open"] == 1 and progress["done"] == 4
    assert [row["credential"] for row in workflow_live_credentials(workflow=workflow)] == [
        workflow.test_credentials["kv"]]
    killswitch.killswitch_step_done(actor=Actor.for_user(personas.owner), step=manual[0],
                                    comment="Key revoked in the vendor console, ticket SEC-12")
    activation.refresh_from_db()
    assert activation.status == KillSwitchStatus.COMPLETED and activation.finished_at
    assert killswitch.kill_switch_progress(activation)["finished"]
    assert AuditEvent.objects.filter(action="killswitch.step_done", actor_label=personas.owner.username).count() == 1
    assert workflow_live_credentials(workflow=workflow) == []


def test_a_failing_step_is_recorded_and_leaves_its_credential_active(personas, workflow, dead_store, eager_celery,
                                                                     django_capture_on_commit_callbacks):
    broken = make_credential(personas, store=dead_store, path="secret/data/app/x")
    Binding.objects.create(workflow=workflow, credential=broken, purpose="etl")
    activation = activate(personas.secadmin, workflow, django_capture_on_commit_callbacks)
    failed = activation.steps.get(credential=broken, action=StepAction.SUSPEND_CREDENTIAL)
    assert failed.status == StepStatus.FAILED and "did not answer" in failed.detail
    broken.refresh_from_db()
    assert broken.status == CredentialStatus.ACTIVE
    assert activation.steps.filter(status=StepStatus.SUCCEEDED).count() == 4
    workflow.refresh_from_db()
    assert broken in [row["credential"] for row in workflow_live_credentials(workflow=workflow)]
    for step in activation.steps.filter(status=StepStatus.AWAITING):
        killswitch.killswitch_step_waive(actor=Actor.for_user(personas.secadmin), step=step,
                                         reason="Keys expire tonight; accepted by the incident lead")
    activation.refresh_from_db()
    assert activation.status == KillSwitchStatus.FAILED and activation.finished_at


def test_only_the_owner_side_or_a_security_admin_may_use_it(personas, estate):
    for person in (personas.auditor, personas.outsider, personas.approver):
        with pytest.raises(PermissionDenied):
            killswitch.killswitch_activate(actor=Actor.for_user(person), workflow=estate["workflow"], reason="x")
    with pytest.raises(ValidationError):
        killswitch.killswitch_activate(actor=Actor.for_user(personas.owner), workflow=estate["workflow"], reason="")


def test_reactivation_through_an_approved_request_always_rotates(personas, workflow, redis_user, pg_role, pg_cluster,
                                                                  kv, eager_celery, django_capture_on_commit_callbacks):
    from governance.services import approvals
    from tests.factories_approvals import make_policy

    activation = activate(personas.owner, workflow, django_capture_on_commit_callbacks)
    for step in activation.steps.filter(status=StepStatus.AWAITING):
        killswitch.killswitch_step_done(actor=Actor.for_user(personas.owner), step=step, comment="Revoked at vendor")
    versions = {key: c.store_version for key, c in workflow.test_credentials.items()}
    make_policy(groups=[personas.other_team.group])
    with django_capture_on_commit_callbacks(execute=True):
        request = approvals.approval_request_file(actor=Actor.for_user(personas.owner),
                                                  action=ApprovalAction.REACTIVATION, target=workflow, payload={},
                                                  justification="Token rotated, pipeline fixed")
    with django_capture_on_commit_callbacks(execute=True):
        approvals.approval_request_approve(actor=Actor.for_user(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    workflow.refresh_from_db()
    assert request.status == "executed", request.failure_reason
    assert workflow.status == WorkflowStatus.ACTIVE
    reactivation = workflow.kill_switch_activations.get(mode=KillSwitchMode.REACTIVATE)
    assert reactivation.approval_request_id == request.pk
    assert not reactivation.steps.filter(status=StepStatus.FAILED).exists()
    for key, credential in workflow.test_credentials.items():
        credential.refresh_from_db()
        assert credential.status == CredentialStatus.ACTIVE
        assert credential.store_version != versions[key], f"{key} came back with the same version"
    # New secrets; the values live during the incident are refused.
    assert not redis_auth(redis_user["name"], redis_user["password"])
    assert redis_auth(redis_user["name"], kv.read_value(redis_user["path"])["password"])
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    assert pg_login(pg_cluster, pg_role["name"], kv.read_value(pg_role["path"])["password"])
    new_value = kv.read_value(workflow.kv_path)
    assert new_value and new_value != {"value": "api-key"}
    assert kv.read_value(workflow.kv_path, int(versions["kv"])) is None  # the incident's version stays deleted
    # The API key must also be replaced where it is accepted: a step done by hand, then complete.
    assert reactivation.status == KillSwitchStatus.AWAITING_MANUAL
    manual = reactivation.steps.get(status=StepStatus.AWAITING)
    assert (manual.action, manual.credential_id) == (StepAction.MANUAL_REACTIVATE, workflow.test_credentials["kv"].pk)
    killswitch.killswitch_step_done(actor=Actor.for_user(personas.backup_owner), step=manual,
                                    comment="New key installed at the vendor, old one deleted")
    reactivation.refresh_from_db()
    assert reactivation.status == KillSwitchStatus.COMPLETED


def test_reactivation_refuses_without_an_approved_request(personas, workflow, eager_celery,
                                                           django_capture_on_commit_callbacks):
    from governance.models.approvals import ApprovalRequest

    activate(personas.owner, workflow, django_capture_on_commit_callbacks)
    pending = ApprovalRequest(pk=5, action="reactivation", status="pending", target_object_id=str(workflow.pk))
    with pytest.raises(ValidationError):
        killswitch.kill_switch_reactivate(actor=Actor.system(), workflow=workflow, approval_request=pending)


@pytest.mark.embedded
def test_drill_changes_nothing_and_records_its_result(personas, workflow, redis_user, kv, eager_celery,
                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        drill = killswitch.drill_start(actor=Actor.for_user(personas.owner), workflow=workflow)
    drill.refresh_from_db()
    workflow.refresh_from_db()
    assert drill.mode == KillSwitchMode.DRILL and drill.status == KillSwitchStatus.COMPLETED
    assert workflow.status == WorkflowStatus.ACTIVE
    assert workflow.last_drill_result == DrillResult.PASSED and workflow.last_drilled_at == drill.finished_at
    assert redis_auth(redis_user["name"], redis_user["password"])
    assert kv.read_value(workflow.kv_path) == {"value": "api-key"}
    for credential in workflow.test_credentials.values():
        credential.refresh_from_db()
        assert credential.status == CredentialStatus.ACTIVE
    step = drill.steps.get(credential=workflow.test_credentials["redis"])
    assert any("may change ACL user" in line for line in step.proof)
    assert AuditEvent.objects.filter(action="workflow.drill", object_id=str(workflow.pk)).exists()


def test_a_drill_that_cannot_reach_a_store_fails(personas, workflow, dead_store, eager_celery,
                                                 django_capture_on_commit_callbacks):
    Binding.objects.create(workflow=workflow, purpose="etl",
                           credential=make_credential(personas, store=dead_store, path="secret/data/app/y"))
    with django_capture_on_commit_callbacks(execute=True):
        drill = killswitch.drill_start(actor=Actor.for_user(personas.owner), workflow=workflow)
    workflow.refresh_from_db()
    drill.refresh_from_db()
    assert drill.status == KillSwitchStatus.FAILED and workflow.last_drill_result == DrillResult.FAILED


def test_a_redelivered_kill_switch_task_does_nothing_twice(personas, workflow, django_capture_on_commit_callbacks):
    from governance.tasks.lifecycle import kill_switch_run_task

    with django_capture_on_commit_callbacks(execute=False):
        activation = killswitch.killswitch_activate(actor=Actor.for_user(personas.owner), workflow=workflow,
                                                     reason="incident 42")
    kill_switch_run_task.apply(args=[activation.pk])
    kill_switch_run_task.apply(args=[activation.pk])
    assert AuditEvent.objects.filter(action="credential.suspend").count() == 3
    # The KV-only key leaves a step done by hand: the activation waits for it, once.
    assert AuditEvent.objects.filter(action="killswitch.activate_awaiting").count() == 1
    assert AuditEvent.objects.filter(action="killswitch.activate_finish").count() == 0
