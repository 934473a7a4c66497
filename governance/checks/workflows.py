"""Checks on workflows and systems: a drilled shutdown path; retired systems keep no live access."""

from __future__ import annotations

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Trim

from governance.checks.base import Context, QueryCheck
from governance.checks.ownership import RUNNING_WORKFLOW
from governance.checks.registry import register
from governance.choices import CredentialStatus, DrillResult, SystemLifecycle
from governance.models import Credential, System, Workflow
from governance.models.inventory import PRIVILEGED_WORKFLOW
from governance.selectors.governance_items import without_credential_source


@register
class ShutdownDrilled(QueryCheck):
    key = "kill_switch"
    severity = "medium"
    subject_models = (Workflow,)
    subject_types = ("governance.workflow",)
    evidence_fields = {
        "workflow": (
            "procedure_documented",
            "kill_switch_documented",
            "last_drilled_at",
            "last_drill_result",
            "drill_max_age_days",
        )
    }
    explanation = (
        "A running workflow (active or suspended) must have a documented shutdown procedure (the runbook and "
        "the kill-switch steps: which credentials to suspend or revoke, which schedules to stop), and that "
        "procedure must have been drilled successfully within the last {drill_max_age_days} days. In an "
        "incident, an automation nobody knows how to stop keeps acting."
    )
    remediation = (
        "Write the runbook and the kill-switch steps on the workflow, then run a kill-switch drill (it runs "
        "the same steps in verification mode) and fix whatever the drill shows. Repeat the drill before "
        "{drill_max_age_days} days have passed."
    )

    def evaluated(self, model, ctx: Context):
        return Workflow.objects.filter(status__in=RUNNING_WORKFLOW)

    def failing(self, queryset, ctx: Context):
        cutoff = ctx.now - ctx.days("drill_max_age_days")
        queryset = queryset.annotate(procedure_text=Trim("shutdown_procedure"), steps_text=Trim("kill_switch_steps"))
        undocumented = Q(procedure_text="") | Q(steps_text="")
        undrilled = (
            Q(last_drilled_at__isnull=True) | ~Q(last_drill_result=DrillResult.PASSED) | Q(last_drilled_at__lt=cutoff)
        )
        return queryset.filter(undocumented | undrilled).annotate(
            procedure_documented=ExpressionWrapper(~Q(procedure_text=""), output_field=BooleanField()),
            kill_switch_documented=ExpressionWrapper(~Q(steps_text=""), output_field=BooleanField()),
            drill_max_age_days=Value(int(ctx.thresholds["drill_max_age_days"]), output_field=IntegerField()),
        )


def _active_credentials_of_system():
    return Credential.objects.filter(system=OuterRef("pk"), status=CredentialStatus.ACTIVE)


@register
class RetiredSystemOffboarded(QueryCheck):
    key = "retired_app_offboarded"
    severity = "high"
    subject_models = (System,)
    subject_types = ("governance.system",)
    evidence_fields = {"system": ("retired_at", "active_credentials")}
    explanation = (
        "A retired system must have no active credentials. Access that outlives the application it was made "
        "for is nobody's to watch, and is exactly what an attacker looks for: it still works and nobody "
        "notices it being used."
    )
    remediation = (
        "Deprovision every active credential of the system (revoke it through its connector, which re-checks "
        "that the old secret no longer works) and mark it revoked. If a credential is still needed, the "
        "system is not retired: reopen its lifecycle instead."
    )

    def evaluated(self, model, ctx: Context):
        return System.objects.filter(lifecycle=SystemLifecycle.RETIRED)

    def failing(self, queryset, ctx: Context):
        count = _active_credentials_of_system().order_by().values("system").annotate(n=Count("pk")).values("n")
        return queryset.filter(Exists(_active_credentials_of_system())).annotate(active_credentials=Subquery(count))


@register
class ApprovalPathDeclared(QueryCheck):
    key = "approval_path"
    severity = "high"
    subject_models = (Workflow,)
    subject_types = ("governance.workflow",)
    evidence_fields = {"workflow": ("criticality", "is_privileged_automation")}
    explanation = (
        "A running workflow (active or suspended) must have an approval path: the approval policy that decides "
        "who approves its privileged changes, retirement and reactivation. Without one, requests about it have "
        "no second person, and separation of duties is not enforced for the automation it governs."
    )
    remediation = (
        "A security admin chooses the workflow's approval policy on its page (Edit, Approval policy). Until it "
        "has one, a proposed workflow cannot be activated."
    )

    def evaluated(self, model, ctx: Context):
        return Workflow.objects.filter(status__in=RUNNING_WORKFLOW)

    def failing(self, queryset, ctx: Context):
        return queryset.filter(approval_policy__isnull=True).annotate(
            is_privileged_automation=ExpressionWrapper(PRIVILEGED_WORKFLOW, output_field=BooleanField()))


@register
class CredentialSourceDeclared(QueryCheck):
    key = "credential_source"
    severity = "high"
    subject_models = (Workflow,)
    subject_types = ("governance.workflow",)
    evidence_fields = {"workflow": ("bindings_count", "uses_no_credentials")}
    explanation = (
        "A running workflow must say where its credentials come from: each credential it uses bound to it and "
        "held in a managed secrets store, or an explicit statement that it uses none. A workflow with no "
        "declared source authenticates with secrets nobody governs (in its code, its host or its CI variables)."
    )
    remediation = (
        "Bind the credentials the workflow uses (Credentials tab, Bind), moving any secret held outside a managed "
        "store into one first; or, if it really authenticates to nothing, tick \"uses no credentials\" and say why."
    )

    def evaluated(self, model, ctx: Context):
        return Workflow.objects.filter(status__in=RUNNING_WORKFLOW)

    def failing(self, queryset, ctx: Context):
        return without_credential_source(queryset).annotate(
            bindings_count=Count("bindings", filter=Q(bindings__suspended_at__isnull=True)))
