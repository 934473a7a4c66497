"""What happens to an item still unanswered at its campaign's grace deadline.

The default is an open finding of the check `attestation` (catalogue: attestation-current) for
the object, opened by a checks sweep requested after commit; a campaign may instead suspend the
workflow through the kill switch, and when the kill switch refuses or fails the finding path is
taken instead.
The kill switch talks to connectors over the network, so the sweep calls these functions
outside any transaction of its own. Each returns (consequence, reference, note) and never raises,
so one object cannot stall the sweep.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError

from governance.audit import Actor
from governance.models.attestation import AttestationItem, Consequence
from governance.services.killswitch import killswitch_activate
from governance.services.lifecycle import request_sweep

logger = logging.getLogger(__name__)
CHECK_CODE = "attestation"


def _evidence(item: AttestationItem) -> dict:
    return {
        "campaign": item.campaign.name, "campaign_id": item.campaign_id, "item": item.pk,
        "due_at": item.campaign.due_at, "grace_until": item.campaign.grace_until,
        "assignee": item.assignee_id, "reminded_at": item.reminded_at, "escalated_at": item.escalated_at,
    }


def open_finding(*, actor: Actor, item: AttestationItem) -> tuple[str, str, str]:
    """The attestation check fails objects whose item lapsed; sweep it after commit so the finding opens."""
    if item.get_object() is None:
        return Consequence.RECORDED, "", "lapse recorded (the object no longer exists)"
    request_sweep([CHECK_CODE], trigger="attestation-lapsed")
    return Consequence.FINDING, "", f"the {CHECK_CODE} check reports the lapse as a finding"


def suspend_workflow(*, actor: Actor, item: AttestationItem) -> tuple[str, str, str]:
    workflow = item.get_object()
    if workflow is None:
        kind, ref, note = open_finding(actor=actor, item=item)
        return kind, ref, f"{note}; the workflow no longer exists, so no suspension"
    reason = f"Not attested in {item.campaign} by its grace deadline {item.campaign.grace_until:%Y-%m-%d}."
    try:
        activation = killswitch_activate(actor=actor, workflow=workflow, reason=reason)
    except (ValidationError, PermissionDenied) as exc:
        kind, ref, note = open_finding(actor=actor, item=item)
        return kind, ref, f"{note}; kill switch refused: {exc}"
    except Exception as exc:  # a connector failure: the kill switch records its own steps
        logger.exception("kill switch for attestation item %s failed", item.pk)
        kind, ref, note = open_finding(actor=actor, item=item)
        return kind, ref, f"{note}; kill switch failed: {exc}"
    reference = str(getattr(activation, "pk", ""))
    return Consequence.SUSPENSION, reference, "workflow suspended through the kill switch"
