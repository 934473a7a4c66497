"""Kill switch, drill and reactivation against real OpenBao, PostgreSQL and Redis."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import dataclasses

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from governance.audit import Actor
from governance.choices import CredentialStatus, DrillResult, WorkflowStatus
from governance.models import AuditEvent, Binding
from governance.models.approvals import ApprovalAction
from governance.models.lifecycle import KillSwitchMode, KillSwitchStatus, StepStatus
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
        activation = killswitch.kill_switch_activate(actor=Actor.for_user(user), workflow=workflow, reason=reason)
    activation.refresh_from_db()
    return activation


def test_kill_switch_suspends_every_bound_credential_with_proof(personas, workflow, kv, redis_user, pg_role,
                                                                 pg_cluster, eager_celery,
                                                                 django_capture_on_commit_callbacks):
    activation = activate(personas.owner, workflow, django_capture_on_commit_callbacks)
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.SUSPENDED
    assert activation.status == KillSwitchStatus.COMPLETED and activation.finished_at
    steps = list(activation.steps.order_by("position"))
    assert [s.status for s in steps] == [StepStatus.SUCCEEDED] * 4
    assert all(s.proof for s in steps[1:])
    for credential in workflow.test_credentials.values():
        credential.refresh_from_db()
        assert credential.status == CredentialStatus.SUSPENDED
    assert kv.read_value(workflow.kv_path) is None
    assert not redis_auth(redis_user["name"], redis_user["password"])
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    assert AuditEvent.objects.filter(action="credential.suspend").count() == 3
    progress = killswitch.kill_switch_progress(activation)
    assert progress["finished"] and progress["done"] == progress["total"] == 4


def test_a_failing_step_is_recorded_and_leaves_its_credential_active(personas, workflow, dead_store, eager_celery,
                                                                     django_capture_on_commit_callbacks):
    broken = make_credential(personas, store=dead_store, path="secret/data/app/x")
    Binding.objects.create(workflow=workflow, credential=broken, purpose="etl")
    activation = activate(personas.secadmin, workflow, django_capture_on_commit_callbacks)
    assert activation.status == KillSwitchStatus.FAILED
    failed = activation.steps.get(credential=broken)
    assert failed.status == StepStatus.FAILED and "did not answer" in failed.detail
    broken.refresh_from_db()
    assert broken.status == CredentialStatus.ACTIVE
    assert activation.steps.filter(status=StepStatus.SUCCEEDED).count() == 4


def test_only_the_owner_side_or_a_security_admin_may_use_it(personas, estate):
    for person in (personas.auditor, personas.outsider, personas.approver):
        with pytest.raises(PermissionDenied):
            killswitch.kill_switch_activate(actor=Actor.for_user(person), workflow=estate["workflow"], reason="x")
    with pytest.raises(ValidationError):
        killswitch.kill_switch_activate(actor=Actor.for_user(personas.owner), workflow=estate["workflow"], reason="")


def test_reactivation_through_an_approved_request(personas, workflow, redis_user, pg_role, pg_cluster, kv,
                                                  eager_celery, monkeypatch, django_capture_on_commit_callbacks):
    from governance.services import approvals
    from governance.services.approvals_registry import ACTIONS, get_action
    from tests.factories_approvals import make_policy

    activate(personas.owner, workflow, django_capture_on_commit_callbacks)
    make_policy(groups=[personas.other_team.group])
    # The wiring the lead adds: the reactivation action runs the kill switch's reactivation.
    spec = get_action(ApprovalAction.REACTIVATION)
    monkeypatch.setitem(ACTIONS, ApprovalAction.REACTIVATION,
                        dataclasses.replace(spec, execute=killswitch.reactivation_approved_execute))
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
    assert reactivation.status == KillSwitchStatus.COMPLETED and reactivation.approval_request_id == request.pk
    for credential in workflow.test_credentials.values():
        credential.refresh_from_db()
        assert credential.status == CredentialStatus.ACTIVE
    assert redis_auth(redis_user["name"], redis_user["password"])
    assert pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    assert kv.read_value(workflow.kv_path) == {"value": "api-key"}


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
        activation = killswitch.kill_switch_activate(actor=Actor.for_user(personas.owner), workflow=workflow,
                                                     reason="incident 42")
    kill_switch_run_task.apply(args=[activation.pk])
    kill_switch_run_task.apply(args=[activation.pk])
    assert AuditEvent.objects.filter(action="credential.suspend").count() == 3
    assert AuditEvent.objects.filter(action="killswitch.activate_finish").count() == 1
