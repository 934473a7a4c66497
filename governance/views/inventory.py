"""Portal pages for the inventory: lists, details, forms. Thin: services do the writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from governance import filtersets, forms, permissions, roles, selectors
from governance.audit import Actor
from governance.connectors.registry import CONNECTOR_STORE_KINDS
from governance.models import Credential, SecretStore, System, Workflow
from governance.selectors import object_tabs
from governance.selectors.blast_radius import workflow_blast_radius
from governance.selectors.lifecycle import credential_lifecycle_badges, workflow_live_after_kill_switch
from governance.selectors.provisioning import provisioning_of
from governance.selectors.stores import secret_store_health, secret_store_settings_fields
from governance.services import exchange, states
from governance.services import inventory as inventory_services
from governance.services import people as people_services
from governance.services.duplicates import unique_violation_error
from governance.views.common import (
    deny_unless,
    detail_tabs,
    ensure_can_change_or_404,
    filtered_page,
    get_restricted_or_404,
    tabular_response,
)


@dataclass(frozen=True)
class ObjectPages:
    """One inventory object type's pages: the few things that differ between types."""

    key: str
    model: type
    export_type: str
    filterset: type
    selector: Callable
    form: type
    writes: inventory_services.KindWrites  # create, update (and retire) through the services
    sort_fields: dict[str, str]
    default_sort: str = "name"
    transferable: bool = True
    create_requires_security_admin: bool = False
    extra_detail: Callable = field(default=lambda user, obj: {})
    # The detail page's tabs beyond overview and history: (key, label); "related" lists the related objects.
    tabs: tuple[tuple[str, str], ...] = ()

    @property
    def verbose_name(self) -> str:
        return self.model._meta.verbose_name

    @property
    def verbose_name_plural(self) -> str:
        return self.model._meta.verbose_name_plural

    def may_create(self, user) -> bool:
        if self.create_requires_security_admin:
            return roles.is_security_admin(user)
        return roles.is_signed_in(user) and (roles.is_security_admin(user) or not roles.is_auditor(user))


def _workflow_detail(user, workflow):
    bindings = list(selectors.workflow_bindings(user=user, workflow=workflow))
    return {
        "bindings": bindings,
        "governance_record": selectors.workflow_governance_record(workflow=workflow, bindings=bindings),
        "systems": workflow.systems.all(),
        "blast_radius": workflow_blast_radius(workflow=workflow, bindings=bindings),
        "live_after_kill_switch": workflow_live_after_kill_switch(workflow=workflow, bindings=bindings),
    }


def _credential_detail(user, credential):
    return {"bindings": selectors.credential_bindings(user=user, credential=credential),
            "provisioning": provisioning_of(credential=credential),
            "lifecycle": credential_lifecycle_badges(credential=credential)}


def _system_detail(user, system):
    return {
        "credentials": selectors.credential_list(user=user).filter(system=system).order_by("name"),
        "workflows": selectors.workflow_list(user=user).filter(systems=system).order_by("name"),
    }


def _store_detail(user, store):
    return {"credentials": selectors.credential_list(user=user).filter(store=store).order_by("name")[:200],
            "settings_fields": secret_store_settings_fields(store=store),
            "health": secret_store_health(store=store),
            "may_test_connection": roles.is_security_admin(user) and store.kind in CONNECTOR_STORE_KINDS}


PAGES = {
    "workflow": ObjectPages(
        key="workflow", model=Workflow, export_type="workflows", filterset=filtersets.WorkflowFilterSet,
        selector=selectors.workflow_list, form=forms.WorkflowForm,
        writes=inventory_services.WRITES["workflow"],
        sort_fields={"name": "name", "platform": "platform", "status": "status", "owner": "owner__username",
                     "criticality": "criticality", "credentials": "credential_count",
                     "attested": "last_attested_at"},
        extra_detail=_workflow_detail,
        tabs=(("related", "Credentials"), ("findings", "Findings"), ("requests", "Requests")),
    ),
    "credential": ObjectPages(
        key="credential", model=Credential, export_type="credentials", filterset=filtersets.CredentialFilterSet,
        selector=selectors.credential_list, form=forms.CredentialForm,
        writes=inventory_services.WRITES["credential"],
        sort_fields={"name": "name", "kind": "kind", "system": "system__name", "status": "status",
                     "expires": "expires_at", "rotated": "last_rotated_at", "owner": "owner__username",
                     "workflows": "workflow_count", "risk": "risk_score", "rotation_due": "swept_rotation_due_at",
                     "used": "last_used_at", "attested": "last_attested_at"},
        extra_detail=_credential_detail,
        tabs=(("related", "Workflows"), ("findings", "Findings"), ("requests", "Requests")),
    ),
    "system": ObjectPages(
        key="system", model=System, export_type="systems", filterset=filtersets.SystemFilterSet,
        selector=selectors.system_list, form=forms.SystemForm,
        writes=inventory_services.WRITES["system"],
        sort_fields={"name": "name", "lifecycle": "lifecycle", "environment": "environment",
                     "criticality": "criticality", "owner": "owner__username", "credentials": "credential_count"},
        extra_detail=_system_detail,
        tabs=(("related", "Credentials"), ("findings", "Findings"), ("requests", "Requests")),
    ),
    "secretstore": ObjectPages(
        key="secretstore", model=SecretStore, export_type="secret_stores",
        filterset=filtersets.SecretStoreFilterSet, selector=selectors.secret_store_list,
        form=forms.SecretStoreForm,
        writes=inventory_services.WRITES["secretstore"],
        sort_fields={"name": "name", "kind": "kind", "credentials": "credential_count"},
        transferable=False, create_requires_security_admin=True, extra_detail=_store_detail,
        tabs=(("related", "Credentials"),),
    ),
}


@login_required
def object_list(request, kind: str):
    pages = PAGES[kind]
    context = filtered_page(request, pages.selector(user=request.user), pages.filterset,
                            sort_fields=pages.sort_fields, default_sort=pages.default_sort)
    context.update(pages=pages, may_create=pages.may_create(request.user))
    return render(request, f"governance/{kind}_list.html", context)


@login_required
def object_export(request, kind: str, fmt: str):

    pages = PAGES[kind]
    filterset = pages.filterset(request.GET or None, queryset=pages.selector(user=request.user), request=request)
    queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    rows = exchange.export_rows(pages.export_type, queryset.order_by("pk"))
    return tabular_response(rows, fmt=fmt, filename=pages.export_type)


@login_required
def object_detail(request, kind: str, pk: int):
    pages = PAGES[kind]
    obj = get_restricted_or_404(pages.model, request.user, pk)
    keys = {key for key, _ in pages.tabs}
    tab = request.GET.get("tab", "overview")
    tab = tab if tab in keys | {"overview", "history"} else "overview"
    credential_ids, counts = [], {}
    if keys & {"findings", "requests"}:  # read once, for the counts and the open tab
        credential_ids = object_tabs.related_credential_ids(obj)
        counts = object_tabs.object_tab_counts(user=request.user, obj=obj, credential_ids=credential_ids)
    context = {
        "pages": pages,
        "object": obj,
        "tab": tab,
        "tabs": detail_tabs(pages.tabs, counts),
        "may_change": permissions.can(request.user, permissions.CHANGE, obj),
        "transitions": direct_transitions(obj),
        "history": selectors.object_history(obj=obj)[:200] if tab == "history" else None,
    }
    if tab == "findings":
        context["findings"] = object_tabs.object_findings(user=request.user, obj=obj,
                                                          credential_ids=credential_ids)[:object_tabs.TAB_ROWS]
    if tab == "requests":
        context["requests"] = object_tabs.object_requests(user=request.user, obj=obj, credential_ids=credential_ids)
    context.update(pages.extra_detail(request.user, obj))
    return render(request, f"governance/{kind}_detail.html", context)


def _service_call(request, form, call):
    """Run a service; map its ValidationError onto the form. Returns the result or None."""
    try:
        return call()
    except ValidationError as exc:
        forms.apply_service_errors(form, exc)
    except PermissionDenied as exc:
        form.add_error(None, str(exc) or "You may not do this.")
    except IntegrityError as exc:  # an identical object was made at the same moment: say so on the form
        duplicate = unique_violation_error(exc)
        if duplicate is None:
            raise
        forms.apply_service_errors(form, duplicate)
    return None


def _form_data(form) -> dict:
    return {name: value for name, value in form.cleaned_data.items()}


@login_required
@require_http_methods(["GET", "POST"])
def object_create(request, kind: str):
    pages = PAGES[kind]
    deny_unless(pages.may_create(request.user))
    initial = {"owner": request.user.pk} if "owner" in pages.form.base_fields else {}
    team = request.user.groups.filter(team__isnull=False).values_list("team", flat=True).first()
    if team and "team" in pages.form.base_fields:
        initial["team"] = team
    form = pages.form(request.POST or None, user=request.user, initial=initial) if pages.key != "secretstore" \
        else pages.form(request.POST or None)
    if request.method == "POST" and form.is_valid():
        obj = _service_call(request, form, lambda: pages.writes.create(Actor.for_user(request.user), _form_data(form)))
        if obj is not None:
            messages.success(request, f"{pages.verbose_name.capitalize()} {obj} registered.")
            return redirect(obj.get_absolute_url())
    return render(request, "governance/object_form.html", {"pages": pages, "form": form, "object": None})


@login_required
@require_http_methods(["GET", "POST"])
def object_edit(request, kind: str, pk: int):
    pages = PAGES[kind]
    obj = get_restricted_or_404(pages.model, request.user, pk)
    ensure_can_change_or_404(request.user, obj)
    kwargs = {"instance": obj} if pages.key == "secretstore" else {"instance": obj, "user": request.user}
    form = pages.form(request.POST or None, **kwargs)
    if request.method == "POST" and form.is_valid():
        obj.refresh_from_db()
        updated = _service_call(request, form,
                                lambda: pages.writes.update(Actor.for_user(request.user), obj, _form_data(form)))
        if updated is not None:
            messages.success(request, f"{pages.verbose_name.capitalize()} {updated} saved.")
            return redirect(updated.get_absolute_url())
    return render(request, "governance/object_form.html", {"pages": pages, "form": form, "object": obj})


@login_required
@require_http_methods(["GET", "POST"])
def object_retire(request, kind: str, pk: int):
    pages = PAGES[kind]
    deny_unless(pages.writes.retire is not None and roles.is_security_admin(request.user))
    obj = get_restricted_or_404(pages.model, request.user, pk)
    form = forms.ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reason = form.cleaned_data["reason"]
        done = _service_call(request, form, lambda: pages.writes.retire(Actor.for_user(request.user), obj, reason))
        if done is not None:
            messages.success(request, f"{obj} retired.")
            return redirect(obj.get_absolute_url())
    return render(request, "governance/action_form.html", {
        "pages": pages, "object": obj, "form": form, "title": f"Retire {obj}",
        "explanation": "Retiring records the reason in the audit trail. Credentials that only this uses must "
                       "then be deprovisioned.", "submit": "Retire", "danger": True,
    })


@login_required
@require_http_methods(["POST"])
def object_transition(request, kind: str, pk: int):
    """The buttons of the transitions a person asks for directly (activate, begin retirement)."""
    pages = PAGES[kind]
    obj = get_restricted_or_404(pages.model, request.user, pk)
    ensure_can_change_or_404(request.user, obj)
    try:
        states.direct_transition(actor=Actor.for_user(request.user), instance=obj,
                                 transition=request.POST.get("transition", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDenied as exc:
        messages.error(request, str(exc) or "You may not do this.")
    else:
        messages.success(request, f"{obj}: {request.POST['transition'].replace('_', ' ')} done.")
    return redirect(obj.get_absolute_url())


def direct_transitions(obj) -> list[tuple[str, str]]:
    """(name, label) of the direct transitions open from obj's current state, for its detail page."""
    machine = states.MACHINES.get(type(obj))
    if machine is None:
        return []
    current = getattr(obj, machine.field)
    return [(t.name, t.name.replace("_", " ").capitalize()) for t in machine.transitions_from(current)
            if t.name in states.DIRECT[type(obj)]]


@login_required
@require_http_methods(["GET", "POST"])
def object_transfer(request, kind: str, pk: int):
    pages = PAGES[kind]
    deny_unless(pages.transferable and roles.is_security_admin(request.user))
    obj = get_restricted_or_404(pages.model, request.user, pk)
    form = forms.TransferForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        done = _service_call(request, form, lambda: people_services.ownership_transfer(
            actor=Actor.for_user(request.user), obj=obj, new_owner=data["new_owner"],
            new_team=data["new_team"], reason=data["reason"]))
        if done is not None:
            messages.success(request, f"Ownership of {obj} transferred to {data['new_owner']}.")
            if permissions.can(request.user, permissions.VIEW, obj):
                return redirect(obj.get_absolute_url())
            return redirect("home")
    return render(request, "governance/action_form.html", {
        "pages": pages, "object": obj, "form": form, "title": f"Transfer ownership of {obj}",
        "explanation": "The new owner becomes accountable for it. The reason is recorded in the audit trail.",
        "submit": "Transfer",
    })


@login_required
@require_http_methods(["GET", "POST"])
def binding_create(request, pk: int):
    workflow = get_restricted_or_404(Workflow, request.user, pk)
    ensure_can_change_or_404(request.user, workflow)
    form = forms.BindingForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data, "workflow": workflow}
        binding = _service_call(request, form, lambda: inventory_services.binding_create(
            actor=Actor.for_user(request.user), data=data))
        if binding is not None:
            messages.success(request, f"{workflow} now uses {binding.credential}.")
            return redirect(workflow.get_absolute_url())
    return render(request, "governance/action_form.html", {
        "pages": PAGES["workflow"], "object": workflow, "form": form, "title": f"Bind a credential to {workflow}",
        "explanation": "Record which credential this workflow uses, for what, and with which scopes.",
        "submit": "Bind",
    })
