"""Portal pages of the integrations capability: API integrations and their tokens, webhook endpoints,
deliveries and attempts. Tokens and signing secrets are shown once, in the response that made them."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from governance import forms, permissions, roles
from governance.audit import Actor
from governance.filtersets.integrations import IntegrationFilterSet, WebhookEndpointFilterSet
from governance.forms import integrations as integration_forms
from governance.models.integrations import (
    Integration,
    IntegrationStatus,
    IntegrationToken,
    WebhookDelivery,
    WebhookEndpoint,
)
from governance.selectors import integrations as selectors
from governance.services import delegations as delegation_services
from governance.services import integration_access
from governance.services import integrations as integration_services
from governance.services import webhooks as webhook_services
from governance.services.duplicates import unique_violation_error
from governance.views.common import deny_unless, ensure_can_change_or_404, filtered_page, get_restricted_or_404


def _call(form, call):
    """Run a service; put its ValidationError on the form. Returns the result or None."""
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


def _shown_once(request, *, title: str, label: str, value: str, back, explanation: str):
    response = render(request, "governance/integrations/shown_once.html", {
        "title": title, "label": label, "value": value, "back": back, "explanation": explanation})
    response["Cache-Control"] = "no-store"
    return response


@login_required
def integration_list(request):
    context = filtered_page(request, selectors.integration_list(user=request.user), IntegrationFilterSet,
                            sort_fields={"name": "name", "owner": "owner__username", "expires": "expires_at",
                                         "status": "status"}, default_sort="name")
    context.update(nav="integrations", may_create=roles.is_security_admin(request.user))
    return render(request, "governance/integrations/integration_list.html", context)


@login_required
def integration_detail(request, pk: int):
    integration = get_object_or_404(selectors.integration_list(user=request.user), pk=pk)
    return render(request, "governance/integrations/integration_detail.html", {
        "object": integration, "nav": "integrations",
        "tokens": integration.tokens.all(),
        "may_change": permissions.can(request.user, permissions.CHANGE, integration),
        "may_edit": roles.is_security_admin(request.user),
        "on_behalf_of_rule": integration_access.ON_BEHALF_OF_RULE,
        "delegations": selectors.delegations_in_force(integration=integration),
        "may_delegate": integration.owner_id != request.user.pk and integration.status == IntegrationStatus.ACTIVE,
    })


@login_required
@require_http_methods(["GET", "POST"])
def integration_create(request):
    deny_unless(roles.is_security_admin(request.user))
    form = integration_forms.IntegrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        made = _call(form, lambda: integration_services.integration_create(
            actor=Actor.for_user(request.user), name=data["name"], owner=data["owner"], scopes=data["scopes"],
            team=data["team"], expires_at=data["expires_at"], description=data["description"],
            store=data["store"], store_path=data["store_path"]))
        if made is not None:
            integration, token = made
            messages.success(request, f"Integration {integration} registered.")
            return _shown_once(request, title=f"Token of {integration}", label="Bearer token", value=token,
                               back=integration.get_absolute_url(),
                               explanation="Copy it into the client's secret store now: Steward keeps only its "
                                           "hash and will never show it again.")
    return render(request, "governance/integrations/form.html", {
        "form": form, "title": "Register an integration", "submit": "Register", "nav": "integrations"})


@login_required
@require_http_methods(["GET", "POST"])
def integration_edit(request, pk: int):
    deny_unless(roles.is_security_admin(request.user))
    integration = get_restricted_or_404(Integration, request.user, pk)
    initial = {"description": integration.description, "owner": integration.owner, "team": integration.team,
               "scopes": integration.scopes, "expires_at": integration.expires_at}
    form = integration_forms.IntegrationEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        done = _call(form, lambda: integration_services.integration_update(
            actor=Actor.for_user(request.user), integration=integration, data=changed))
        if done is not None:
            messages.success(request, f"Integration {integration} saved.")
            return redirect(integration.get_absolute_url())
    return render(request, "governance/integrations/form.html", {
        "form": form, "object": integration, "title": f"Edit {integration}", "nav": "integrations"})


@login_required
@require_http_methods(["GET", "POST"])
def integration_rotate(request, pk: int):
    integration = get_restricted_or_404(Integration, request.user, pk)
    ensure_can_change_or_404(request.user, integration)
    form = integration_forms.RotateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        made = _call(form, lambda: integration_services.integration_token_rotate(
            actor=Actor.for_user(request.user), integration=integration,
            overlap=dt.timedelta(hours=form.cleaned_data["overlap_hours"])))
        if made is not None:
            token, raw = made
            messages.success(request, f"New token {token.prefix} issued for {integration}.")
            return _shown_once(request, title=f"New token of {integration}", label="Bearer token", value=raw,
                               back=integration.get_absolute_url(),
                               explanation="The previous token keeps working until the overlap ends, then it is "
                                           "revoked. This value is shown once.")
    return render(request, "governance/integrations/form.html", {
        "form": form, "object": integration, "title": f"Rotate the token of {integration}", "submit": "Rotate",
        "nav": "integrations",
        "explanation": "A new token is issued and shown once; the current one keeps working for the overlap."})


@login_required
@require_POST
def integration_token_revoke(request, pk: int, token_pk: int):
    integration = get_restricted_or_404(Integration, request.user, pk)
    ensure_can_change_or_404(request.user, integration)
    token = get_object_or_404(IntegrationToken, pk=token_pk, integration=integration)
    try:
        integration_services.integration_token_revoke(actor=Actor.for_user(request.user), token=token)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, f"Token {token.prefix} revoked.")
    return redirect(integration.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def integration_disable(request, pk: int):
    integration = get_restricted_or_404(Integration, request.user, pk)
    ensure_can_change_or_404(request.user, integration)
    form = forms.ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        done = _call(form, lambda: integration_services.integration_disable(
            actor=Actor.for_user(request.user), integration=integration, reason=form.cleaned_data["reason"]))
        if done is not None:
            messages.success(request, f"Integration {integration} disabled; its tokens are revoked.")
            return redirect(integration.get_absolute_url())
    return render(request, "governance/integrations/form.html", {
        "form": form, "object": integration, "title": f"Disable {integration}", "submit": "Disable",
        "danger": True, "nav": "integrations",
        "explanation": "Every token stops working at once. The reason is recorded in the audit trail."})


@login_required
@require_http_methods(["GET", "POST"])
def delegation_list(request):
    """Your own delegations, and the form to give one: only ever for yourself (the service refuses others)."""
    integrations = selectors.delegable_integrations(person=request.user)
    initial = {"expires_at": timezone.now() + dt.timedelta(days=delegation_services.DEFAULT_DELEGATION_DAYS)}
    if request.GET.get("integration", "").isdigit():
        initial["integration"] = int(request.GET["integration"])
    form = integration_forms.DelegationForm(request.POST or None, integrations=integrations, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        done = _call(form, lambda: delegation_services.delegation_grant(
            actor=Actor.for_user(request.user), person=request.user, integration=data["integration"],
            expires_at=data["expires_at"], reason=data["reason"]))
        if done is not None:
            messages.success(request, f"{done.integration} may act for you until {done.expires_at:%Y-%m-%d %H:%M} UTC.")
            return redirect("delegation-list")
    now = timezone.now()
    rows = [(d, d.state_at(now)) for d in selectors.delegation_list(user=request.user)[:200]]
    return render(request, "governance/integrations/delegation_list.html", {
        "form": form, "rows": rows, "nav": "integrations", "on_behalf_of_rule": integration_access.ON_BEHALF_OF_RULE,
        "max_days": delegation_services.DELEGATION_MAX_DAYS})


@login_required
@require_POST
def delegation_revoke(request, pk: int):
    """Revoke one of your own delegations; anyone else's is not found."""
    delegation = get_object_or_404(selectors.delegation_list(user=request.user), pk=pk)
    try:
        delegation_services.delegation_revoke(actor=Actor.for_user(request.user), delegation=delegation)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, f"{delegation.integration} no longer acts for you.")
    return redirect("delegation-list")


@login_required
def webhook_list(request):
    context = filtered_page(request, selectors.webhook_endpoint_list(user=request.user), WebhookEndpointFilterSet,
                            sort_fields={"name": "name", "status": "status", "owner": "owner__username"},
                            default_sort="name")
    context.update(nav="webhooks", may_create=roles.is_security_admin(request.user))
    return render(request, "governance/integrations/webhook_list.html", context)


@login_required
def webhook_detail(request, pk: int):
    endpoint = get_object_or_404(selectors.webhook_endpoint_list(user=request.user), pk=pk)
    deliveries = selectors.webhook_delivery_list(user=request.user).filter(endpoint=endpoint).order_by("-pk")
    return render(request, "governance/integrations/webhook_detail.html", {
        "object": endpoint, "deliveries": deliveries[:100], "nav": "webhooks",
        "may_manage": roles.is_security_admin(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def webhook_create(request):
    deny_unless(roles.is_security_admin(request.user))
    form = integration_forms.WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        made = _call(form, lambda: webhook_services.webhook_endpoint_create(
            actor=Actor.for_user(request.user), name=data["name"], url=data["url"], event_types=data["event_types"],
            owner=data["owner"], team=data["team"], description=data["description"]))
        if made is not None:
            endpoint, secret = made
            messages.success(request, f"Webhook endpoint {endpoint} registered.")
            return _shown_once(request, title=f"Signing secret of {endpoint}", label="Signing secret",
                               value=secret, back=endpoint.get_absolute_url(),
                               explanation="Give it to the receiver to verify signatures (Standard Webhooks). "
                                           "It is shown once.")
    return render(request, "governance/integrations/form.html", {
        "form": form, "title": "Register a webhook endpoint", "submit": "Register", "nav": "webhooks"})


@login_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request, pk: int):
    deny_unless(roles.is_security_admin(request.user))
    endpoint = get_restricted_or_404(WebhookEndpoint, request.user, pk)
    initial = {name: getattr(endpoint, name) for name in ("name", "url", "description", "event_types", "owner",
                                                           "team")}
    form = integration_forms.WebhookEndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        done = _call(form, lambda: webhook_services.webhook_endpoint_update(
            actor=Actor.for_user(request.user), endpoint=endpoint, data=changed))
        if done is not None:
            messages.success(request, f"Webhook endpoint {endpoint} saved.")
            return redirect(endpoint.get_absolute_url())
    return render(request, "governance/integrations/form.html", {
        "form": form, "object": endpoint, "title": f"Edit {endpoint}", "nav": "webhooks"})


@login_required
@require_POST
def webhook_rotate_secret(request, pk: int):
    deny_unless(roles.is_security_admin(request.user))
    endpoint = get_restricted_or_404(WebhookEndpoint, request.user, pk)
    form = integration_forms.RotateForm(request.POST)
    hours = form.cleaned_data["overlap_hours"] if form.is_valid() else None
    try:
        endpoint, secret = webhook_services.webhook_endpoint_rotate_secret(
            actor=Actor.for_user(request.user), endpoint=endpoint,
            overlap=dt.timedelta(hours=hours) if hours is not None else None)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(endpoint.get_absolute_url())
    messages.success(request, f"New signing secret (version {endpoint.secret_version}) for {endpoint}.")
    return _shown_once(request, title=f"New signing secret of {endpoint}", label="Signing secret", value=secret,
                       back=endpoint.get_absolute_url(),
                       explanation="During the overlap every delivery carries both signatures, so the receiver "
                                   "can switch without losing messages. Shown once.")


@login_required
@require_POST
def webhook_action(request, pk: int, op: str):
    """Ping (send a test event), enable or disable an endpoint."""
    deny_unless(roles.is_security_admin(request.user) and op in ("ping", "enable", "disable"))
    endpoint = get_restricted_or_404(WebhookEndpoint, request.user, pk)
    actor = Actor.for_user(request.user)
    try:
        if op == "ping":
            webhook_services.webhook_endpoint_ping(actor=actor, endpoint=endpoint)
            messages.success(request, f"A test event is on its way to {endpoint}.")
        else:
            webhook_services.webhook_endpoint_set_status(actor=actor, endpoint=endpoint, active=op == "enable")
            messages.success(request, f"Webhook endpoint {endpoint} {op}d.")
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    return redirect(endpoint.get_absolute_url())


@login_required
def webhook_delivery_detail(request, pk: int):
    delivery = get_object_or_404(selectors.webhook_delivery_detail(user=request.user), pk=pk)
    return render(request, "governance/integrations/delivery_detail.html", {
        "object": delivery, "attempts": delivery.attempts.all(), "nav": "webhooks",
        "may_retry": roles.is_security_admin(request.user) and delivery.status == "failed"})


@login_required
@require_POST
def webhook_delivery_retry(request, pk: int):
    deny_unless(roles.is_security_admin(request.user))
    delivery = get_restricted_or_404(WebhookDelivery, request.user, pk)
    try:
        webhook_services.webhook_delivery_retry(actor=Actor.for_user(request.user), delivery=delivery)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, f"Delivery {delivery.message_id} queued again.")
    return redirect(delivery.get_absolute_url())


urlpatterns = [
    path("integrations/", integration_list, name="integration-list"),
    path("integrations/new/", integration_create, name="integration-create"),
    path("integrations/<int:pk>/", integration_detail, name="integration-detail"),
    path("integrations/<int:pk>/edit/", integration_edit, name="integration-edit"),
    path("integrations/<int:pk>/rotate/", integration_rotate, name="integration-rotate"),
    path("integrations/<int:pk>/disable/", integration_disable, name="integration-disable"),
    path("integrations/<int:pk>/tokens/<int:token_pk>/revoke/", integration_token_revoke,
         name="integration-token-revoke"),
    path("delegations/", delegation_list, name="delegation-list"),
    path("delegations/<int:pk>/revoke/", delegation_revoke, name="delegation-revoke"),
    path("webhooks/", webhook_list, name="webhook-list"),
    path("webhooks/new/", webhook_create, name="webhook-create"),
    path("webhooks/<int:pk>/", webhook_detail, name="webhook-detail"),
    path("webhooks/<int:pk>/edit/", webhook_edit, name="webhook-edit"),
    path("webhooks/<int:pk>/rotate-secret/", webhook_rotate_secret, name="webhook-rotate-secret"),
    path("webhooks/<int:pk>/<str:op>/", webhook_action, name="webhook-action"),
    path("webhooks/deliveries/<int:pk>/", webhook_delivery_detail, name="webhook-delivery-detail"),
    path("webhooks/deliveries/<int:pk>/retry/", webhook_delivery_retry, name="webhook-delivery-retry"),
]
