"""Writes to the inventory: systems, secret stores, credentials, workflows and bindings.

A plain edit changes only a kind's descriptive fields. The gated ones (state, owner, backup team,
privilege and scopes, drill, rotation and attestation stamps) change through their own audited
operations: a transition (services.states), an ownership transfer, a privileged scope change, a
drill, a rotation. Every write path (portal, API, import) calls these services, so the rule is here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import permissions, roles
from governance.audit import Actor, audit_append
from governance.choices import SystemLifecycle, WorkflowStatus
from governance.hosts import host_names_validator, normalise_host
from governance.models import Binding, Credential, SecretStore, System, Workflow
from governance.models.approvals import ApprovalAction
from governance.services import states
from governance.services.common import (
    apply_and_validate,
    ensure_can_change,
    ensure_may_write,
    ensure_security_admin,
    ensure_still_in_scope,
    record,
    snapshot,
)

# What a plain edit may change: the descriptive fields of each kind (an explicit allow-list).
SYSTEM_FIELDS = ("name", "description", "environment", "criticality", "third_party", "vendor")
SECRET_STORE_FIELDS = ("name", "kind", "address", "settings", "credential_env_var", "description")
CREDENTIAL_FIELDS = (
    "name", "kind", "system", "identifier", "store", "store_path", "fingerprint", "expires_at",
    "rotation_max_age_days", "last_used_at", "human_use_detected", "human_use_evidence", "third_party_reviewed_at",
    "notes",
)
WORKFLOW_FIELDS = (
    "name", "description", "kind", "platform", "systems", "criticality", "can_authenticate", "can_provision",
    "can_change", "can_rotate", "can_revoke", "shutdown_procedure", "kill_switch_steps",
    "uses_no_credentials", "no_credentials_statement",
    "approval_policy",  # security admins only (_ensure_may_set_approval_path)
)
BINDING_FIELDS = ("workflow", "credential", "purpose", "scopes_used")

_TRANSFER = "an ownership transfer request (POST /api/v1/approval-requests/ action=ownership_transfer)"
_OWNER = f"change the owner with {_TRANSFER}"
_TEAM = f"change the backup team with {_TRANSFER} and new_team"
_SCOPES = ("change scopes and privilege level with a privileged scope change request "
           "(POST /api/v1/approval-requests/ action=privileged_scope_change)")
_ROTATION = "set only by a proven rotation (portal: Rotate on the credential's page) or an approved provisioning"
_DRILL = "set only by a kill-switch drill (portal: Drill on the workflow's page)"
# The gated fields of each kind: they change only through the operation named, never a plain edit.
GATED_FIELDS: dict[type, dict[str, str]] = {
    System: {
        "lifecycle": "a system's lifecycle changes through its transitions: POST /api/v1/systems/{id}/transition/ "
                     "(activate, begin_retirement) or a retirement request (action=retirement)",
        "owner": _OWNER, "team": _TEAM,
        "hosts": "the names a system's certificates may carry are set by a security admin, with a reason: "
                 "POST /api/v1/systems/{id}/hosts/",
    },
    Credential: {
        "status": "a credential's status changes through its transitions: POST /api/v1/credentials/{id}/"
                  "transition/ (activate), revocation (portal: Revoke), its workflow's kill switch or a "
                  "reactivation request (action=reactivation)",
        "owner": _OWNER, "team": _TEAM, "privilege_level": _SCOPES, "scopes": _SCOPES,
        "last_rotated_at": _ROTATION, "store_version": _ROTATION, "issued_at": _ROTATION,
    },
    Workflow: {
        "status": "a workflow's status changes through its transitions: POST /api/v1/workflows/{id}/transition/ "
                  "(activate), the kill switch, a reactivation request (POST /api/v1/approval-requests/ "
                  "action=reactivation) or a retirement request (action=retirement)",
        "owner": _OWNER, "team": _TEAM, "last_drilled_at": _DRILL, "last_drill_result": _DRILL,
    },
}
# Gated fields a person may still declare when registering an object (the scope check and the
# approval-sod check apply); the rest a new object gets from Steward unless a security admin sets them.
DECLARABLE_ON_CREATE = frozenset({"owner", "team", "privilege_level", "scopes"})
DESCRIPTIVE_FIELDS = {System: SYSTEM_FIELDS, Credential: CREDENTIAL_FIELDS, Workflow: WORKFLOW_FIELDS}
OWNED_FIELDS = {model: (*fields, *GATED_FIELDS[model]) for model, fields in DESCRIPTIVE_FIELDS.items()}


def gated_message(model, name: str) -> str:
    """What every write path answers for a gated field: its name and the operation that changes it."""
    return f"{name}: {GATED_FIELDS[model][name]}."


def _only(data: Mapping[str, Any], allowed) -> dict[str, Any]:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationError({name: "Unknown or read-only field." for name in unknown})
    return dict(data)


def same_value(instance, name: str, value) -> bool:
    """Does value equal what instance holds in field name (relations by primary key, m2m as sets)?"""
    field = instance._meta.get_field(name)
    if field.many_to_many:
        current = set(getattr(instance, name).values_list("pk", flat=True)) if instance.pk else set()
        return current == {getattr(v, "pk", v) for v in (value or [])}
    if field.is_relation:
        if isinstance(value, bool):  # JSON true is not an id
            return False
        return getattr(value, "pk", value) == getattr(instance, field.attname)
    current = getattr(instance, name)
    if value in (None, "") and current in (None, ""):
        return True
    try:
        return field.to_python(value) == current
    except ValidationError:
        return False


def refuse_gated_changes(instance, data: Mapping[str, Any]) -> dict[str, Any]:
    """Raise for every gated field data would change; return data without the gated fields it repeats."""
    gated = GATED_FIELDS[type(instance)]
    changed = {name: gated_message(type(instance), name) for name in data
               if name in gated and not same_value(instance, name, data[name])}
    if changed:
        raise ValidationError(changed)
    return {name: value for name, value in data.items() if name not in gated}


def _may_set_everything(actor: Actor) -> bool:
    return actor.kind == "system" or roles.is_security_admin(actor.user)


def creation_refusals(*, actor: Actor, model, data: Mapping[str, Any]) -> dict[str, str]:
    """The gated fields this actor may not set when registering an object, each with its message.

    Security admins and Steward may set them all; a person declares owner (themselves), backup team,
    privilege level and scopes, and the state only as the machine's initial one.
    """
    if _may_set_everything(actor):
        return {}
    machine = states.machine_for(model)
    refused = {name: f"{name}: not set when registering; {GATED_FIELDS[model][name]}."
               for name in data if name in GATED_FIELDS[model] and name not in DECLARABLE_ON_CREATE
               and not (name == machine.field and data[name] == machine.initial)}
    owner = data.get("owner")
    if owner is not None and getattr(owner, "pk", owner) != actor.user.pk:
        refused["owner"] = (f"owner: register it as your own, then {_OWNER} (a security admin may register "
                            "it for someone else).")
    return refused


def _creation_data(*, actor: Actor, model, data: Mapping[str, Any]) -> dict[str, Any]:
    """A person registers with the descriptive fields, owner (themselves), team, privilege and scopes."""
    data = _only(data, OWNED_FIELDS[model])
    refused = creation_refusals(actor=actor, model=model, data=data)
    if refused:
        raise ValidationError(refused)
    if actor.kind != "system" and "owner" not in data:
        data["owner"] = actor.user
    machine = states.machine_for(model)
    data.setdefault(machine.field, machine.initial)
    return data


def _check_owner_active(data: Mapping[str, Any]) -> None:
    owner = data.get("owner")
    if owner is not None and getattr(owner, "is_departed", False):
        raise ValidationError({"owner": f"{owner} has departed and cannot own anything."})


def _create_owned(*, actor: Actor, model, data: Mapping[str, Any], action: str):
    ensure_may_write(actor)
    data = _creation_data(actor=actor, model=model, data=data)
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


def model_update(*, instance, fields, data: Mapping[str, Any]) -> bool:
    """Apply data to instance, only the fields named (the kind's allow-list); True when something changed."""
    data = _only(data, fields)
    before = snapshot(instance, fields)
    m2m = apply_and_validate(instance, data, text_fields=data.keys())
    instance.save()
    for name, values in m2m.items():
        getattr(instance, name).set(values)
    return snapshot(instance, fields) != before


def _update_owned(*, actor: Actor, instance, data: Mapping[str, Any], action: str):
    """A plain edit: descriptive fields only; a gated field sent with a new value is refused, naming its operation."""
    model = type(instance)
    data = _only(data, OWNED_FIELDS[model])
    with transaction.atomic():
        instance = model.objects.select_for_update().get(pk=instance.pk)
        ensure_can_change(actor, instance)
        data = refuse_gated_changes(instance, data)
        before = snapshot(instance, OWNED_FIELDS[model])
        model_update(instance=instance, fields=DESCRIPTIVE_FIELDS[model], data=data)
        ensure_still_in_scope(actor, instance)
        after = snapshot(instance, OWNED_FIELDS[model])
        if before != after:
            record(actor=actor, action=action, instance=instance, summary=f"Updated {instance}", before=before,
                   after=after)
    return instance


def system_create(*, actor: Actor, data: Mapping[str, Any]) -> System:
    return _create_owned(actor=actor, model=System, data=data, action="system.create")


def system_update(*, actor: Actor, system: System, data: Mapping[str, Any]) -> System:
    return _update_owned(actor=actor, instance=system, data=data, action="system.update")


def system_hosts_set(*, actor: Actor, system: System, hosts, reason: str) -> System:
    """A security admin declares the host names the system's certificates may carry (governance.hosts).

    The list is the policy a renewal or a provisioning is held to, so an owner cannot widen it."""
    ensure_security_admin(actor)
    if not str(reason or "").strip():
        raise ValidationError({"reason": "Say why the system's host names change."})
    try:
        host_names_validator(hosts)
    except ValidationError as error:
        raise ValidationError({"hosts": error.messages}) from None
    names = sorted({normalise_host(name) for name in hosts})
    with transaction.atomic():
        system = System.objects.select_for_update().get(pk=system.pk)
        before = list(system.hosts or [])
        if before == names:
            return system
        system.hosts = names
        system.save(update_fields=["hosts", "updated_at"])
        audit_append(actor=actor, action="system.hosts_set", target=system,
                     summary=f"Host names of {system}: {', '.join(names) or 'none'} ({reason.strip()})"[:500],
                     changes={"hosts": {"before": before, "after": names}})
    return system


def system_retire(*, actor: Actor, system: System, reason: str, approval_request=None) -> System:
    """Retire a system: a security admin, or an approved retirement request. Its credentials are deprovisioned."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the system is retired."})
    with transaction.atomic():
        system = System.objects.select_for_update().get(pk=system.pk)
        if approval_request is None:
            ensure_security_admin(actor)  # owners file a retirement request (approvals) instead
        if system.lifecycle == SystemLifecycle.RETIRED:
            raise ValidationError({"lifecycle": "This system is already retired."})
        states.state_transition(actor=actor, instance=system, action="system.retire",
                                transition="retire" if approval_request is None else "retire_on_request",
                                approval_request=approval_request, fields={"retired_at": timezone.now()},
                                summary=f"Retired {system}: {reason}")
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
    _ensure_may_set_approval_path(actor, workflow.approval_policy_id, data)
    return _update_owned(actor=actor, instance=workflow, data=data, action="workflow.update")


def workflow_retire(*, actor: Actor, workflow: Workflow, reason: str, approval_request=None) -> Workflow:
    """Retire a workflow: a security admin, or an approved retirement request."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the workflow is retired."})
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if approval_request is None:
            ensure_security_admin(actor)  # owners file a retirement request (approvals) instead
        if workflow.status == WorkflowStatus.RETIRED:
            raise ValidationError({"status": "This workflow is already retired."})
        states.state_transition(actor=actor, instance=workflow, action="workflow.retire",
                                transition="retire" if approval_request is None else "retire_on_request",
                                approval_request=approval_request, fields={"retired_at": timezone.now()},
                                summary=f"Retired {workflow}: {reason}")
    return workflow


def credential_change_privilege(*, actor: Actor, credential: Credential, scopes: list[str], privilege_level: str,
                                approval_request) -> Credential:
    """The one write of a credential's scopes and privilege level after creation: an approved scope change."""
    if not states.approval_matches(approval_request, ApprovalAction.PRIVILEGED_SCOPE_CHANGE, credential):
        raise ValidationError({"scopes": f"scopes: {_SCOPES}."})
    fields = ("scopes", "privilege_level")
    with transaction.atomic():
        credential = Credential.objects.select_for_update().get(pk=credential.pk)
        before = snapshot(credential, fields)
        credential.scopes, credential.privilege_level = list(scopes), privilege_level
        credential.full_clean()
        credential.save(update_fields=[*fields, "updated_at"])
        record(actor=actor, action="credential.scope_change", instance=credential,
               summary=f"Scopes of {credential} changed (request #{approval_request.pk})", before=before,
               after=snapshot(credential, fields))
    return credential


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


def gated_fields_markdown() -> str:
    """The gated fields of each kind and the operation that changes each, as docs/integrations.md shows them."""
    lines = ["| resource | read-only field | changed by |", "| --- | --- | --- |"]
    for model, fields in GATED_FIELDS.items():
        resource = f"`{model._meta.verbose_name_plural.replace(' ', '-')}`"
        lines += [f"| {resource} | `{name}` | {operation} |" for name, operation in fields.items()]
    return "\n".join(lines) + "\n"
