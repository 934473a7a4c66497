"""Portal pages of discovery: the review queue, an item (adopt, link, dismiss), the sources and their runs.

Thin: each view finds its object through restrict() (missing and forbidden both answer 404), offers the
actions only to those who may change the item, and calls one service of governance.discovery, which
gates the action again and validates the input (its errors land on the form's fields).
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from governance import forms, permissions, roles
from governance.audit import Actor
from governance.discovery import review, selectors
from governance.discovery.services import (
    discovery_may_run,
    discovery_run_request,
    discovery_source_create,
    discovery_source_update,
)
from governance.filtersets.discovery import DiscoveredItemFilterSet
from governance.forms.discovery import DiscoverySourceForm, DismissForm, LinkForm
from governance.models.discovery import (
    DISCOVERY_RUN_OPEN,
    DiscoveredItem,
    DiscoveredKind,
    DiscoveryRun,
    DiscoverySource,
    Reconciliation,
    ReviewState,
)
from governance.services import inventory as inventory_services
from governance.services.duplicates import unique_violation_error
from governance.views.common import deny_unless, ensure_can_change_or_404, filtered_page, get_restricted_or_404

PAGE_SIZE = 50
SORT_FIELDS = {"name": "name", "kind": "kind", "source": "source__name", "reconciliation": "reconciliation",
               "review": "review", "privileged": "privileged", "first": "first_seen_at", "last": "last_seen_at"}
REGISTER = {"workflow": (forms.WorkflowForm, inventory_services.workflow_create),
            "credential": (forms.CredentialForm, inventory_services.credential_create)}


def _call(form, call):
    """Run a review service; its ValidationError goes onto the form's fields. Returns the result or None."""
    try:
        return call()
    except ValidationError as exc:
        forms.apply_service_errors(form, exc)
    except PermissionDenied as exc:
        form.add_error(None, str(exc) or "You may not do this.")
    except IntegrityError as exc:  # the registration duplicates an object made at the same moment
        duplicate = unique_violation_error(exc)
        if duplicate is None:
            raise
        forms.apply_service_errors(form, duplicate)
    return None


def _changeable_item_or_404(request, pk: int) -> DiscoveredItem:
    item = get_restricted_or_404(DiscoveredItem, request.user, pk)
    ensure_can_change_or_404(request.user, item)
    return item


def _fact_rows(facts: dict) -> list[tuple[str, str, bool]]:
    """(name, text, structured) per fact: lists of names joined, nested objects as compact JSON."""
    rows = []
    for key, value in sorted(facts.items()):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            rows.append((key, ", ".join(value) or "none", False))
        elif isinstance(value, dict | list):
            rows.append((key, json.dumps(value, sort_keys=True, separators=(", ", ": ")), True))
        else:
            rows.append((key, "—" if value in (None, "") else str(value), False))
    return rows


# The review queue --------------------------------------------------------------------------------

@login_required
def discovery_queue(request):
    items = selectors.discovered_item_list(user=request.user)
    context = filtered_page(request, items, DiscoveredItemFilterSet, sort_fields=SORT_FIELDS, default_sort="-last")
    totals = dict(items.filter(present=True).exclude(review__in=(ReviewState.ADOPTED, ReviewState.LINKED)).order_by()
                  .values_list("reconciliation").annotate(n=Count("pk")))
    context.update(nav="discovery", totals=[(value, label, totals.get(value, 0))
                                            for value, label in Reconciliation.choices])
    return render(request, "governance/discovery/queue.html", context)


@login_required
def discovered_item_detail(request, pk: int):
    item = get_restricted_or_404(DiscoveredItem, request.user, pk)
    item = selectors.discovered_item_list(user=request.user).get(pk=item.pk)
    may_change = permissions.can(request.user, permissions.CHANGE, item)
    return render(request, "governance/discovery/item_detail.html", {
        "item": item, "nav": "discovery", "facts": _fact_rows(item.facts or {}),
        "findings": selectors.discovered_item_findings(user=request.user, item=item)[:50],
        "may_change": may_change, "may_adopt": may_change and item.review != ReviewState.ADOPTED
        and item.reconciliation != Reconciliation.MISSING,
        "may_dismiss": may_change and item.review in (ReviewState.PENDING, ReviewState.DISMISSED),
        "adopts": review.adoption_target(item),
    })


@login_required
@require_http_methods(["GET", "POST"])
def discovered_item_adopt(request, pk: int):
    item = _changeable_item_or_404(request, pk)
    target = review.adoption_target(item)
    form_class, register = REGISTER[target]
    initial = {**review.adoption_initial(item), "owner": request.user.pk}
    team = request.user.groups.filter(team__isnull=False).values_list("team", flat=True).first()
    if team:
        initial["team"] = team
    form = form_class(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        result = _call(form, lambda: review.discovered_item_adopt(
            actor=Actor.for_user(request.user), item=item, data=data, register=register))
        if result is not None:
            obj, _item = result
            messages.success(request, f"{obj} registered and linked to what discovery found.")
            return redirect(obj.get_absolute_url())
    return render(request, "governance/discovery/adopt.html", {
        "item": item, "object": item, "form": form, "target": target, "nav": "discovery",
        "submit": f"Register the {target}"})


@login_required
@require_http_methods(["GET", "POST"])
def discovered_item_link(request, pk: int):
    item = _changeable_item_or_404(request, pk)
    label = "Workflow" if item.kind == DiscoveredKind.WORKFLOW else "Credential"
    form = LinkForm(request.POST or None, targets=selectors.link_targets(user=request.user, item=item), label=label)
    if request.method == "POST" and form.is_valid():
        done = _call(form, lambda: review.discovered_item_link(
            actor=Actor.for_user(request.user), item=item, target=form.cleaned_data["target"]))
        if done is not None:
            messages.success(request, f"{item} is linked to {form.cleaned_data['target']}.")
            return redirect(item.get_absolute_url())
    return render(request, "governance/discovery/action.html", {
        "item": item, "object": item, "form": form, "nav": "discovery", "title": f"Link {item}", "submit": "Link",
        "explanation": f"It is a {label.lower()} already declared in Steward: link it, and the next runs match it. "
                       "You can link to what you may change."})


@login_required
@require_http_methods(["GET", "POST"])
def discovered_item_dismiss(request, pk: int):
    item = _changeable_item_or_404(request, pk)
    form = DismissForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        done = _call(form, lambda: review.discovered_item_dismiss(
            actor=Actor.for_user(request.user), item=item, reason=form.cleaned_data["reason"],
            until=form.until_datetime()))
        if done is not None:
            messages.success(request, f"{item} dismissed until {form.cleaned_data['until']:%Y-%m-%d}.")
            return redirect(item.get_absolute_url())
    return render(request, "governance/discovery/action.html", {
        "item": item, "object": item, "form": form, "nav": "discovery", "title": f"Dismiss {item}",
        "submit": "Dismiss", "danger": True,
        "explanation": "A dismissed item leaves the queue and its findings resolve until the date you give, or "
                       "until what was discovered changes (a new secret, a new trigger). The reason is audited."})


# Sources and runs --------------------------------------------------------------------------------

def _failing(source: DiscoverySource) -> bool:
    """Its last error is newer than its last success: the source is broken now."""
    return bool(source.last_error) and (source.last_success_at is None or source.last_error_at is None
                                        or source.last_error_at >= source.last_success_at)


@login_required
def discovery_source_list(request):
    sources = list(selectors.discovery_source_list(user=request.user).order_by("name"))
    for source in sources:
        source.may_run = discovery_may_run(request.user, source)
        source.failing = _failing(source)
    return render(request, "governance/discovery/source_list.html", {
        "sources": sources, "nav": "discovery", "may_register": roles.is_security_admin(request.user)})


@login_required
def discovery_source_detail(request, pk: int):
    source = get_restricted_or_404(DiscoverySource, request.user, pk)
    source = selectors.discovery_source_list(user=request.user).get(pk=source.pk)
    page = Paginator(selectors.discovery_run_list(user=request.user, source=source), PAGE_SIZE).get_page(
        request.GET.get("page"))
    counts = dict(source.items.order_by().values_list("reconciliation").annotate(n=Count("pk")))
    return render(request, "governance/discovery/source_detail.html", {
        "source": source, "page_obj": page, "runs": page.object_list, "nav": "discovery",
        "settings_json": json.dumps(source.settings or {}, sort_keys=True),
        "may_run": discovery_may_run(request.user, source), "failing": _failing(source),
        "may_edit": roles.is_security_admin(request.user),
        "open_run": selectors.discovery_open_run(source=source),
        "counts": [(value, label, counts.get(value, 0)) for value, label in Reconciliation.choices]})


@login_required
@require_http_methods(["GET", "POST"])
def discovery_source_edit(request, pk: int | None = None):
    """Register or change a source (security admins; the service checks again and validates the settings)."""
    deny_unless(roles.is_security_admin(request.user))
    source = get_restricted_or_404(DiscoverySource, request.user, pk) if pk is not None else None
    form = DiscoverySourceForm(request.POST or None, instance=source)
    if request.method == "POST" and form.is_valid():
        data = {name: value for name, value in form.cleaned_data.items()}
        data["settings"] = data.get("settings") or {}
        actor = Actor.for_user(request.user)
        saved = _call(form, (lambda: discovery_source_update(actor=actor, source=source, data=data)) if source
                      else (lambda: discovery_source_create(actor=actor, data=data)))
        if saved is not None:
            messages.success(request, f"Discovery source {saved} saved; it runs every {saved.schedule_seconds} s.")
            return redirect(saved.get_absolute_url())
    return render(request, "governance/discovery/source_form.html", {
        "form": form, "object": source, "nav": "discovery", "submit": "Save" if source else "Register"})


@login_required
@require_POST
def discovery_source_run(request, pk: int):
    source = get_restricted_or_404(DiscoverySource, request.user, pk)
    deny_unless(discovery_may_run(request.user, source))
    already = selectors.discovery_open_run(source=source)
    try:
        run = discovery_run_request(actor=Actor.for_user(request.user), source=source, trigger="manual")
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(source.get_absolute_url())
    if already is not None and already.pk == run.pk:
        messages.info(request, f"Run #{run.pk} of {source} was already under way: its page is below.")
    else:
        messages.success(request, f"Run #{run.pk} of {source} queued: a worker reads the source in the background.")
    return redirect(run.get_absolute_url())


@login_required
def discovery_run_detail(request, pk: int):
    run = get_restricted_or_404(DiscoveryRun, request.user, pk)
    run = selectors.discovery_run_list(user=request.user).get(pk=run.pk)
    counts = sorted((k, v) for k, v in (run.counts or {}).items())
    return render(request, "governance/discovery/run_detail.html", {
        "run": run, "source": run.source, "counts": counts, "nav": "discovery",
        "running": run.status in DISCOVERY_RUN_OPEN})


urlpatterns = [
    path("discovery/", discovery_queue, name="discovery-queue"),
    path("discovery/items/<int:pk>/", discovered_item_detail, name="discovery-item-detail"),
    path("discovery/items/<int:pk>/adopt/", discovered_item_adopt, name="discovery-item-adopt"),
    path("discovery/items/<int:pk>/link/", discovered_item_link, name="discovery-item-link"),
    path("discovery/items/<int:pk>/dismiss/", discovered_item_dismiss, name="discovery-item-dismiss"),
    path("discovery/sources/", discovery_source_list, name="discovery-source-list"),
    path("discovery/sources/new/", discovery_source_edit, name="discovery-source-create"),
    path("discovery/sources/<int:pk>/", discovery_source_detail, name="discovery-source-detail"),
    path("discovery/sources/<int:pk>/edit/", discovery_source_edit, name="discovery-source-edit"),
    path("discovery/sources/<int:pk>/run/", discovery_source_run, name="discovery-source-run"),
    path("discovery/runs/<int:pk>/", discovery_run_detail, name="discovery-run-detail"),
]
