"""The declared state machines: who may make which transition, approvals, compare-and-set, docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance.audit import Actor
from governance.choices import CredentialStatus, SystemLifecycle, WorkflowStatus
from governance.models import AuditEvent, Credential, System, Workflow
from governance.models.approvals import ApprovalStatus
from governance.services import inventory, states
from tests.conftest import actor
from tests.factories_approvals import A, file_request, make_policy

pytestmark = [pytest.mark.django_db]
DOCS = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


def test_architecture_doc_shows_the_machines_as_declared():
    assert states.machines_markdown() in DOCS.read_text(), \
        "docs/architecture.md differs from governance.services.states: paste states.machines_markdown() in"


def test_every_transition_is_between_declared_states_and_names_who_may():
    for machine in states.MACHINES.values():
        values = set(machine.states())
        assert machine.initial in values
        for transition in machine.transitions:
            assert transition.sources <= values and transition.target in values, transition
            assert transition.by and set(transition.by) <= set(states.ROLE_LABELS) and transition.who


def test_reactivation_needs_an_approved_request_for_this_workflow(personas, estate):
    workflow = estate["workflow"]
    Workflow.objects.filter(pk=workflow.pk).update(status=WorkflowStatus.SUSPENDED)
    workflow.refresh_from_db()
    with pytest.raises(ValidationError, match="approved reactivation request"):
        states.state_transition(actor=Actor.system(), instance=workflow, transition="reactivate", summary="x")
    make_policy(name="reactivations", actions=[A.REACTIVATION], required=1)
    pending = file_request(actor(personas.owner), A.REACTIVATION, estate, personas)
    with pytest.raises(ValidationError, match="approved reactivation request"):
        states.state_transition(actor=Actor.system(), instance=workflow, transition="reactivate", summary="x",
                                approval_request=pending)
    other = estate["other_workflow"]
    pending.__class__.objects.filter(pk=pending.pk).update(status=ApprovalStatus.APPROVED,
                                                           decided_at=timezone.now())
    Workflow.objects.filter(pk=other.pk).update(status=WorkflowStatus.SUSPENDED)
    other.refresh_from_db()
    with pytest.raises(ValidationError):  # approved, but for another workflow
        states.state_transition(actor=Actor.system(), instance=other, transition="reactivate", summary="x",
                                approval_request=pending)
    states.state_transition(actor=Actor.system(), instance=workflow, transition="reactivate", summary="back",
                            approval_request=pending)
    assert Workflow.objects.get(pk=workflow.pk).status == WorkflowStatus.ACTIVE
    event = AuditEvent.objects.filter(action="workflow.reactivate").get()
    assert event.changes == {"status": {"before": "suspended", "after": "active"}}


def test_a_stale_copy_loses_the_compare_and_set_and_changes_nothing(personas, estate):
    system = estate["system"]
    stale = System.objects.get(pk=system.pk)
    states.direct_transition(actor=actor(personas.owner), instance=system, transition="begin_retirement")
    before = AuditEvent.objects.count()
    with pytest.raises(states.StateChangeRefused):
        states.direct_transition(actor=actor(personas.backup_owner), instance=stale, transition="begin_retirement")
    assert System.objects.get(pk=system.pk).lifecycle == SystemLifecycle.RETIRING
    assert AuditEvent.objects.count() == before


def test_direct_transitions_are_for_the_owner_team_and_security_admins(personas, estate):
    system = estate["system"]
    for person in (personas.auditor, personas.outsider, personas.approver):
        with pytest.raises(PermissionDenied):
            states.direct_transition(actor=actor(person), instance=system, transition="begin_retirement")
    with pytest.raises(ValidationError, match="not a transition you ask for directly"):
        states.direct_transition(actor=actor(personas.secadmin), instance=system, transition="retire")
    states.direct_transition(actor=actor(personas.secadmin), instance=system, transition="begin_retirement")
    assert System.objects.get(pk=system.pk).lifecycle == SystemLifecycle.RETIRING


def test_only_steward_moves_a_credential_through_its_connector_transitions(personas, estate):
    credential = estate["credential"]
    for transition in ("suspend", "revoke"):
        with pytest.raises(PermissionDenied):
            states.state_transition(actor=actor(personas.secadmin), instance=credential, transition=transition,
                                    summary="by hand")
    assert Credential.objects.get(pk=credential.pk).status == CredentialStatus.ACTIVE


def test_a_person_registers_in_the_initial_state_as_owner_without_stamps(personas, estate):
    owner = actor(personas.owner)
    base = {"name": "ledger-sync", "kind": "scheduled_job", "platform": "Airflow", "team": personas.team}
    with pytest.raises(ValidationError) as info:
        inventory.workflow_create(actor=owner, data={**base, "status": "suspended", "last_drill_result": "passed",
                                                     "owner": personas.backup_owner})
    assert set(info.value.message_dict) == {"status", "last_drill_result", "owner"}
    workflow = inventory.workflow_create(actor=owner, data=base)
    assert (workflow.status, workflow.owner) == (states.WORKFLOW_MACHINE.initial, personas.owner)
    credential = inventory.credential_create(actor=owner, data={
        "name": "ledger-key", "kind": "api_key", "system": estate["system"], "identifier": "ledger-key",
        "privilege_level": "admin", "scopes": ["ledger:*"]})  # declared; the approval-sod check looks at it
    assert (credential.privilege_level, credential.scopes) == ("admin", ["ledger:*"])
    admin_made = inventory.workflow_create(actor=actor(personas.secadmin), data={
        **base, "name": "ledger-legacy", "status": "proposed", "owner": personas.backup_owner})
    assert (admin_made.status, admin_made.owner) == ("proposed", personas.backup_owner)


def test_privilege_changes_only_with_an_approved_scope_change(personas, estate):
    credential = estate["credential"]
    with pytest.raises(ValidationError, match="privileged scope change"):
        inventory.credential_change_privilege(actor=Actor.system(), credential=credential, scopes=["*"],
                                              privilege_level="admin", approval_request=None)
    assert Credential.objects.get(pk=credential.pk).privilege_level == "read"


def test_api_doc_lists_every_read_only_field_and_its_operation():
    integrations = DOCS.with_name("integrations.md").read_text()
    assert inventory.gated_fields_markdown() in integrations, \
        "docs/integrations.md differs from inventory.GATED_FIELDS: paste inventory.gated_fields_markdown() in"
