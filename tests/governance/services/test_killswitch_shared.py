"""The kill switch on a workflow sharing a credential with two others, and its checklist of steps done by hand.

Real PostgreSQL (own cluster, scram-sha-256) and OpenBao where the connectors act.
"""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from governance.audit import Actor
from governance.choices import CredentialStatus, WorkflowStatus
from governance.models import AuditEvent, Binding
from governance.models.lifecycle import KillSwitchStatus, SharedChoice, StepAction, StepStatus
from governance.selectors.lifecycle import shared_credentials, workflow_live_credentials
from governance.services import killswitch
from tests.factories import SecretStoreFactory, WorkflowFactory
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
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
    unique,
)

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def shared(personas, kv_store, pg_system, pg_role):
    """An incident workflow and two other active workflows, all three using one PostgreSQL role."""
    credential = make_credential(personas, store=kv_store, path=pg_role["path"], system=pg_system, kind="password",
                                 identifier=pg_role["name"])
    flows = [WorkflowFactory(name=unique(name), owner=personas.owner, team=personas.team, status="active")
             for name in ("incident", "billing", "reports")]
    for flow in flows:
        Binding.objects.create(workflow=flow, credential=credential, purpose="read orders")
    return {"credential": credential, "incident": flows[0], "others": flows[1:]}


def activate(user, workflow, capture, **kwargs):
    with capture(execute=True):
        activation = killswitch.killswitch_activate(actor=Actor.for_user(user), workflow=workflow,
                                                    reason="Password seen in a build log", **kwargs)
    activation.refresh_from_db()
    return activation


def test_the_shared_count_sees_the_two_other_workflows_and_the_preview_lists_them(personas, shared):
    incident, credential = shared["incident"], shared["credential"]
    assert shared_credentials(workflow=incident) == {credential.pk: 2}
    preview = killswitch.killswitch_preview(workflow=incident, actor=Actor.for_user(personas.owner))
    (row,) = preview.rows
    assert row.credential == credential and row.connector == "postgres_role" and row.revokes_at_issuer
    assert [o.name for o in row.others] == sorted(w.name for w in shared["others"])
    assert preview.needs_choice and [c for c, _ in preview.choices] == [SharedChoice.SUSPEND_ANYWAY,
                                                                        SharedChoice.ROTATE_ISOLATE]
    with pytest.raises(PermissionDenied):
        killswitch.killswitch_preview(workflow=incident, actor=Actor.for_user(personas.outsider))
    # A retired workflow no longer counts.
    shared["others"][1].status, shared["others"][1].retired_at = WorkflowStatus.RETIRED, incident.created_at
    shared["others"][1].save()
    assert shared_credentials(workflow=incident) == {credential.pk: 1}


def test_a_shared_credential_needs_the_operators_choice(personas, shared, django_capture_on_commit_callbacks):
    with pytest.raises(ValidationError) as info:
        activate(personas.owner, shared["incident"], django_capture_on_commit_callbacks)
    message = info.value.message_dict["shared_choice"][0]
    assert all(w.name in message for w in shared["others"])
    shared["incident"].refresh_from_db()
    assert shared["incident"].status == WorkflowStatus.ACTIVE  # nothing happened
    with pytest.raises(ValidationError):
        activate(personas.owner, shared["incident"], django_capture_on_commit_callbacks, shared_choice="both")


def test_suspend_anyway_stops_it_for_everyone_and_lists_them(personas, shared, pg_role, pg_cluster, eager_celery,
                                                             django_capture_on_commit_callbacks):
    activation = activate(personas.owner, shared["incident"], django_capture_on_commit_callbacks,
                          shared_choice=SharedChoice.SUSPEND_ANYWAY)
    assert activation.status == KillSwitchStatus.COMPLETED  # PostgreSQL revokes where it is accepted: no hand step
    assert activation.shared_choice == SharedChoice.SUSPEND_ANYWAY
    (entry,) = activation.shared_with
    assert entry["credential_id"] == shared["credential"].pk
    assert sorted(w["id"] for w in entry["workflows"]) == sorted(w.pk for w in shared["others"])
    shared["credential"].refresh_from_db()
    assert shared["credential"].status == CredentialStatus.SUSPENDED
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    event = AuditEvent.objects.get(action="workflow.kill_switch", object_id=str(shared["incident"].pk))
    assert all(w.name in event.summary for w in shared["others"])


def test_rotate_and_isolate_gives_the_others_a_new_secret_and_cuts_the_incident_workflow_off(
        personas, shared, pg_role, pg_cluster, kv, eager_celery, django_capture_on_commit_callbacks):
    credential, incident = shared["credential"], shared["incident"]
    activation = activate(personas.secadmin, incident, django_capture_on_commit_callbacks,
                          shared_choice=SharedChoice.ROTATE_ISOLATE)
    assert activation.status == KillSwitchStatus.COMPLETED
    step = activation.steps.get(action=StepAction.ISOLATE_CREDENTIAL)
    assert step.status == StepStatus.SUCCEEDED
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.ACTIVE and credential.store_version != "1"
    new_password = kv.read_value(pg_role["path"])["password"]
    assert pg_login(pg_cluster, pg_role["name"], new_password)  # the others keep working with the new secret
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])  # the incident's value is refused
    binding = Binding.objects.get(workflow=incident, credential=credential)
    assert binding.suspended_at is not None and binding.suspended_by_activation_id == activation.pk
    assert Binding.objects.filter(credential=credential, suspended_at__isnull=True).count() == 2
    assert shared_credentials(workflow=shared["others"][0]) == {credential.pk: 1}  # the incident no longer counts
    assert AuditEvent.objects.filter(action="binding.suspend").count() == 1
    assert AuditEvent.objects.filter(action="credential.rotate", object_id=str(credential.pk)).count() == 1
    incident.refresh_from_db()
    assert workflow_live_credentials(workflow=incident) == []


@pytest.fixture
def by_hand(personas):
    """A workflow whose only credential sits in a config file: no connector can act on it."""
    store = SecretStoreFactory(name=unique("config"), kind="config_file", address="", settings={})
    credential = make_credential(personas, store=store, path="/etc/app/key")
    workflow = WorkflowFactory(name=unique("legacy-sync"), owner=personas.owner, team=personas.team, status="active")
    Binding.objects.create(workflow=workflow, credential=credential, purpose="sync")
    return workflow, credential


def test_a_step_no_connector_can_do_is_a_checklist_item_that_completes_the_activation(
        personas, by_hand, eager_celery, django_capture_on_commit_callbacks):
    workflow, credential = by_hand
    activation = activate(personas.owner, workflow, django_capture_on_commit_callbacks)
    step = activation.steps.get(credential=credential)
    assert (step.action, step.status, step.assignee) == (StepAction.MANUAL_SUSPEND, StepStatus.AWAITING,
                                                         personas.owner)
    assert activation.status == KillSwitchStatus.AWAITING_MANUAL
    workflow.refresh_from_db()
    assert [row["credential"] for row in workflow_live_credentials(workflow=workflow)] == [credential]
    # Who may close it, and how.
    with pytest.raises(PermissionDenied):
        killswitch.killswitch_step_done(actor=Actor.for_user(personas.auditor), step=step, comment="done")
    with pytest.raises(PermissionDenied):
        killswitch.killswitch_step_done(actor=Actor.for_user(personas.outsider), step=step, comment="done")
    with pytest.raises(ValidationError):
        killswitch.killswitch_step_done(actor=Actor.for_user(personas.owner), step=step, comment="  ")
    with pytest.raises(PermissionDenied):
        killswitch.killswitch_step_waive(actor=Actor.for_user(personas.owner), step=step, reason="not needed")
    with pytest.raises(ValidationError):  # a connector step is not closed by hand
        killswitch.killswitch_step_done(actor=Actor.for_user(personas.owner), comment="x",
                                        step=activation.steps.get(action=StepAction.SUSPEND_WORKFLOW))
    killswitch.killswitch_step_assign(actor=Actor.for_user(personas.owner), step=step, assignee=personas.backup_owner)
    step = killswitch.killswitch_step_done(actor=Actor.for_user(personas.backup_owner), step=step,
                                           comment="Key removed from /etc/app on all hosts, INC-7")
    assert (step.status, step.closed_by, step.comment) == (StepStatus.MARKED_DONE, personas.backup_owner,
                                                          "Key removed from /etc/app on all hosts, INC-7")
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.SUSPENDED
    activation.refresh_from_db()
    assert activation.status == KillSwitchStatus.COMPLETED and activation.finished_at
    with pytest.raises(ValidationError):  # closed once
        killswitch.killswitch_step_done(actor=Actor.for_user(personas.owner), step=step, comment="again")
    actions = list(AuditEvent.objects.filter(action__startswith="killswitch.step_").values_list("action", flat=True))
    assert sorted(actions) == ["killswitch.step_assign", "killswitch.step_done"]
    assert workflow_live_credentials(workflow=workflow) == []


def test_a_waived_step_completes_the_activation_but_the_credential_still_shows_live(
        personas, by_hand, eager_celery, django_capture_on_commit_callbacks):
    workflow, credential = by_hand
    activation = activate(personas.owner, workflow, django_capture_on_commit_callbacks)
    step = activation.steps.get(status=StepStatus.AWAITING)
    with pytest.raises(ValidationError):
        killswitch.killswitch_step_waive(actor=Actor.for_user(personas.secadmin), step=step, reason="")
    killswitch.killswitch_step_waive(actor=Actor.for_user(personas.secadmin), step=step,
                                     reason="Host decommissioned tomorrow; risk accepted by CISO")
    activation.refresh_from_db()
    assert activation.status == KillSwitchStatus.COMPLETED
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.ACTIVE  # nobody suspended it
    workflow.refresh_from_db()
    (live,) = workflow_live_credentials(workflow=workflow)
    assert live["credential"] == credential and "still active" in live["why"]
    assert AuditEvent.objects.filter(action="killswitch.step_waived", actor_label=personas.secadmin.username).exists()
