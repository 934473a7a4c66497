"""Portal pages of the lifecycle capability: kill switch and drill, rotations, revocation, deprovisioning.

Thin: each view finds the object through restrict() (missing and forbidden both answer 404),
calls one service, says what happened, and redirects.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from governance import forms, permissions, roles, selectors
from governance.audit import Actor
from governance.connectors import registry
from governance.forms.lifecycle import ConnectorTargetForm, KillSwitchStepDoneForm, KillSwitchStepWaiveForm
from governance.models import Credential, System, Workflow
from governance.models.lifecycle import (
    MANUAL_ACTIONS,
    ConnectorKind,
    ConnectorTarget,
    KillSwitchActivation,
    KillSwitchStep,
    RotationJob,
    StepStatus,
)
from governance.pagination import CappedPaginator
from governance.selectors import lifecycle as lifecycle_selectors
from governance.services import deprovision, killswitch, operations, rotation
from governance.services import lifecycle as lifecycle_services
from governance.views.common import ensure_can_change_or_404, get_restricted_or_404

PAGE_SIZE = 50


def _errors(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "You may not do this."


def _may_use_kill_switch_or_404(user, workflow) -> None:
    if not killswitch.may_use_kill_switch(user, workflow):
        raise Http404("No such page.")


# Kill switch and drill ---------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def kill_switch_confirm(request, pk: int):
    workflow = get_restricted_or_404(Workflow, request.user, pk)
    _may_use_kill_switch_or_404(request.user, workflow)
    form = forms.ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            activation = killswitch.killswitch_activate(actor=Actor.for_user(request.user), workflow=workflow,
                                                         reason=form.cleaned_data["reason"])
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _errors(exc))
        else:
            messages.success(request, f"Kill switch activated: {workflow} is suspended; its credentials are being "
                                      "suspended now.")
            return redirect(activation.get_absolute_url())
    bindings = list(selectors.workflow_bindings(user=request.user, workflow=workflow))
    shared = lifecycle_selectors.shared_credentials(workflow=workflow)
    rows = [{"binding": b, "connector": registry.connector_kind(b.credential), "shared": shared.get(b.credential_id, 0)}
            for b in bindings]
    return render(request, "governance/lifecycle/kill_switch_confirm.html", {
        "object": workflow, "form": form, "rows": rows, "nav": "workflows",
        "running": KillSwitchActivation.objects.filter(workflow=workflow, status="running").first(),
        "history": lifecycle_selectors.workflow_kill_switches(user=request.user, workflow=workflow),
    })


@login_required
@require_POST
def drill_start(request, pk: int):
    workflow = get_restricted_or_404(Workflow, request.user, pk)
    _may_use_kill_switch_or_404(request.user, workflow)
    try:
        activation = killswitch.drill_start(actor=Actor.for_user(request.user), workflow=workflow)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _errors(exc))
        return redirect("killswitch-confirm", pk=workflow.pk)
    messages.success(request, f"Drill of {workflow} started: each connector checks it could act; nothing changes.")
    return redirect(activation.get_absolute_url())


@login_required
def kill_switch_list(request):
    page = CappedPaginator(lifecycle_selectors.kill_switch_list(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page"))
    return render(request, "governance/lifecycle/kill_switch_list.html", {
        "page_obj": page, "rows": page.object_list, "nav": "workflows"})


def _checklist(request, activation, steps, bound=None) -> list[dict]:
    """The steps done by hand, each with who may close it and its forms (bound: the one just posted)."""
    is_admin = roles.is_security_admin(request.user)
    rows = []
    for step in steps:
        if step.action not in MANUAL_ACTIONS:
            continue
        step.activation = activation
        awaiting = step.status == StepStatus.AWAITING
        posted = bound if bound is not None and bound[0] == step.pk else None
        rows.append({
            "step": step,
            "may_mark_done": awaiting and killswitch.may_close_step(request.user, step),
            "may_waive": awaiting and is_admin,
            "refused": posted[1].non_field_errors() if posted else None,  # shown even without the form
            "done_form": posted[1] if posted and posted[2] == "done" else KillSwitchStepDoneForm(
                auto_id=f"id_step{step.pk}_done_%s"),
            "waive_form": posted[1] if posted and posted[2] == "waive" else KillSwitchStepWaiveForm(
                auto_id=f"id_step{step.pk}_waive_%s"),
        })
    return rows


def _kill_switch_detail_page(request, activation, *, bound=None, status: int = 200):
    workflow = activation.workflow
    steps = list(lifecycle_selectors.kill_switch_steps(activation=activation))
    return render(request, "governance/lifecycle/kill_switch_detail.html", {
        "activation": activation, "object": workflow, "nav": "workflows", "steps": steps,
        "checklist": _checklist(request, activation, steps, bound),
        "may_act": killswitch.may_use_kill_switch(request.user, workflow),
        "reactivation_url": reverse("approval-new", args=[killswitch.REACTIVATION_ACTION]) + f"?workflow={workflow.pk}",
    }, status=status)


@login_required
def kill_switch_detail(request, pk: int):
    activation = get_restricted_or_404(KillSwitchActivation, request.user, pk)
    return _kill_switch_detail_page(request, activation)


@login_required
@require_POST
def kill_switch_step_close(request, pk: int, step_pk: int, how: str):
    """Mark a step done by hand (with what was done) or waive it (with why): the operations services decide."""
    activation = get_restricted_or_404(KillSwitchActivation, request.user, pk)
    step = get_object_or_404(KillSwitchStep.objects.select_related("credential", "assignee"),
                             pk=step_pk, activation=activation)
    actor = Actor.for_user(request.user)
    form_class = KillSwitchStepDoneForm if how == "done" else KillSwitchStepWaiveForm
    form = form_class(request.POST, auto_id=f"id_step{step.pk}_{how}_%s")
    if form.is_valid():
        try:
            if how == "done":
                operations.kill_switch_step_done(actor=actor, step=step, comment=form.cleaned_data["comment"])
            else:
                operations.kill_switch_step_waive(actor=actor, step=step, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
        except PermissionDenied as exc:
            form.add_error(None, _errors(exc))
        else:
            messages.success(request, f"Step {step.position} ({step.label}) "
                                      f"{'marked done' if how == 'done' else 'waived'}.")
            return redirect(activation.get_absolute_url())
    activation.refresh_from_db()
    return _kill_switch_detail_page(request, activation, bound=(step.pk, form, how), status=400)


@login_required
def kill_switch_progress(request, pk: int):
    activation = get_restricted_or_404(KillSwitchActivation, request.user, pk)
    return JsonResponse(killswitch.kill_switch_progress(activation))


# Rotations ---------------------------------------------------------------------------------------

@login_required
def rotation_list(request):
    jobs = lifecycle_selectors.rotation_job_list(user=request.user)
    status = request.GET.get("status", "")
    if status:
        jobs = jobs.filter(status=status)
    page = CappedPaginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "governance/lifecycle/rotation_list.html", {
        "page_obj": page, "rows": page.object_list, "status": status, "nav": "credentials",
        "statuses": RotationJob._meta.get_field("status").choices,
        "querystring": f"status={status}" if status else ""})


@login_required
def rotation_detail(request, pk: int):
    job = get_restricted_or_404(RotationJob, request.user, pk)
    return render(request, "governance/lifecycle/rotation_detail.html", {
        "job": job, "object": job.credential, "attempts": lifecycle_selectors.rotation_attempts(job=job),
        "nav": "credentials",
        "approval_url": f"/approvals/new/{rotation.PRIVILEGED_ROTATION_ACTION}/?object=governance.credential:"
                        f"{job.credential_id}"})


@login_required
@require_POST
def credential_rotate(request, pk: int):
    credential = get_restricted_or_404(Credential, request.user, pk)
    ensure_can_change_or_404(request.user, credential)
    try:
        job = rotation.rotation_request(actor=Actor.for_user(request.user), credential=credential)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _errors(exc))
        return redirect("credential-lifecycle", pk=credential.pk)
    if job.status == "awaiting_approval":
        messages.warning(request, f"{credential} is privileged: its rotation waits for an approved request.")
    else:
        messages.success(request, f"Rotation of {credential} scheduled (job #{job.pk}).")
    return redirect(job.get_absolute_url())


@login_required
def credential_lifecycle(request, pk: int):
    credential = get_restricted_or_404(Credential, request.user, pk)
    context = lifecycle_selectors.credential_lifecycle(user=request.user, credential=credential)
    context.update(object=credential, nav="credentials", connector=registry.connector_kind(credential),
                   may_change=permissions.can(request.user, permissions.CHANGE, credential))
    return render(request, "governance/lifecycle/credential_lifecycle.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def credential_revoke(request, pk: int):
    credential = get_restricted_or_404(Credential, request.user, pk)
    ensure_can_change_or_404(request.user, credential)
    form = forms.ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            deprovision.credential_revoke(actor=Actor.for_user(request.user), credential=credential,
                                          reason=form.cleaned_data["reason"])
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _errors(exc))
        else:
            messages.success(request, f"Revocation of {credential} started; its proof appears below when done.")
            return redirect("credential-lifecycle", pk=credential.pk)
    return render(request, "governance/action_form.html", {
        "object": credential, "form": form, "title": f"Revoke {credential}", "submit": "Revoke", "danger": True,
        "explanation": "The connector revokes the credential for good and proves that the old secret no longer "
                       "works. Workflows that use it stop working.",
    })


# Connector targets (security admins) -----------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def connector_target_edit(request, pk: int):
    system = get_restricted_or_404(System, request.user, pk)
    if not roles.is_security_admin(request.user):
        raise Http404("No such page.")
    current = ConnectorTarget.objects.filter(system=system).first()
    initial = {"kind": current.kind, "settings": current.settings} if current else {"settings": {}}
    form = ConnectorTargetForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            lifecycle_services.connector_target_set(actor=Actor.for_user(request.user), system=system,
                                                    kind=form.cleaned_data["kind"],
                                                    settings=form.cleaned_data["settings"] or {})
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _errors(exc))
        else:
            messages.success(request, f"Steward now reaches the accounts of {system} as a "
                                      f"{dict(ConnectorKind.choices)[form.cleaned_data['kind']]}.")
            return redirect(system.get_absolute_url())
    return render(request, "governance/action_form.html", {
        "object": system, "form": form, "title": f"Connector for the accounts of {system}", "submit": "Save",
        "explanation": "Passwords and service accounts of this system kept in OpenBao KV are then rotated, "
                       "suspended and revoked in the system itself. See docs/connectors.md.",
    })


# Deprovisioning ----------------------------------------------------------------------------------

@login_required
@require_POST
def deprovision_subject(request, pk: int, kind: str):
    model = {"system": System, "workflow": Workflow}[kind]
    subject = get_restricted_or_404(model, request.user, pk)
    ensure_can_change_or_404(request.user, subject)
    try:
        revocations = deprovision.deprovision_start(actor=Actor.for_user(request.user), subject=subject)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, f"{len(revocations)} credential(s) of {subject} are being revoked, with proof.")
    return redirect(subject.get_absolute_url())


urlpatterns = [
    path("workflows/<int:pk>/kill-switch/", kill_switch_confirm, name="killswitch-confirm"),
    path("workflows/<int:pk>/drill/", drill_start, name="killswitch-drill"),
    path("workflows/<int:pk>/deprovision/", deprovision_subject, {"kind": "workflow"}, name="workflow-deprovision"),
    path("systems/<int:pk>/deprovision/", deprovision_subject, {"kind": "system"}, name="system-deprovision"),
    path("kill-switches/", kill_switch_list, name="killswitch-list"),
    path("kill-switches/<int:pk>/", kill_switch_detail, name="killswitch-detail"),
    path("kill-switches/<int:pk>/progress.json", kill_switch_progress, name="killswitch-progress"),
    path("kill-switches/<int:pk>/steps/<int:step_pk>/done/", kill_switch_step_close, {"how": "done"},
         name="killswitch-step-done"),
    path("kill-switches/<int:pk>/steps/<int:step_pk>/waive/", kill_switch_step_close, {"how": "waive"},
         name="killswitch-step-waive"),
    path("credentials/<int:pk>/rotate/", credential_rotate, name="credential-rotate"),
    path("credentials/<int:pk>/lifecycle/", credential_lifecycle, name="credential-lifecycle"),
    path("credentials/<int:pk>/revoke/", credential_revoke, name="credential-revoke"),
    path("systems/<int:pk>/connector/", connector_target_edit, name="system-connector"),
    path("rotations/", rotation_list, name="rotation-list"),
    path("rotations/<int:pk>/", rotation_detail, name="rotation-detail"),
]
