"""The built-in approval actions: their payload schemas, validation, readable diff and executor.

Each executor applies the approved change through the same services as everything else, as the
system task "approval-<id>", so the change has its own audit events beside the approval's.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from governance import permissions, roles
from governance.choices import (
    MANAGED_STORE_KINDS,
    CredentialKind,
    CredentialStatus,
    Criticality,
    PrivilegeLevel,
    SystemLifecycle,
    WorkflowKind,
    WorkflowStatus,
)
from governance.models import Credential, Person, SecretStore, System, Team, Workflow
from governance.models.approvals import ApprovalAction
from governance.models.checks import Finding
from governance.secret_guard import reject_secret_values
from governance.services import killswitch, provisioning
from governance.services.approvals_registry import (
    DiffRow,
    ExpiryDateField,
    ListField,
    PayloadForm,
    parse_payload,
    register_approval_action,
)
from governance.services.credential_expiry import credential_requested_expiry_check

MAX_RISK_ACCEPTANCE_DAYS = 365


def _may_change(*, person, target) -> str | None:
    if permissions.can(person, permissions.CHANGE, target):
        return None
    return f"Only the owner or team of {target} (or a security admin) may ask for this change."


def _reason(request) -> str:
    return f"Approval request #{request.pk}: {request.justification}"


# Provision a new credential for a workflow


class ProvisionCredentialPayload(PayloadForm):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=CredentialKind.choices)
    system = forms.ModelChoiceField(queryset=System.objects.exclude(lifecycle=SystemLifecycle.RETIRED))
    identifier = forms.CharField(max_length=300, help_text="Non-secret: key id, account name, serial.")
    store = forms.ModelChoiceField(queryset=SecretStore.objects.filter(kind__in=MANAGED_STORE_KINDS),
                                   help_text="A new credential lives in a managed store.")
    store_path = forms.CharField(max_length=500)
    scopes = ListField(required=False, help_text="Comma-separated, e.g. repo:read, deploy:write")
    privilege_level = forms.ChoiceField(choices=PrivilegeLevel.choices, initial=PrivilegeLevel.READ)
    rotation_max_age_days = forms.IntegerField(min_value=1, required=False)
    expires_at = ExpiryDateField(required=False, help_text="Empty: no fixed expiry. At most the rotation "
                                 "policy's maximum age from today.")
    purpose = forms.CharField(max_length=300, help_text="What the workflow uses it for.")
    scopes_used = ListField(required=False, help_text="Empty: all of the credential's scopes.")

    def __init__(self, *args, requester=None, target=None, **kwargs):
        super().__init__(*args, requester=requester, target=target, **kwargs)
        systems = System.objects.exclude(lifecycle=SystemLifecycle.RETIRED)
        if requester is not None:
            visible = permissions.restrict(System.objects.all(), requester, permissions.VIEW).values("pk")
            acted_on = target.systems.values("pk") if isinstance(target, Workflow) else System.objects.none()
            systems = systems.filter(pk__in=visible) | systems.filter(pk__in=acted_on)
        self.fields["system"].queryset = systems.distinct().order_by("name")


def _provision_validate(*, requester, target, payload):
    data = parse_payload(ProvisionCredentialPayload, payload, requester=requester, target=target)
    reject_secret_values(data, ("name", "identifier", "store_path", "scopes", "purpose", "scopes_used"))
    if target.status == WorkflowStatus.RETIRED:
        raise ValidationError({"workflow": f"{target} is retired: it gets no new credentials."})
    credential_requested_expiry_check(kind=data["kind"], expires_at=data.get("expires_at"),
                                      rotation_max_age_days=data.get("rotation_max_age_days"))
    if Credential.objects.filter(system=data["system"], identifier=data["identifier"]).exists():
        raise ValidationError({"identifier": f"{data['system']} already has a credential {data['identifier']!r}."})
    data["scopes"] = provisioning.provision_scopes_validate(system=data["system"], store=data["store"],
                                                            kind=data["kind"], scopes=data["scopes"])
    return data


def _provision_execute(*, request, target, payload, actor):
    # cycle: this service imports approvals_actions to execute approved requests
    from governance.services import inventory

    owner = target.owner if target.owner is not None and not target.owner.is_departed else request.requested_by
    credential = inventory.credential_create(actor=actor, data={
        "name": payload["name"], "kind": payload["kind"], "system": payload["system"],
        "identifier": payload["identifier"], "store": payload["store"], "store_path": payload["store_path"],
        "scopes": payload["scopes"], "privilege_level": payload["privilege_level"],
        "rotation_max_age_days": payload["rotation_max_age_days"], "expires_at": payload["expires_at"],
        "status": CredentialStatus.PROVISIONING,  # active only once its connector proved it (services.provisioning)
        "owner": owner, "team": target.team, "notes": f"Provisioned through approval request #{request.pk}.",
    })
    inventory.binding_create(actor=actor, data={
        "workflow": target, "credential": credential, "purpose": payload["purpose"],
        "scopes_used": payload["scopes_used"] or payload["scopes"],
    })
    provisioning.provisioning_start(actor=actor, credential=credential, approval_request=request)
    return credential


def _new_object_diff(schema, payload, labels=None) -> list[DiffRow]:
    rows = []
    for name, value in payload.items():
        if name in schema.base_fields:
            rows.append(DiffRow(str(schema.base_fields[name].label or name.replace("_", " ").capitalize()),
                                None, _readable(name, value, labels or {})))
    return rows


def _readable(name, value, labels):
    models_by_field = {"system": System, "store": SecretStore, "team": Team, "new_team": Team,
                       "new_owner": Person, "systems": System}
    model = models_by_field.get(name)
    if model is not None and value not in (None, "", []):
        if isinstance(value, list):
            return ", ".join(str(o) for o in model.objects.filter(pk__in=value).order_by("pk")) or "—"
        return str(model.objects.filter(pk=value).first() or f"#{value} (missing)")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return labels.get(name, {}).get(value, value) if value not in (None, "") else "—"


CHOICE_LABELS = {"kind": dict(CredentialKind.choices) | dict(WorkflowKind.choices),
                 "privilege_level": dict(PrivilegeLevel.choices), "criticality": dict(Criticality.choices)}


def _provision_diff(*, target, payload):
    return [DiffRow("Workflow", str(target), str(target)),
            *_new_object_diff(ProvisionCredentialPayload, payload, CHOICE_LABELS)]


# Register a new workflow


class RegisterWorkflowPayload(PayloadForm):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    kind = forms.ChoiceField(choices=WorkflowKind.choices)
    platform = forms.CharField(max_length=100)
    systems = forms.ModelMultipleChoiceField(queryset=System.objects.all(), required=False,
                                             widget=forms.CheckboxSelectMultiple)
    criticality = forms.ChoiceField(choices=Criticality.choices, initial=Criticality.MEDIUM)
    can_authenticate = forms.BooleanField(required=False, initial=True)
    can_provision = forms.BooleanField(required=False)
    can_change = forms.BooleanField(required=False)
    can_rotate = forms.BooleanField(required=False)
    can_revoke = forms.BooleanField(required=False)
    shutdown_procedure = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    kill_switch_steps = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                  help_text="The backup team: one of yours.")

    def __init__(self, *args, requester=None, target=None, **kwargs):
        super().__init__(*args, requester=requester, target=target, **kwargs)
        if requester is not None:
            visible = permissions.restrict(System.objects.all(), requester, permissions.VIEW)
            self.fields["systems"].queryset = visible.order_by("name")


def _register_validate(*, requester, target, payload):
    data = parse_payload(RegisterWorkflowPayload, payload, requester=requester, target=target)
    reject_secret_values(data, ("name", "description", "platform", "shutdown_procedure", "kill_switch_steps"))
    if Workflow.objects.filter(name=data["name"]).exists():
        raise ValidationError({"name": f"A workflow named {data['name']!r} exists already."})
    team = data["team"]
    if team is not None and not roles.is_security_admin(requester) and \
            not requester.groups.filter(pk=team.group_id).exists():
        raise ValidationError({"team": f"You are not in {team}: choose one of your own teams as backup."})
    return data


def _register_execute(*, request, target, payload, actor):
    # cycle: this service imports approvals_actions to execute approved requests
    from governance.services import inventory

    data = {name: payload[name] for name in RegisterWorkflowPayload.base_fields}
    data.update(systems=list(payload["systems"]), owner=request.requested_by, status=WorkflowStatus.ACTIVE)
    return inventory.workflow_create(actor=actor, data=data)


def _register_diff(*, target, payload):
    return _new_object_diff(RegisterWorkflowPayload, payload, CHOICE_LABELS)


# Privileged scope change of a credential


class ScopeChangePayload(PayloadForm):
    scopes = ListField(required=False, help_text="The complete new list of scopes.")
    privilege_level = forms.ChoiceField(choices=PrivilegeLevel.choices)


def _scope_validate(*, requester, target, payload):
    data = parse_payload(ScopeChangePayload, payload)
    reject_secret_values(data, ("scopes",))
    if target.status not in (CredentialStatus.ACTIVE, CredentialStatus.REQUESTED, CredentialStatus.SUSPENDED):
        raise ValidationError({"credential": f"{target} is {target.status}: its scopes no longer matter."})
    if data["scopes"] == list(target.scopes) and data["privilege_level"] == target.privilege_level:
        raise ValidationError({"scopes": f"{target} already has these scopes and this privilege level."})
    return data


def _scope_execute(*, request, target, payload, actor):
    # cycle: this service imports approvals_actions to execute approved requests
    from governance.services import inventory

    inventory.credential_change_privilege(actor=actor, credential=target, scopes=payload["scopes"],
                                          privilege_level=payload["privilege_level"], approval_request=request)
    return None


def _scope_diff(*, target, payload):
    return [DiffRow("Scopes", ", ".join(target.scopes) or "—", ", ".join(payload.get("scopes") or []) or "—"),
            DiffRow("Privilege level", target.get_privilege_level_display(),
                    dict(PrivilegeLevel.choices).get(payload.get("privilege_level"), "—"))]


# Ownership transfer


class OwnershipTransferPayload(PayloadForm):
    new_owner = forms.ModelChoiceField(queryset=Person.objects.active().order_by("username"))
    new_team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                      help_text="Empty: keep the current backup team.")


def _transfer_validate(*, requester, target, payload):
    data = parse_payload(OwnershipTransferPayload, payload)
    same_team = data["new_team"] is None or data["new_team"].pk == target.team_id
    if data["new_owner"].pk == target.owner_id and same_team:
        raise ValidationError({"new_owner": f"{data['new_owner']} already owns {target}."})
    return data


def _transfer_execute(*, request, target, payload, actor):
    # cycle: this service imports approvals_actions to execute approved requests
    from governance.services import people

    people.ownership_transfer(actor=actor, obj=target, new_owner=payload["new_owner"],
                              new_team=payload["new_team"], reason=_reason(request))
    return None


def _transfer_diff(*, target, payload):
    new_team = payload.get("new_team") or target.team_id
    return [DiffRow("Owner", str(target.owner or "orphaned"), _readable("new_owner", payload.get("new_owner"), {})),
            DiffRow("Backup team", str(target.team or "—"), _readable("new_team", new_team, {}))]


# Reactivation after a kill switch, and retirement


class EmptyPayload(PayloadForm):
    """These actions need no data beyond their target and the justification."""


def _reactivation_validate(*, requester, target, payload):
    parse_payload(EmptyPayload, payload)
    if target.status != WorkflowStatus.SUSPENDED:
        raise ValidationError({"status": f"{target} is {target.get_status_display().lower()}, not suspended."})
    return {}


def _reactivation_execute(*, request, target, payload, actor):
    """Through the kill switch: the credentials it suspended come back through their connectors, with proof."""
    return killswitch.reactivation_approved_execute(request=request, target=target, payload=payload, actor=actor)


def _reactivation_diff(*, target, payload):
    rows = [DiffRow("Status", target.get_status_display(), WorkflowStatus.ACTIVE.label)]
    rows += [DiffRow(f"Credential {c}", c.get_status_display(), CredentialStatus.ACTIVE.label)
             for c in killswitch.credentials_suspended_by_kill_switch(target)]
    return rows


def _lifecycle_field(target) -> str:
    return "lifecycle" if isinstance(target, System) else "status"


def _retired_value(target) -> str:
    """A credential is retired by revoking it (with proof, through its connector)."""
    return "revoked" if isinstance(target, Credential) else "retired"


def _retirement_validate(*, requester, target, payload):
    parse_payload(EmptyPayload, payload)
    if getattr(target, _lifecycle_field(target)) == _retired_value(target):
        raise ValidationError({_lifecycle_field(target): f"{target} is already {_retired_value(target)}."})
    return {}


def _retirement_execute(*, request, target, payload, actor):
    """Retire, then deprovision (with proof) every credential that only the retired object used."""
    # cycle: this service imports approvals_actions to execute approved requests
    from governance.services.deprovision import retirement_approved_execute

    return retirement_approved_execute(request=request, target=target, payload=payload, actor=actor)


def _retirement_diff(*, target, payload):
    field = _lifecycle_field(target)
    return [DiffRow(field.capitalize(), getattr(target, f"get_{field}_display")(), _retired_value(target).capitalize())]


# Risk acceptance of a finding (the Finding model and its service belong to the checks capability)


class RiskAcceptancePayload(PayloadForm):
    expires_at = ExpiryDateField(help_text="Until the end of this day (at most a year).")


def _risk_validate(*, requester, target, payload):
    data = parse_payload(RiskAcceptancePayload, payload)
    expires_at, now = data["expires_at"], timezone.now()
    if expires_at <= now:
        raise ValidationError({"expires_at": "A risk acceptance ends in the future."})
    if expires_at > now + dt.timedelta(days=MAX_RISK_ACCEPTANCE_DAYS):
        raise ValidationError({"expires_at": f"Accept a risk for at most {MAX_RISK_ACCEPTANCE_DAYS} days."})
    if getattr(target, "state", "") == "resolved":
        raise ValidationError({"finding": "This finding is resolved: there is no risk left to accept."})
    return data


def _risk_execute(*, request, target, payload, actor):
    # cycle: this service imports approvals_actions to execute approved requests
    from governance.services.findings import finding_accept_risk

    finding_accept_risk(actor=actor, finding_id=target.pk, approval_request=request,
                        expires_at=payload["expires_at"])
    return None


def _risk_diff(*, target, payload):
    return [DiffRow("State", getattr(target, "get_state_display", lambda: "—")(), "Risk accepted"),
            DiffRow("Risk accepted until", getattr(target, "risk_accepted_until", None) or "—",
                    payload.get("expires_at"))]


A = ApprovalAction
register_approval_action(
    A.PROVISION_CREDENTIAL, label=A.PROVISION_CREDENTIAL.label, target_models=(Workflow,),
    schema=ProvisionCredentialPayload, validate=_provision_validate, execute=_provision_execute,
    fingerprint_fields=("status",), may_file=_may_change, diff=_provision_diff)
register_approval_action(
    A.REGISTER_WORKFLOW, label=A.REGISTER_WORKFLOW.label, target_models=(), schema=RegisterWorkflowPayload,
    validate=_register_validate, execute=_register_execute, diff=_register_diff)
register_approval_action(
    A.PRIVILEGED_SCOPE_CHANGE, label=A.PRIVILEGED_SCOPE_CHANGE.label, target_models=(Credential,),
    schema=ScopeChangePayload, validate=_scope_validate, execute=_scope_execute,
    fingerprint_fields=("scopes", "privilege_level", "status"), may_file=_may_change, diff=_scope_diff)
register_approval_action(
    A.OWNERSHIP_TRANSFER, label=A.OWNERSHIP_TRANSFER.label, target_models=(System, Workflow, Credential),
    schema=OwnershipTransferPayload, validate=_transfer_validate, execute=_transfer_execute,
    fingerprint_fields=("owner", "team"), may_file=_may_change, diff=_transfer_diff)
register_approval_action(
    A.REACTIVATION, label=A.REACTIVATION.label, target_models=(Workflow,), schema=EmptyPayload,
    validate=_reactivation_validate, execute=_reactivation_execute, fingerprint_fields=("status",),
    may_file=_may_change, diff=_reactivation_diff)
register_approval_action(
    A.RETIREMENT, label=A.RETIREMENT.label, target_models=(System, Workflow, Credential), schema=EmptyPayload,
    validate=_retirement_validate, execute=_retirement_execute, fingerprint_fields=("status", "lifecycle"),
    may_file=_may_change, diff=_retirement_diff)
register_approval_action(
    A.RISK_ACCEPTANCE, label=A.RISK_ACCEPTANCE.label, target_models=(Finding,),
    schema=RiskAcceptancePayload, validate=_risk_validate, execute=_risk_execute,
    fingerprint_fields=("state",), may_file=_may_change, diff=_risk_diff)
