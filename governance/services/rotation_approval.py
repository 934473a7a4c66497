"""The approvals engine's "privileged_rotation" action: releasing a privileged credential's rotation.

Inert until ApprovalAction has the value "privileged_rotation" (the lead adds it, with its
migration); then register_privileged_rotation_action() plugs it into the approvals registry.
Which credentials need it: services.rotation.rotation_requires_approval().
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from governance import permissions
from governance.choices import CredentialStatus
from governance.models import Credential
from governance.services.rotation import PRIVILEGED_ROTATION_ACTION, rotation_job_approve


def _validate(*, requester, target, payload):
    # cycle: approvals_registry imports this module to register the action
    from governance.services.approvals_actions import EmptyPayload
    from governance.services.approvals_registry import parse_payload

    parse_payload(EmptyPayload, payload)
    if target.status != CredentialStatus.ACTIVE:
        raise ValidationError({"status": f"{target} is {target.get_status_display().lower()}: it is not rotated."})
    return {}


def _execute(*, request, target, payload, actor):
    return rotation_job_approve(actor=actor, credential=target, approval_request=request)


def _may_file(*, person, target):
    if permissions.can(person, permissions.CHANGE, target):
        return None
    return f"Only the owner or team of {target} (or a security admin) may ask for its rotation."


def _diff(*, target, payload):
    # cycle: approvals_registry imports this module to register the action
    from governance.services.approvals_registry import DiffRow

    return [DiffRow("Secret", f"version {target.store_version or '?'}", "a new version, made and verified by "
                                                                         "its connector")]


def register_privileged_rotation_action() -> bool:
    """Register the action when the approvals model knows it; returns whether it did."""
    # cycle: approvals_registry imports this module to register the action
    from governance.models.approvals import ApprovalAction
    from governance.services.approvals_registry import register_approval_action

    if PRIVILEGED_ROTATION_ACTION not in ApprovalAction.values:
        return False
    # cycle: approvals_registry imports this module to register the action
    from governance.services.approvals_actions import EmptyPayload

    register_approval_action(
        PRIVILEGED_ROTATION_ACTION, label="Rotation of a privileged credential", target_models=(Credential,),
        schema=EmptyPayload, validate=_validate, execute=_execute, fingerprint_fields=("status", "store_version"),
        may_file=_may_file, diff=_diff)
    return True
