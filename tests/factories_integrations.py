"""Factories and helpers of the integrations capability (integrations with tokens, webhook endpoints)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from governance.audit import Actor
from governance.services import delegations as delegation_services
from governance.services import integrations as integration_services
from governance.services import webhooks as webhook_services


def make_integration(*, owner, scopes=("read",), name=None, team=None, delegated_by=(), expires_in_days=90):
    """Register an integration through the service (as the system); returns (integration, token).
    delegated_by: people who then delegate to it themselves (their own consent, through the service)."""
    from governance.models.integrations import Integration

    name = name or f"integration-{Integration.objects.count() + 1}"
    integration, token = integration_services.integration_create(
        actor=Actor.system(task_id="test"), name=name, owner=owner, scopes=list(scopes), team=team,
        expires_at=timezone.now() + dt.timedelta(days=expires_in_days))
    for person in delegated_by:
        delegate(person, integration)
    return integration, token


def delegate(person, integration, *, days: int = 30, reason: str = "I use it to decide from chat"):
    """person delegates to integration themself (the only way a delegation is made)."""
    return delegation_services.delegation_grant(
        actor=Actor.for_user(person), person=person, integration=integration,
        expires_at=timezone.now() + dt.timedelta(days=days), reason=reason)


def make_endpoint(*, owner, url, event_types=("approval_request.filed",), name=None, team=None):
    """Register a webhook endpoint (as the system); returns (endpoint, secret)."""
    from governance.models.integrations import WebhookEndpoint

    name = name or f"endpoint-{WebhookEndpoint.objects.count() + 1}"
    return webhook_services.webhook_endpoint_create(
        actor=Actor.system(task_id="test"), name=name, url=url, event_types=list(event_types), owner=owner,
        team=team)


def bearer(token: str, on_behalf_of: str | None = None) -> dict:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if on_behalf_of:
        headers["HTTP_X_ON_BEHALF_OF"] = on_behalf_of
    return headers
