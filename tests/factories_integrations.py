"""Factories and helpers of the integrations capability (integrations with tokens, webhook endpoints)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from governance.audit import Actor
from governance.services import integrations as integration_services
from governance.services import webhooks as webhook_services


def make_integration(*, owner, scopes=("read",), name=None, team=None, allowed_people=(), expires_in_days=90):
    """Register an integration through the service (as the system); returns (integration, token)."""
    from governance.models.integrations import Integration

    name = name or f"integration-{Integration.objects.count() + 1}"
    return integration_services.integration_create(
        actor=Actor.system(task_id="test"), name=name, owner=owner, scopes=list(scopes), team=team,
        expires_at=timezone.now() + dt.timedelta(days=expires_in_days), allowed_people=allowed_people)


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
