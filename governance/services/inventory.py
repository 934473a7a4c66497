"""Writes to the inventory: systems, secret stores, credentials, workflows and bindings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import permissions, roles
from governance.audit import Actor
from governance.choices import SystemLifecycle, WorkflowStatus
from governance.models import Binding, Credential, SecretStore, System, Workflow
from governance.services.common import (
    apply_and_validate,
    ensure_can_change,
    ensure_may_write,
    ensure_security_admin,
    ensure_still_in_scope,
    record,
    snapshot,
)

SYSTEM_FIELDS = (
    "name", "description", "lifecycle", "environment", "criticality", "third_party", "vendor", "owner", "team",
)
SECRET_STORE_FIELDS = ("name", "kind", "address", "settings", "credential_env_var", "description")
CREDENTIAL_FIELDS = (
    "name", "kind", "system", "identifier", "store", "store_path", "store_version", "fingerprint", "scopes",
    "privilege_level", "issued_at", "last_rotated_at", "expires_at", "rotation_max_age_days", "status",
    "owner", "team", "last_used_at", "human_use_detected", "human_use_evidence", "third_party_reviewed_at",
    "notes",
)
WORKFLOW_FIELDS = (
    "name", "description", "kind", "platform", "systems", "status", "criticality", "can_authenticate",
    "can_provision", "can_change", "can_rotate", "can_revoke", "shutdown_procedure", "kill_switch_steps",
    "last_drilled_at", "last_drill_result", "owner", "team", "approval_policy",
)
BINDING_FIELDS = ("workflow", "credential", "purpose", "scopes_used")

OWNED_FIELDS = {System: SYSTEM_FIELDS, Credential: CREDENTIAL_FIELDS, Workflow: WORKFLOW_FIELDS}


def _only(data: Mapping[str, Any], allowed) -> dict[str, Any]:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationError({name: "Unknown or read-only field." for name in unknown})
    return dict(data)


def _check_owner_active(data: Mapping[str, Any]) -> None:
    owner = data.get("owner")
    if owner is not None and getattr(owner, "is_departed", False):
        raise ValidationError({"owner": f"{owner} has departed and cannot own anything."})


def _create_owned(*, actor: Actor, model, data: Mapping[str, Any], action: str):
    ensure_may_write(actor)
    data = _only(data, OWNED_FIELDS[model])
    if actor.kind != "system" and "owner" not in data:
        data["owner"] = actor.user
    _check_owner_active(data)
    with transaction.atomic():
        instance = model()
        m2m = apply_and_validate(instance, data, text_fields=data.keys())
        instance.save()
        for name, values in m2m.items():
            getattr(instance, name).set(values)
        permissions.grant_team(instance, instance.team)
        ensure_still_in_scope(actor, instance)
        after = snapshot(instance, OWNED_FIELDS[model])
        record(actor=actor, action=action, instance=instance, summary=f"Registered {instance}", before={},
               after=after)
    return instance


def _update_owned(*, actor: Actor, instance, data: Mapping[str, Any], action: str):
    data = _only(data, OWNED_FIELDS[type(instance)])
    _check_owner_active(data)
    with transaction.atomic():
        instance = type(instance).objects.select_for_update().get(pk=instance.pk)
        ensure_can_change(actor, instance)
        fields = OWNED_FIELDS[type(instance)]
        before = snapshot(instance, fields)
        old_team = instance.team
        m2m = apply_and_validate(instance, data, text_fields=data.keys())
        instance.save()
        for name, values in m2m.items():
            getattr(instance, name).set(values)
        if instance.team_id != (old_team.pk if old_team else None):
            permissions.revoke_team(instance, old_team)
            permissions.grant_team(instance, instance.team)
        ensure_still_in_scope(actor, instance)
        after = snapshot(instance, fields)
        if before != after:
            record(actor=actor, action=action, instance=instance, summary=f"Updated {instance}", before=before,
                   after=after)
    return instance


def system_create(*, actor: Actor, data: Mapping[str, Any]) -> System:
    return _create_owned(actor=actor, model=System, data=data, action="system.create")


def system_update(*, actor: Actor, system: System, data: Mapping[str, Any]) -> System:
    if data.get("lifecycle") == SystemLifecycle.RETIRED and system.lifecycle != SystemLifecycle.RETIRED:
        raise ValidationError({"lifecycle": "Retire a system with the retire action, which records the reason."})
    return _update_owned(actor=actor, instance=system, data=data, action="system.update")


def system_retire(*, actor: Actor, system: System, reason: str) -> System:
    """Retire a system. Its remaining active credentials become findings until deprovisioned."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the system is retired."})
    with transaction.atomic():
        system = System.objects.select_for_update().get(pk=system.pk)
        ensure_security_admin(actor)  # owners file a retirement request (approvals) instead
        if system.lifecycle == SystemLifecycle.RETIRED:
            raise ValidationError({"lifecycle": "This system is already retired."})
        before = snapshot(system, ("lifecycle", "retired_at"))
        system.lifecycle = SystemLifecycle.RETIRED
        system.retired_at = timezone.now()
        system.save(update_fields=["lifecycle", "retired_at", "updated_at"])
        record(actor=actor, action="system.retire", instance=system, summary=f"Retired {system}: {reason}",
               before=before, after=snapshot(system, ("lifecycle", "retired_at")))
    return system


def secret_store_create(*, actor: Actor, data: Mapping[str, Any]) -> SecretStore:
    ensure_security_admin(actor)
    data = _only(data, SECRET_STORE_FIELDS)
    with transaction.atomic():
        store = SecretStore()
        apply_and_validate(store, data, text_fields=data.keys())
        store.save()
        record(actor=actor, action="secretstore.create", instance=store, summary=f"Registered store {store}",
               before={}, after=snapshot(store, SECRET_STORE_FIELDS))
    return store


def secret_store_update(*, actor: Actor, store: SecretStore, data: Mapping[str, Any]) -> SecretStore:
    ensure_security_admin(actor)
    data = _only(data, SECRET_STORE_FIELDS)
    with transaction.atomic():
        store = SecretStore.objects.select_for_update().get(pk=store.pk)
        before = snapshot(store, SECRET_STORE_FIELDS)
        apply_and_validate(store, data, text_fields=data.keys())
        store.save()
        after = snapshot(store, SECRET_STORE_FIELDS)
        if before != after:
            record(actor=actor, action="secretstore.update", instance=store, summary=f"Updated store {store}",
                   before=before, after=after)
    return store


def credential_create(*, actor: Actor, data: Mapping[str, Any]) -> Credential:
    return _create_owned(actor=actor, model=Credential, data=data, action="credential.create")


def credential_update(*, actor: Actor, credential: Credential, data: Mapping[str, Any]) -> Credential:
    return _update_owned(actor=actor, instance=credential, data=data, action="credential.update")


def _ensure_may_set_approval_path(actor: Actor, old_policy_id, data: Mapping[str, Any]) -> None:
    """A workflow's approval path is policy: owners may not weaken their own."""
    new_policy = data.get("approval_policy", old_policy_id)
    if getattr(new_policy, "pk", new_policy) != old_policy_id and actor.kind != "system" \
            and not roles.is_security_admin(actor.user):
        raise ValidationError({"approval_policy": "Only security admins choose a workflow's approval path."})


def workflow_create(*, actor: Actor, data: Mapping[str, Any]) -> Workflow:
    _ensure_may_set_approval_path(actor, None, data)
    return _create_owned(actor=actor, model=Workflow, data=data, action="workflow.create")


def workflow_update(*, actor: Actor, workflow: Workflow, data: Mapping[str, Any]) -> Workflow:
    if data.get("status") == WorkflowStatus.RETIRED and workflow.status != WorkflowStatus.RETIRED:
        raise ValidationError({"status": "Retire a workflow with the retire action, which records the reason."})
    _ensure_may_set_approval_path(actor, workflow.approval_policy_id, data)
    return _update_owned(actor=actor, instance=workflow, data=data, action="workflow.update")


def workflow_retire(*, actor: Actor, workflow: Workflow, reason: str) -> Workflow:
    if not reason.strip():
        raise ValidationError({"reason": "Say why the workflow is retired."})
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        ensure_security_admin(actor)  # owners file a retirement request (approvals) instead
        if workflow.status == WorkflowStatus.RETIRED:
            raise ValidationError({"status": "This workflow is already retired."})
        before = snapshot(workflow, ("status", "retired_at"))
        workflow.status = WorkflowStatus.RETIRED
        workflow.retired_at = timezone.now()
        workflow.save(update_fields=["status", "retired_at", "updated_at"])
        record(actor=actor, action="workflow.retire", instance=workflow,
               summary=f"Retired {workflow}: {reason}", before=before,
               after=snapshot(workflow, ("status", "retired_at")))
    return workflow


def binding_create(*, actor: Actor, data: Mapping[str, Any]) -> Binding:
    """Bind a credential to a workflow. The writer must be able to change the workflow and see the credential."""
    data = _only(data, BINDING_FIELDS)
    with transaction.atomic():
        binding = Binding()
        apply_and_validate(binding, data, text_fields=("purpose", "scopes_used"))
        ensure_can_change(actor, binding.workflow)
        if actor.kind != "system" and not permissions.can(actor.user, permissions.VIEW, binding.credential):
            raise PermissionDenied("You may not use this credential.")
        binding.save()
        record(actor=actor, action="binding.create", instance=binding,
               summary=f"{binding.workflow} now uses {binding.credential}", before={},
               after=snapshot(binding, BINDING_FIELDS))
    return binding


def binding_delete(*, actor: Actor, binding: Binding) -> None:
    with transaction.atomic():
        ensure_can_change(actor, binding.workflow)
        before = snapshot(binding, BINDING_FIELDS)
        record(actor=actor, action="binding.delete", instance=binding,
               summary=f"{binding.workflow} no longer uses {binding.credential}", before=before, after={})
        binding.delete()


# The uniform write calls of each inventory kind ---------------------------------------------------

@dataclass(frozen=True)
class KindWrites:
    """One inventory kind's writes with uniform signatures, for the portal's pages and the API's viewsets."""

    create: Callable[[Actor, Mapping[str, Any]], Any]
    update: Callable[[Actor, Any, Mapping[str, Any]], Any]
    retire: Callable[[Actor, Any, str], Any] | None = None


WRITES: dict[str, KindWrites] = {
    "workflow": KindWrites(
        create=lambda actor, data: workflow_create(actor=actor, data=data),
        update=lambda actor, obj, data: workflow_update(actor=actor, workflow=obj, data=data),
        retire=lambda actor, obj, reason: workflow_retire(actor=actor, workflow=obj, reason=reason)),
    "credential": KindWrites(
        create=lambda actor, data: credential_create(actor=actor, data=data),
        update=lambda actor, obj, data: credential_update(actor=actor, credential=obj, data=data)),
    "system": KindWrites(
        create=lambda actor, data: system_create(actor=actor, data=data),
        update=lambda actor, obj, data: system_update(actor=actor, system=obj, data=data),
        retire=lambda actor, obj, reason: system_retire(actor=actor, system=obj, reason=reason)),
    "secretstore": KindWrites(
        create=lambda actor, data: secret_store_create(actor=actor, data=data),
        update=lambda actor, obj, data: secret_store_update(actor=actor, store=obj, data=data)),
}
