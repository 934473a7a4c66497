"""The four governance items of a workflow, and the gate that keeps it proposed until it has them.

A workflow is registered *proposed* (every write path: portal, API, import, an approved
registration). It becomes active only through the "activate" transition, and that transition is
refused, with one message per missing item, until the workflow has an accountable owner, a
credential source (a credential in a managed store bound to it, or an explicit statement that it
uses none), an approval path (an approval policy) and a shutdown procedure (the runbook and the
kill-switch steps); a privileged workflow also needs a passed drill. The checks `approval_path`
and `credential_source` (governance/checks/workflows.py) report running workflows that lack an
item, whatever way they got there.
"""

from __future__ import annotations

from governance.choices import DrillResult
from governance.models import Workflow
from governance.selectors.governance_items import without_credential_source


def workflow_governance_gaps(workflow: Workflow) -> dict[str, str]:
    """What the workflow still lacks before it may be active: field -> what to do (empty when it has all)."""
    gaps = {}
    if workflow.owner_id is None:
        gaps["owner"] = "Name an accountable owner."
    if without_credential_source(Workflow.objects.filter(pk=workflow.pk)).exists():
        gaps["credentials"] = ("Bind the credentials it uses (held in a managed store), or state that it uses no "
                               "credentials and why.")
    if workflow.approval_policy_id is None:
        gaps["approval_policy"] = "Give it an approval path: a security admin chooses its approval policy."
    if not workflow.shutdown_procedure.strip() or not workflow.kill_switch_steps.strip():
        gaps["shutdown_procedure"] = "Write its shutdown procedure: the runbook and the kill-switch steps."
    if workflow.is_privileged and workflow.last_drill_result != DrillResult.PASSED:
        gaps["last_drill_result"] = ("It can change access without a person: run a kill-switch drill, and pass it, "
                                     "before it is active.")
    return gaps
