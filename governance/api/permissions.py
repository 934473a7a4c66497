"""Who may call an endpoint at all. What they may see is restrict()'s job (in every get_queryset).

People (session) are limited by their own rights, which the selectors and services enforce.
Integrations are limited twice: by the rights of the person they act for, and by their scopes:
  read             every GET
  file_requests    file and cancel approval requests, acknowledge findings and request risk
                   acceptance, answer attestation items, start reports, link tickets
  decide_requests  approve or reject approval requests
  admin            everything above, plus inventory writes, integrations and webhooks
  lifecycle:killswitch, lifecycle:drill, lifecycle:rotate, lifecycle:revoke, sweep:run
                   one incident-response operation each (governance.api.views.operations)
  discovery:run    run a discovery source now (governance.api.views.discovery); reviewing a
                   discovered item (dismiss, link) needs file_requests, like acknowledging a finding
"""

from __future__ import annotations

from rest_framework import exceptions, permissions

from governance.api.authentication import integration_of
from governance.models.integrations import IntegrationScope

READ, FILE, DECIDE, ADMIN = (IntegrationScope.READ, IntegrationScope.FILE_REQUESTS,
                             IntegrationScope.DECIDE_REQUESTS, IntegrationScope.ADMIN)


def required_scope(request, view) -> str:
    """The scope an integration needs for this request: view.scopes maps actions to scopes."""
    per_action = getattr(view, "scopes", {}) or {}
    action = getattr(view, "action", None)
    if action in per_action:
        return per_action[action]
    if request.method in permissions.SAFE_METHODS:
        return READ
    return ADMIN


class StewardPermission(permissions.BasePermission):
    """Signed in (session) or a valid token; for tokens, the scope the action needs."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        auth = integration_of(request)
        if auth is None:
            return True
        scope = required_scope(request, view)
        if callable(scope):
            scope = scope(request, view)
        if scope is None or auth.integration.has_scope(scope):
            return True
        raise exceptions.PermissionDenied(f"This integration's token lacks the {scope!s} scope for this operation.")
