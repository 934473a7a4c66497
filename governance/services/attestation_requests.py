"""The approval requests that attestation answers file (governance.services.approvals).

transfer      -> ownership_transfer        on the object, payload {new_owner, new_team}
change_scopes -> privileged_scope_change   on the credential (for a workflow item: the bound
                                           credential chosen, or its only one), payload
                                           {scopes, privilege_level}
revoke        -> retirement                on a workflow; for a credential, the first registered
                                           action among REVOKE_CREDENTIAL_ACTIONS that accepts one
The payloads follow the schemas in governance.services.approvals_actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from governance.audit import Actor
from governance.choices import PrivilegeLevel
from governance.models import Credential, Person, Team, Workflow
from governance.models.attestation import ItemAnswer
from governance.secret_guard import reject_secret_values
from governance.services.approvals import approval_request_file
from governance.services.approvals_registry import all_actions

REVOKE_CREDENTIAL_ACTIONS = ("retirement",)


@dataclass
class RequestPlan:
    """What to file (None for confirm and flag) and what the item records about the answer."""

    details: dict = field(default_factory=dict)
    action: str = ""
    target: object = None
    payload: dict = field(default_factory=dict)


def _transfer(obj, person: Person, transfer_to: Person | None, transfer_team: Team | None) -> RequestPlan:
    if transfer_to is None:
        raise ValidationError({"transfer_to": "Say who should own it instead."})
    if transfer_to.is_departed or not transfer_to.is_active:
        raise ValidationError({"transfer_to": f"{transfer_to} has departed and cannot own anything."})
    if transfer_to.pk == person.pk:
        raise ValidationError({"transfer_to": "Choose someone else: you answer for it already."})
    payload = {"new_owner": transfer_to.pk, "new_team": transfer_team.pk if transfer_team else None}
    details = {"transfer_to": transfer_to.pk, "transfer_to_label": transfer_to.get_username(),
               "transfer_team": payload["new_team"]}
    return RequestPlan(details, "ownership_transfer", obj, payload)


def _scope_target(obj, scope_credential: Credential | None) -> Credential:
    if isinstance(obj, Credential):
        return obj
    bound = Credential.objects.filter(bindings__workflow=obj).order_by("name")
    if scope_credential is not None:
        if not bound.filter(pk=scope_credential.pk).exists():
            raise ValidationError({"scope_credential": f"{scope_credential} is not used by {obj}."})
        return scope_credential
    if bound.count() != 1:
        raise ValidationError({"scope_credential": f"Choose which credential of {obj} needs other scopes."})
    return bound.get()


def _scope_change(obj, scope_credential, requested_scopes, privilege_level) -> RequestPlan:
    credential = _scope_target(obj, scope_credential)
    scopes = [str(s).strip() for s in (requested_scopes or []) if str(s).strip()]
    reject_secret_values({"requested_scopes": ", ".join(scopes)}, ["requested_scopes"])
    privilege_level = privilege_level or credential.privilege_level
    if privilege_level not in PrivilegeLevel.values:
        raise ValidationError({"requested_privilege_level": "Choose read, write or admin."})
    if scopes == list(credential.scopes) and privilege_level == credential.privilege_level:
        raise ValidationError({"requested_scopes": f"Give the scopes {credential} should have: the ones you "
                                                   f"typed are its current ones."})
    payload = {"scopes": scopes, "privilege_level": privilege_level}
    details = {"credential": credential.pk, "credential_label": credential.name, "requested_scopes": scopes,
               "previous_scopes": list(credential.scopes), "privilege_level": privilege_level}
    return RequestPlan(details, "privileged_scope_change", credential, payload)


def _revoke(obj) -> RequestPlan:
    if isinstance(obj, Workflow):
        return RequestPlan({}, "retirement", obj, {})
    actions = all_actions()
    for code in REVOKE_CREDENTIAL_ACTIONS:
        spec = actions.get(code)
        if spec is not None and Credential in spec.target_models:
            return RequestPlan({}, code, obj, {})
    raise ValidationError({"answer": "Approvals cannot take a request to revoke a credential yet. Flag it "
                                     "with a comment instead, and a security admin will follow up."})


def plan_request(*, answer: str, obj, person: Person, transfer_to: Person | None = None,
                 transfer_team: Team | None = None, scope_credential: Credential | None = None,
                 requested_scopes=None, requested_privilege_level: str | None = None) -> RequestPlan:
    if answer == ItemAnswer.TRANSFER:
        return _transfer(obj, person, transfer_to, transfer_team)
    if answer == ItemAnswer.CHANGE_SCOPES:
        return _scope_change(obj, scope_credential, requested_scopes, requested_privilege_level)
    if answer == ItemAnswer.REVOKE:
        return _revoke(obj)
    return RequestPlan()


def file_request(*, actor: Actor, plan: RequestPlan, comment: str, campaign, ticket: dict | None):
    """File the planned request in the caller's transaction; its refusal rolls the answer back."""
    plan.details.update(request_action=plan.action,
                        request_target=f"{plan.target._meta.label_lower}:{plan.target.pk}")
    return approval_request_file(actor=actor, action=plan.action, target=plan.target, payload=plan.payload,
                                 justification=f"Attestation {campaign}: {comment}", ticket=ticket or None)
