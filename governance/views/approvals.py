"""Portal pages of the approval engine: the approver's queue, the requester's view, decisions, policies.

Thin: decisions are explicit POSTs to services that enforce separation of duties; a page only
explains why the viewer cannot act (decision_blocker), it never decides that itself.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from governance import roles
from governance.audit import Actor
from governance.filtersets.approvals import ApprovalRequestFilterSet
from governance.forms import apply_service_errors
from governance.forms.approvals import ApprovalPolicyForm, ApproveForm, RejectForm, RequestMetaForm
from governance.models import Credential, System, Workflow
from governance.models.approvals import ApprovalPolicy, ApprovalRequest
from governance.selectors import approvals as selectors
from governance.selectors.approval_context import approval_context
from governance.services import approval_policies
from governance.services import approvals as services
from governance.services.approvals_registry import all_actions, payload_to_json
from governance.views.common import deny_unless, filtered_page, get_restricted_or_404

SORT_FIELDS = {"created": "created_at", "expires": "expires_at", "action": "action", "status": "status",
               "requester": "requested_by__username"}
TARGET_TYPES = {"workflow": Workflow, "credential": Credential, "system": System}


def _listing(request, queryset, *, default_sort: str, blockers: bool):
    context = filtered_page(request, queryset, ApprovalRequestFilterSet, sort_fields=SORT_FIELDS,
                            default_sort=default_sort)
    rows = selectors.attach_targets(context["rows"])
    reasons = services.decision_blockers(person=request.user, requests=rows) if blockers else {}
    context["rows"] = [(row, reasons.get(row.pk)) for row in rows]
    return context


@login_required
def approval_queue(request):
    context = _listing(request, selectors.approval_queue(user=request.user), default_sort="created", blockers=True)
    context.update(nav="approvals", title="Waiting for a decision", queue=True)
    return render(request, "governance/approvals/list.html", context)


@login_required
def approval_mine(request):
    context = _listing(request, selectors.my_approval_requests(user=request.user), default_sort="-created",
                       blockers=False)
    context.update(nav="approvals", title="My requests", queue=False)
    return render(request, "governance/approvals/list.html", context)


@login_required
def approval_detail(request, pk: int):
    approval = get_restricted_or_404(ApprovalRequest, request.user, pk)
    spec = all_actions().get(approval.action)
    target = approval.target
    diff = spec.diff(target=target, payload=approval.payload) if spec and spec.diff and (
        target is not None or not spec.needs_target) else []
    blocker = services.decision_blocker(person=request.user, request=approval) if approval.is_pending else None
    return render(request, "governance/approvals/detail.html", {
        "nav": "approvals", "approval": approval, "target": target, "result": approval.result,
        "diff": diff, "decisions": approval.decisions.select_related("approver"),
        "blocker": blocker, "may_decide": approval.is_pending and blocker is None,
        "may_cancel": approval.is_pending and approval.requested_by_id == request.user.pk,
        "timeline": selectors.approval_request_timeline(request=approval),
        "approve_form": ApproveForm(), "reject_form": RejectForm(),
        "context_panel": approval_context(user=request.user, approval=approval, target=target),
    })


def _decide(request, pk: int, call, success: str, form_class):
    approval = get_restricted_or_404(ApprovalRequest, request.user, pk)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(approval.get_absolute_url())
    try:
        call(Actor.for_user(request.user), form.cleaned_data)
    except services.ApprovalAlreadyDecided as exc:
        messages.warning(request, " ".join(exc.messages))
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])) or "You may not do this.")
    except ApprovalRequest.DoesNotExist as exc:
        raise Http404("No such approval request.") from exc
    else:
        approval.refresh_from_db()
        messages.success(request, success.format(approval=approval, status=approval.get_status_display().lower()))
    return redirect(approval.get_absolute_url())


@login_required
@require_POST
def approval_approve(request, pk: int):
    return _decide(request, pk, lambda actor, data: services.approval_request_approve(
        actor=actor, request_id=pk, comment=data["comment"]), "You approved request #{approval.pk}: it is {status}.",
        ApproveForm)


@login_required
@require_POST
def approval_reject(request, pk: int):
    return _decide(request, pk, lambda actor, data: services.approval_request_reject(
        actor=actor, request_id=pk, reason=data["reason"]), "You rejected request #{approval.pk}.", RejectForm)


@login_required
@require_POST
def approval_cancel(request, pk: int):
    return _decide(request, pk, lambda actor, data: services.approval_request_cancel(actor=actor, request_id=pk),
                   "Request #{approval.pk} cancelled.", ApproveForm)


def _target_from_query(request, spec):
    """?workflow=<pk> or ?object=<type>:<pk>; an object the user may not see is missing (404)."""
    if not spec.needs_target:
        return None
    if request.GET.get("workflow"):
        kind, pk = "workflow", request.GET["workflow"]
    else:
        kind, _, pk = request.GET.get("object", "").partition(":")
    models_by_kind = dict(TARGET_TYPES)
    for model in spec.target_models:
        models_by_kind.setdefault(model._meta.model_name, model)
    model = models_by_kind.get(kind)
    if model is None or model not in spec.target_models or not pk.isdigit():
        raise Http404("Open this form from the object the request is about.")
    return get_restricted_or_404(model, request.user, int(pk))


@login_required
@require_http_methods(["GET", "POST"])
def approval_new(request, action: str):
    spec = all_actions().get(action)
    deny_unless(spec is not None and roles.is_signed_in(request.user)
                and (roles.is_security_admin(request.user) or not roles.is_auditor(request.user)))
    target = _target_from_query(request, spec)
    deny_unless(spec.may_file is None or spec.may_file(person=request.user, target=target) is None)
    data = request.POST if request.method == "POST" else None
    change_form = spec.schema(data, requester=request.user, target=target)
    meta_form = RequestMetaForm(data)
    if request.method == "POST" and change_form.is_valid() and meta_form.is_valid():
        try:
            approval = services.approval_request_file(
                actor=Actor.for_user(request.user), action=action, target=target,
                payload=payload_to_json(change_form.cleaned_data),
                justification=meta_form.cleaned_data["justification"], ticket=meta_form.ticket())
        except ValidationError as exc:
            _split_errors(exc, change_form, meta_form)
        except PermissionDenied as exc:
            meta_form.add_error(None, str(exc) or "You may not ask for this.")
        else:
            messages.success(request, f"Request #{approval.pk} filed: it waits for {approval.policy}.")
            return redirect(approval.get_absolute_url())
    return render(request, "governance/approvals/new.html", {
        "nav": "approvals", "spec": spec, "target": target, "change_form": change_form, "meta_form": meta_form,
        "policy": _policy_or_none(action, target),
    })


def _policy_or_none(action, target):
    try:
        return services.policy_for(action=action, target=target)
    except ValidationError:
        return None


def _split_errors(exc: ValidationError, change_form, meta_form) -> None:
    if not hasattr(exc, "error_dict"):
        apply_service_errors(meta_form, exc)
        return
    for field, errors in exc.message_dict.items():
        form = change_form if field in change_form.fields else meta_form
        for message in errors:
            if field in form.fields:
                form.add_error(field, message)
            else:
                form.add_error(None, message if field == "__all__" else f"{field.replace('_', ' ')}: {message}")


@login_required
def approval_policy_list(request):
    return render(request, "governance/approvals/policy_list.html", {
        "nav": "approvals", "policies": selectors.approval_policy_list(user=request.user),
        "may_manage": roles.is_security_admin(request.user), "labels": dict(all_actions_labels()),
    })


def all_actions_labels():
    return [(code, spec.label) for code, spec in all_actions().items()]


@login_required
@require_http_methods(["GET", "POST"])
def approval_policy_edit(request, pk: int | None = None):
    deny_unless(roles.is_security_admin(request.user))
    policy = get_object_or_404(ApprovalPolicy, pk=pk) if pk else None
    initial = ApprovalPolicyForm.initial_for(policy) if policy else None
    form = ApprovalPolicyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        actor = Actor.for_user(request.user)
        try:
            if policy:
                saved = approval_policies.approval_policy_update(actor=actor, policy=policy, data=form.cleaned_data)
            else:
                saved = approval_policies.approval_policy_create(actor=actor, data=form.cleaned_data)
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"Approval policy {saved} saved.")
            return redirect("approval-policy-list")
    return render(request, "governance/approvals/policy_form.html", {
        "nav": "approvals", "form": form, "policy": policy,
    })


urlpatterns = [
    path("approvals/", approval_queue, name="approval-queue"),
    path("approvals/mine/", approval_mine, name="approval-mine"),
    path("approvals/new/<str:action>/", approval_new, name="approval-new"),
    path("approvals/<int:pk>/", approval_detail, name="approval-detail"),
    path("approvals/<int:pk>/approve/", approval_approve, name="approval-approve"),
    path("approvals/<int:pk>/reject/", approval_reject, name="approval-reject"),
    path("approvals/<int:pk>/cancel/", approval_cancel, name="approval-cancel"),
    path("approval-policies/", approval_policy_list, name="approval-policy-list"),
    path("approval-policies/new/", approval_policy_edit, name="approval-policy-create"),
    path("approval-policies/<int:pk>/edit/", approval_policy_edit, name="approval-policy-edit"),
]
