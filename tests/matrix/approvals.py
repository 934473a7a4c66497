"""Permission-matrix rules for the approval pages."""

from tests.matrix_personas import ADMINS, EVERYONE, OWN, POST_ONLY, WRITERS

# The requester (owner), her team (backup owner), the approver whose queue it is in, readers.
REQUEST_VIEWERS = {**OWN, "approver": 200}


def _request(estate, personas):
    """A pending retirement request on a workflow of its own (so the approver's extra view of its
    target does not change what the inventory rows of the matrix expect)."""
    if "approval_request" not in estate:
        from governance.audit import Actor
        from governance.services.approvals import approval_request_file
        from tests.factories import WorkflowFactory
        from tests.factories_approvals import make_policy

        make_policy(name="Matrix policy", groups=[personas.other_team.group])
        workflow = WorkflowFactory(name="matrix-retiring-job", owner=personas.owner, team=personas.team)
        estate["approval_request"] = approval_request_file(
            actor=Actor.for_user(personas.owner), action="retirement", target=workflow, payload={},
            justification="Replaced by the new batch platform")
    return estate["approval_request"]


KWARGS = {
    "approval_request": lambda estate, personas: {"pk": _request(estate, personas).pk},
    "approval_policy": lambda estate, personas: {"pk": _request(estate, personas).policy_id},
    "approval_action": lambda estate, personas: {"action": "register_workflow"},
}

RULES = {
    "approval-queue": (None, EVERYONE),
    "approval-mine": (None, EVERYONE),
    "approval-new": ("approval_action", WRITERS),
    "approval-detail": ("approval_request", REQUEST_VIEWERS),
    "approval-approve": ("approval_request", POST_ONLY),
    "approval-reject": ("approval_request", POST_ONLY),
    "approval-cancel": ("approval_request", POST_ONLY),
    "approval-policy-list": (None, EVERYONE),
    "approval-policy-create": (None, ADMINS),
    "approval-policy-edit": ("approval_policy", ADMINS),
}
