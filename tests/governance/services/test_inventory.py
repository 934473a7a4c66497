"""Inventory services: validation, rejections, audit, scope."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from governance.audit import Actor
from governance.models import AuditEvent, Credential, System, Workflow
from governance.services import inventory as svc

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_owner_registers_a_workflow_and_the_team_gets_it(personas, estate):
    workflow = svc.workflow_create(actor=Actor.for_user(personas.owner), data={
        "name": "payments-nightly", "kind": "scheduled_job", "platform": "Airflow", "team": personas.team,
        "systems": [estate["system"]],
    })
    assert workflow.owner == personas.owner
    assert list(workflow.systems.all()) == [estate["system"]]
    assert Workflow.objects.restrict(personas.backup_owner, "change").filter(pk=workflow.pk).exists()
    assert AuditEvent.objects.filter(action="workflow.create", object_id=str(workflow.pk)).count() == 1


def test_secret_values_are_rejected_and_nothing_is_saved(personas, estate):
    before = (Credential.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as info:
        svc.credential_create(actor=Actor.for_user(personas.owner), data={
            "name": "leaky", "kind": "api_key", "system": estate["system"], "team": personas.team,
            "identifier": "ghp_" + "Ab1" * 12,
        })
    assert "identifier" in info.value.message_dict
    assert "never stores secret values" in info.value.message_dict["identifier"][0]
    assert (Credential.objects.count(), AuditEvent.objects.count()) == before


def test_departed_owner_is_refused(personas, estate):
    from governance.services.people import person_mark_departed

    person_mark_departed(actor=Actor.for_user(personas.secadmin), person=personas.approver)
    personas.approver.refresh_from_db()
    with pytest.raises(ValidationError, match="departed"):  # a plain edit cannot change the owner at all
        svc.system_create(actor=Actor.for_user(personas.secadmin), data={"name": "ledger", "owner": personas.approver})


def test_unknown_fields_are_rejected(personas, estate):
    with pytest.raises(ValidationError) as info:
        svc.system_update(actor=Actor.for_user(personas.owner), system=estate["system"], data={"colour": "red"})
    assert "colour" in info.value.message_dict


def test_moving_an_object_out_of_your_scope_is_refused(personas, estate):
    workflow = estate["workflow"]
    with pytest.raises(ValidationError, match="ownership transfer"):  # the backup team is a gated field now
        svc.workflow_update(actor=Actor.for_user(personas.backup_owner), workflow=workflow,
                            data={"team": personas.other_team})
    workflow.refresh_from_db()
    assert workflow.team == personas.team
    assert Workflow.objects.restrict(personas.backup_owner, "change").filter(pk=workflow.pk).exists()


def test_auditors_and_outsiders_cannot_write(personas, estate):
    for user in (personas.auditor, personas.outsider):
        with pytest.raises(PermissionDenied):
            svc.workflow_update(actor=Actor.for_user(user), workflow=estate["workflow"], data={"platform": "x"})


def test_retire_needs_a_reason_and_happens_once(personas, estate):
    with pytest.raises(PermissionDenied):  # owners file a retirement request instead
        svc.system_retire(actor=Actor.for_user(personas.owner), system=estate["system"], reason="done")
    actor = Actor.for_user(personas.secadmin)
    with pytest.raises(ValidationError):
        svc.system_retire(actor=actor, system=estate["system"], reason=" ")
    svc.system_retire(actor=actor, system=estate["system"], reason="decommissioned")
    system = System.objects.get(pk=estate["system"].pk)
    assert system.lifecycle == "retired" and system.retired_at
    with pytest.raises(ValidationError, match="already retired"):
        svc.system_retire(actor=actor, system=system, reason="again")
    with pytest.raises(ValidationError):
        svc.workflow_update(actor=actor, workflow=estate["workflow"], data={"status": "retired"})


def test_binding_needs_the_credential_to_be_visible(personas, estate):
    with pytest.raises(PermissionDenied):
        svc.binding_create(actor=Actor.for_user(personas.owner), data={
            "workflow": estate["workflow"], "credential": estate["other_credential"], "purpose": "steal"})
    binding = svc.binding_create(actor=Actor.for_user(personas.approver), data={
        "workflow": estate["other_workflow"], "credential": estate["other_credential"], "purpose": "sync"})
    assert binding.pk


def test_secret_stores_are_for_security_admins(personas):
    with pytest.raises(PermissionDenied):
        svc.secret_store_create(actor=Actor.for_user(personas.owner), data={"name": "s", "kind": "openbao_kv"})
    store = svc.secret_store_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "vault", "kind": "openbao_kv", "credential_env_var": "VAULT_TOKEN"})
    with pytest.raises(ValidationError) as info:
        svc.secret_store_update(actor=Actor.for_user(personas.secadmin), store=store,
                                data={"credential_env_var": "hvs.CAESIJlU0123456789abcdefghij"})
    assert "credential_env_var" in info.value.message_dict


def test_only_security_admins_choose_the_approval_path(personas, estate):
    from governance.models.approvals import ApprovalPolicy

    policy = ApprovalPolicy.objects.create(name="lenient", required_approvals=1, expiry_hours=24)
    with pytest.raises(ValidationError) as info:
        svc.workflow_update(actor=Actor.for_user(personas.owner), workflow=estate["workflow"],
                            data={"approval_policy": policy})
    assert "approval_policy" in info.value.message_dict
    workflow = svc.workflow_update(actor=Actor.for_user(personas.secadmin), workflow=estate["workflow"],
                                   data={"approval_policy": policy})
    assert workflow.approval_policy == policy
    svc.workflow_update(actor=Actor.for_user(personas.owner), workflow=workflow, data={"platform": "GitLab CI"})
