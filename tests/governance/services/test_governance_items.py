"""A workflow is proposed until it has its four governance items (issue #16, 'The four governance items are not
enforced'): owner, credential source, approval path, shutdown procedure; and a passed drill when privileged.
Every write path registers it proposed; activation is refused, item by item, until it has them; the checks
approval_path and credential_source (high) report running workflows that lack one."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from governance.audit import Actor
from governance.choices import DrillResult, SecretStoreKind, WorkflowStatus
from governance.models import Binding, Workflow
from governance.models.checks import Finding, FindingState
from governance.services import inventory, states
from governance.services.catalogue import catalogue_load
from governance.services.governance_items import workflow_governance_gaps
from governance.services.sweep import sweep_run
from tests.factories import CredentialFactory, SecretStoreFactory, WorkflowFactory
from tests.factories_approvals import make_policy

pytestmark = pytest.mark.django_db

RUNBOOK = {"shutdown_procedure": "Disable the schedule, revoke the token.", "kill_switch_steps": "Suspend deploy-key."}


def register(personas, **data):
    return inventory.workflow_create(actor=Actor.for_user(personas.owner), data={
        "name": "nightly-export", "kind": "scheduled_job", "platform": "cron", "criticality": "high", **data})


def activate(actor_person, workflow):
    return states.direct_transition(actor=Actor.for_user(actor_person), instance=workflow, transition="activate")


def test_an_owner_registers_a_workflow_proposed_and_cannot_activate_it_without_the_items(personas):
    workflow = register(personas)
    assert workflow.status == WorkflowStatus.PROPOSED
    with pytest.raises(ValidationError) as refused:
        activate(personas.owner, workflow)
    assert set(refused.value.message_dict) == {"credentials", "approval_policy", "shutdown_procedure"}
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.PROPOSED


def test_an_owner_may_not_register_a_workflow_active(personas):
    with pytest.raises(ValidationError) as refused:
        register(personas, status=WorkflowStatus.ACTIVE)
    assert "status" in refused.value.message_dict
    assert not Workflow.objects.filter(name="nightly-export").exists()


def test_with_all_four_items_the_workflow_activates(personas, estate):
    policy = make_policy(groups=[personas.other_team.group])
    workflow = register(personas, **RUNBOOK)
    inventory.workflow_update(actor=Actor.for_user(personas.secadmin), workflow=workflow,
                              data={"approval_policy": policy})
    workflow.refresh_from_db()
    Binding.objects.create(workflow=workflow, credential=estate["credential"], purpose="export")
    assert workflow_governance_gaps(workflow) == {}
    activate(personas.owner, workflow)
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.ACTIVE


def test_a_credential_outside_a_managed_store_is_no_credential_source(personas):
    workflow = register(personas, **RUNBOOK)
    leaked = CredentialFactory(owner=personas.owner, team=personas.team,
                               store=SecretStoreFactory(kind=SecretStoreKind.CONFIG_FILE))
    Binding.objects.create(workflow=workflow, credential=leaked, purpose="export")
    assert "credentials" in workflow_governance_gaps(workflow)


def test_uses_no_credentials_needs_a_statement_and_then_counts_as_the_source(personas):
    with pytest.raises(ValidationError):
        register(personas, uses_no_credentials=True)
    workflow = register(personas, uses_no_credentials=True, no_credentials_statement="Reads a public feed only.")
    assert "credentials" not in workflow_governance_gaps(workflow)


def test_a_privileged_workflow_also_needs_a_passed_drill(personas):
    workflow = register(personas, can_rotate=True, uses_no_credentials=True,
                        no_credentials_statement="Rotates through OpenBao's own token.", **RUNBOOK)
    workflow.approval_policy = make_policy(groups=[personas.other_team.group])
    workflow.save()
    assert set(workflow_governance_gaps(workflow)) == {"last_drill_result"}
    Workflow.objects.filter(pk=workflow.pk).update(last_drill_result=DrillResult.PASSED)
    workflow.refresh_from_db()
    assert workflow_governance_gaps(workflow) == {}


def test_the_portal_form_registers_proposed_without_offering_a_status(client, personas):
    client.force_login(personas.owner)
    assert 'name="status"' not in client.get(reverse("workflow-create")).content.decode()
    response = client.post(reverse("workflow-create"), {
        "name": "portal-flow", "kind": "scheduled_job", "platform": "cron", "criticality": "medium",
        "owner": personas.owner.pk, "team": personas.team.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    workflow = Workflow.objects.get(name="portal-flow")
    assert workflow.status == WorkflowStatus.PROPOSED


def test_the_api_registers_proposed_and_refuses_activation_with_field_messages(personas):
    api = APIClient()
    api.force_authenticate(personas.owner)
    created = api.post("/api/v1/workflows/", {"name": "api-flow", "kind": "scheduled_job", "platform": "cron"},
                       format="json")
    assert created.status_code == 201, created.content
    assert created.json()["status"] == WorkflowStatus.PROPOSED
    refused = api.post(f"/api/v1/workflows/{created.json()['id']}/transition/", {"transition": "activate"},
                       format="json")
    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"credentials", "approval_policy", "shutdown_procedure"}


def test_the_sweep_finds_running_workflows_without_an_approval_path_or_a_credential_source(personas, estate):
    catalogue_load(actor=Actor.system(task_id="test"))
    bare = WorkflowFactory(name="bare-flow", owner=personas.owner, team=personas.team, status=WorkflowStatus.ACTIVE)
    governed = WorkflowFactory(name="governed-flow", owner=personas.owner, team=personas.team,
                               status=WorkflowStatus.ACTIVE, approval_policy=make_policy(name="Governed"),
                               uses_no_credentials=True, no_credentials_statement="Public data only.")
    sweep_run(trigger="test")
    open_codes = {(f.object_id, f.failed_check.code) for f in Finding.objects.filter(state=FindingState.OPEN)
                  .select_related("failed_check")}
    assert (bare.pk, "approval-path") in open_codes and (bare.pk, "credential-source") in open_codes
    assert (governed.pk, "approval-path") not in open_codes and (governed.pk, "credential-source") not in open_codes
    finding = Finding.objects.get(object_id=bare.pk, failed_check__code="approval-path")
    assert finding.failed_check.severity == "high"
