"""What a kill switch will do, before it is pulled: the preview, and the steps it lays out.

For each credential bound to the workflow the preview says how it is stopped (a connector that
revokes where the credential is accepted; a connector that only hides Steward's stored copy, plus
a step done by hand at the issuer; or only a step done by hand) and which other workflows use it.
A credential shared with other workflows needs the operator's choice (SharedChoice): suspend it
anyway (they stop too, and are listed in the activation), or rotate and isolate (a new secret for
them, this workflow's binding suspended). The plan is computed in a few queries whatever the
number of bindings: no query per credential.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from governance.choices import CredentialStatus, WorkflowStatus
from governance.connectors import registry
from governance.connectors.base import ConnectorError, Unsupported
from governance.models import Binding, Credential, Workflow
from governance.models.lifecycle import SharedChoice, StepAction

CONNECTOR_LABELS = {
    "openbao_kv": "OpenBao KV: current version deleted (Steward's stored copy only)",
    "openbao_pki": "OpenBao PKI: certificate revoked",
    "postgres_role": "PostgreSQL: role set NOLOGIN, sessions ended",
    "redis_acl": "Redis: ACL user off, connections closed",
    "aws_iam": "AWS IAM: access key set Inactive at the issuer, CI copies deleted",
    "aws_secrets_manager": "AWS Secrets Manager: reads refused (Steward's stored copy only)",
    "github_actions": "GitHub Actions: the secret deleted (the value stays valid where it is accepted)",
    "gitlab_ci": "GitLab CI/CD: the variable deleted (the value stays valid where it is accepted)",
}


@dataclass(frozen=True)
class OtherWorkflow:
    id: int
    name: str
    status: str


@dataclass(frozen=True)
class PreviewRow:
    """One bound credential: how the kill switch stops it, and who else uses it."""

    credential: Credential
    connector: str  # the connector's kind, "" when none acts on it
    revokes_at_issuer: bool
    how: str
    others: tuple[OtherWorkflow, ...]
    problem: str = ""  # why no connector acts on it, or why the one that applies is not usable as configured

    @property
    def shared(self) -> bool:
        return bool(self.others)

    @property
    def needs_manual_step(self) -> bool:
        return not (self.connector and self.revokes_at_issuer)

    @property
    def live(self) -> bool:
        return self.credential.status == CredentialStatus.ACTIVE


@dataclass(frozen=True)
class KillSwitchPreview:
    workflow: Workflow
    rows: tuple[PreviewRow, ...]

    @property
    def shared_rows(self) -> tuple[PreviewRow, ...]:
        """Active credentials other workflows also use: the operator must choose what happens to them."""
        return tuple(row for row in self.rows if row.shared and row.live)

    @property
    def needs_choice(self) -> bool:
        return bool(self.shared_rows)

    @property
    def choices(self) -> list[tuple[str, str]]:
        return list(SharedChoice.choices) if self.needs_choice else []

    def shared_with(self) -> list[dict]:
        """The activation's record of the other workflows, per shared credential."""
        return [{"credential_id": row.credential.pk, "credential": row.credential.name,
                 "workflows": [{"id": o.id, "name": o.name, "status": o.status} for o in row.others]}
                for row in self.shared_rows]


def other_workflows(credential_ids: list[int], *, workflow: Workflow) -> dict[int, tuple[OtherWorkflow, ...]]:
    """credential id -> the other non-retired workflows still bound to it (one query)."""
    found: dict[int, list[OtherWorkflow]] = {}
    rows = (Binding.objects.filter(credential_id__in=credential_ids, suspended_at__isnull=True)
            .exclude(workflow=workflow).exclude(workflow__status=WorkflowStatus.RETIRED)
            .order_by("workflow__name", "workflow_id")
            .values_list("credential_id", "workflow_id", "workflow__name", "workflow__status"))
    for credential_id, workflow_id, name, status in rows:
        found.setdefault(credential_id, []).append(OtherWorkflow(workflow_id, name, status))
    return {pk: tuple(others) for pk, others in found.items()}


def connector_of(credential: Credential) -> tuple[str, bool, str]:
    """(connector kind, revokes at the issuer, problem) for a credential; ("", False, why) without one."""
    kind = registry.connector_kind(credential)
    try:
        connector, _ref = registry.connector_for(credential)
    except Unsupported as error:
        return "", False, error.reason
    except ConnectorError as error:
        return kind, False, error.reason
    return connector.kind or kind, bool(getattr(connector, "revokes_at_issuer", False)), ""


def bound_credentials(workflow: Workflow):
    """The credentials the workflow uses now (an isolated binding no longer counts), ready for the registry."""
    return (Credential.objects.filter(bindings__workflow=workflow, bindings__suspended_at__isnull=True)
            .select_related("store", "system__connector_target", "owner").distinct().order_by("name", "pk"))


def preview_plan(*, workflow: Workflow) -> KillSwitchPreview:
    """What the kill switch of this workflow would do to each credential, and who else uses each."""
    credentials = list(bound_credentials(workflow))
    others = other_workflows([c.pk for c in credentials], workflow=workflow)
    rows = []
    for credential in credentials:
        kind, at_issuer, problem = connector_of(credential)
        if not kind:
            how = f"No connector: suspended by hand ({problem})"
        elif at_issuer:
            how = CONNECTOR_LABELS.get(kind, f"{kind}: revoked where it is accepted")
        else:
            how = (f"{CONNECTOR_LABELS.get(kind, kind)}; it stays valid where it is accepted until a person "
                   "revokes it there")
        rows.append(PreviewRow(credential=credential, connector=kind, revokes_at_issuer=at_issuer, how=how,
                               others=others.get(credential.pk, ()), problem=problem))
    return KillSwitchPreview(workflow=workflow, rows=tuple(rows))


def shared_choice_clean(preview: KillSwitchPreview, shared_choice: str | None) -> str:
    """The operator's choice when a credential is shared (required then), "" otherwise."""
    choice = (shared_choice or "").strip()
    if not preview.needs_choice:
        return ""
    if choice not in SharedChoice.values:
        shared = "; ".join(f"{row.credential} is also used by {', '.join(o.name for o in row.others)}"
                           for row in preview.shared_rows)
        raise ValidationError({"shared_choice": (
            f"{shared}. Choose {SharedChoice.SUSPEND_ANYWAY} (suspend it: those workflows stop too) or "
            f"{SharedChoice.ROTATE_ISOLATE} (a new secret for them; {preview.workflow} loses the credential).")})
    return choice


@dataclass(frozen=True)
class PlannedStep:
    action: str
    credential: Credential | None
    label: str
    manual: bool = False
    detail: str = ""


def activation_steps(preview: KillSwitchPreview, *, shared_choice: str) -> list[PlannedStep]:
    """The steps after the workflow's own suspension, per bound credential, in the preview's order."""
    steps: list[PlannedStep] = []
    for row in preview.rows:
        credential = row.credential
        if not row.live:
            steps.append(PlannedStep(StepAction.SUSPEND_CREDENTIAL, credential, f"Suspend {credential}",
                                     detail=f"Already {credential.get_status_display().lower()}."))
            continue
        where = f"where {credential.system} accepts it" if credential.system_id else "where it is accepted"
        if row.shared and shared_choice == SharedChoice.ROTATE_ISOLATE:
            users = ", ".join(o.name for o in row.others)
            if row.connector:
                steps.append(PlannedStep(StepAction.ISOLATE_CREDENTIAL, credential,
                                         f"Rotate {credential}: a new secret for {users}; {preview.workflow} no "
                                         "longer uses it"))
            if row.needs_manual_step:
                steps.append(PlannedStep(StepAction.MANUAL_ROTATE, credential, manual=True, label=(
                    f"Replace {credential} {where} with a new secret for {users}, and revoke the old one there"
                    + ("" if row.connector else f" (no connector: {row.how})"))))
            continue
        if row.connector:
            steps.append(PlannedStep(StepAction.SUSPEND_CREDENTIAL, credential, f"Suspend {credential}"))
            if row.needs_manual_step:
                steps.append(PlannedStep(StepAction.MANUAL_ISSUER, credential, manual=True, label=(
                    f"Revoke or disable {credential} {where}: Steward only hid its stored copy")))
        else:
            steps.append(PlannedStep(StepAction.MANUAL_SUSPEND, credential, manual=True, label=(
                f"Suspend {credential} by hand {where} ({row.problem})")))
    return steps


def reactivation_steps(credentials: list[Credential]) -> list[PlannedStep]:
    """Bringing back what the kill switch suspended: always with a new secret, never the incident's value."""
    steps: list[PlannedStep] = []
    for credential in credentials:
        kind, at_issuer, _problem = connector_of(credential)
        where = f"where {credential.system} accepts it" if credential.system_id else "where it is accepted"
        if kind:
            steps.append(PlannedStep(StepAction.REACTIVATE_CREDENTIAL, credential,
                                     f"Reactivate {credential} with a new secret"))
        if not (kind and at_issuer):
            steps.append(PlannedStep(StepAction.MANUAL_REACTIVATE, credential, manual=True, label=(
                f"Issue a new secret for {credential} {where}"
                + (" (the new value is in its store)" if kind else " and store it") +
                "; the one revoked during the incident stays revoked")))
    return steps
