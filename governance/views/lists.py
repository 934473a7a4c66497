"""What the lists people work in share: chosen columns, saved views, bulk requests (governance.lists).

Thin: saving and deleting a view are services/saved_views.py, a bulk request is services/bulk.py,
which files each row through the same approval service as the single-object form.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from governance import permissions, roles
from governance.audit import Actor
from governance.forms import apply_service_errors
from governance.forms.lists import BULK_FORMS, BULK_TRANSFER, BulkSelectionForm, SavedViewForm
from governance.lists import COLUMNS, LISTS, ListSpec
from governance.models.saved_views import SavedView
from governance.selectors.saved_views import saved_view_of, saved_views_of
from governance.services import saved_views as saved_view_services
from governance.services.approvals_registry import payload_to_json
from governance.services.bulk import bulk_approval_requests
from governance.views.common import deny_unless

SELECT_ALL = "select"  # ?select=page ticks every row of the page (the "select all" link without JavaScript)


def list_spec_or_404(list_key: str) -> ListSpec:
    spec = LISTS.get(list_key)
    if spec is None:
        raise Http404("No such list.")
    return spec


def may_bulk_request(user) -> bool:
    """Who may file approval requests at all (the single-object form's rule); each row is then the service's."""
    return roles.is_signed_in(user) and (roles.is_security_admin(user) or not roles.is_auditor(user))


def list_views_context(request, spec: ListSpec) -> dict:
    """A list page's chosen columns, the person's saved views, and the query a view would save."""
    explicit = [key for key in request.GET.getlist(COLUMNS) if key in spec.column_keys]
    columns = spec.chosen(explicit)
    base = request.GET.copy()
    for name in ("page", COLUMNS, SELECT_ALL):
        base.pop(name, None)
    return {
        "list_spec": spec,
        "columns": columns,
        "shown": {c.key for c in columns},
        "columns_chosen": [c.key for c in columns] if explicit else [],
        "view_params": [(name, value) for name, values in base.lists() for value in values],
        "view_query": base.urlencode(),
        "saved_views": list(saved_views_of(owner=request.user, list_key=spec.key)),
        "select_all": request.GET.get(SELECT_ALL) == "page",
        "may_bulk": may_bulk_request(request.user),
    }


def list_url(spec: ListSpec, query: str = "", columns=()) -> str:
    params = "&".join(p for p in (query, "&".join(f"{COLUMNS}={c}" for c in columns)) if p)
    return reverse(spec.url_name) + (f"?{params}" if params else "")


@login_required
@require_POST
def saved_view_create(request, list_key: str):
    spec = list_spec_or_404(list_key)
    form = SavedViewForm(request.POST, spec=spec)
    if form.is_valid():
        try:
            view = saved_view_services.saved_view_save(
                owner=request.user, list_key=spec.key, name=form.cleaned_data["name"],
                query=form.cleaned_data["query"], columns=form.cleaned_data["columns"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"View {view.name!r} saved: it is under “Saved views” on this list.")
            return redirect(list_url(spec, view.query, view.columns))
    return render(request, "governance/saved_view_form.html", {"form": form, "list_spec": spec,
                                                                "back_url": list_url(spec)})


@login_required
def saved_view_apply(request, pk: int):
    view = saved_view_of(owner=request.user, pk=pk)
    if view is None:
        raise Http404("No such saved view.")
    return redirect(list_url(LISTS[view.list_key], view.query, view.columns))


@login_required
@require_POST
def saved_view_delete(request, pk: int):
    try:
        view = saved_view_services.saved_view_delete(owner=request.user, view_id=pk)
    except SavedView.DoesNotExist as exc:
        raise Http404("No such saved view.") from exc
    messages.success(request, f"View {view.name!r} deleted.")
    return redirect(list_url(LISTS[view.list_key]))


def safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or fallback
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return fallback
    return target


def bulk_request(request, *, pages, action: str):
    """Step one (from the list): the ticked rows and the form; step two (confirm): one request per row."""
    deny_unless(may_bulk_request(request.user))
    back = safe_next(request, reverse(f"{pages.key}-list"))
    selection = BulkSelectionForm(request.POST)
    if not selection.is_valid():
        messages.error(request, " ".join(e for errors in selection.errors.values() for e in errors))
        return redirect(back)
    ids = selection.cleaned_data["row"]
    confirmed = request.POST.get("confirm") == "1"
    form = BULK_FORMS[action](request.POST if confirmed else None)
    if confirmed and form.is_valid():
        data = form.cleaned_data
        payload = payload_to_json({"new_owner": data["new_owner"], "new_team": data["new_team"]}) \
            if action == BULK_TRANSFER else {}
        try:
            outcomes = bulk_approval_requests(actor=Actor.for_user(request.user), model=pages.model, ids=ids,
                                              action=action, payload=payload, justification=data["reason"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            filed = sum(1 for o in outcomes if o.filed)
            return render(request, "governance/bulk_result.html", {
                "pages": pages, "action": action, "outcomes": outcomes, "back_url": back,
                "filed": filed, "refused": len(outcomes) - filed,
            })
    visible = list(permissions.restrict(pages.model.objects.filter(pk__in=ids), request.user, permissions.VIEW)
                   .order_by("name").only("id", "name"))
    return render(request, "governance/bulk_form.html", {
        "pages": pages, "action": action, "form": form, "ids": ids, "rows": visible,
        "hidden_count": len(ids) - len(visible), "back_url": back,
    })


urlpatterns = [
    path("lists/<str:list_key>/views/new/", saved_view_create, name="saved-view-create"),
    path("lists/views/<int:pk>/", saved_view_apply, name="saved-view-apply"),
    path("lists/views/<int:pk>/delete/", saved_view_delete, name="saved-view-delete"),
]
