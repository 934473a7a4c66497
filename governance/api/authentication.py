"""How API callers prove who they are: integration bearer tokens, or a signed-in browser session.

A token authenticates an Integration; request.user is then the person it acts for (its owner, or
the person named in X-On-Behalf-Of under services.integration_access.ON_BEHALF_OF_RULE), so that every
queryset is narrowed by the same restrict() as the portal, and request.auth is an IntegrationAuth
that carries the integration (for scopes and for the audit trail's Actor).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from governance.audit import Actor
from governance.models.integrations import Integration, IntegrationToken
from governance.services import integration_access

ON_BEHALF_OF_HEADER = "X-On-Behalf-Of"


@dataclass(frozen=True)
class IntegrationAuth:
    integration: Integration
    token: IntegrationToken
    person: object

    def actor(self) -> Actor:
        return Actor.for_integration(self.integration, on_behalf_of=self.person)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authorization: Bearer stw_xxxxxxxx_... (an integration's token)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send exactly one token: Authorization: Bearer <token>.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("The token is not valid.") from exc
        token = integration_access.token_lookup(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("The token is not valid, has expired or was revoked.")
        integration = token.integration
        try:
            person = integration_access.integration_acting_person(
                integration=integration, username=request.headers.get(ON_BEHALF_OF_HEADER, "").strip() or None)
        except PermissionDenied as exc:  # say why, as a 403
            raise exceptions.PermissionDenied(str(exc)) from exc
        integration_access.token_mark_used(token)
        return person, IntegrationAuth(integration=integration, token=token, person=person)

    def authenticate_header(self, request):
        return f'{self.keyword} realm="steward-api"'


def integration_of(request) -> IntegrationAuth | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, IntegrationAuth) else None


def actor_of(request) -> Actor:
    auth = integration_of(request)
    return auth.actor() if auth else Actor.for_user(request.user)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "governance.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An integration's token (shown once when it is issued). The integration acts for its "
                           f"owner, or for the person named in the {ON_BEHALF_OF_HEADER} header. "
                           + integration_access.ON_BEHALF_OF_RULE,
        }
