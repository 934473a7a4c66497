"""Integrations over the API: registration (security admins), tokens, rotation, revocation, whoami.

An integration may always rotate its own token and revoke its own tokens (any scope); acting on
another integration needs the admin scope and the person's rights (owner, team, security admin).
"""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.api.authentication import integration_of
from governance.api.base import StewardAPIView, StewardViewSet
from governance.api.idempotency import idempotent
from governance.api.permissions import ADMIN, READ
from governance.api.serializers.common import ReasonSerializer
from governance.api.serializers.integrations import (
    IntegrationCreateSerializer,
    IntegrationSerializer,
    IntegrationTokenSerializer,
    IntegrationUpdateSerializer,
    IntegrationWithTokenSerializer,
    IssuedTokenSerializer,
    RotateTokenSerializer,
    WhoAmISerializer,
)
from governance.filtersets.integrations import IntegrationFilterSet
from governance.models.integrations import IntegrationToken
from governance.selectors import integrations as selectors
from governance.services import integrations as services


def _own_integration_or_admin(request, view):
    auth = integration_of(request)
    pk = str(view.kwargs.get("pk", ""))
    return READ if auth is not None and pk == str(auth.integration.pk) else ADMIN


def _own_token_or_admin(request, view):
    auth = integration_of(request)
    pk = view.kwargs.get("pk", "")
    if auth is not None and str(pk).isdigit():
        if IntegrationToken.objects.filter(pk=pk, integration=auth.integration).exists():
            return READ
    return ADMIN


@extend_schema(tags=["integrations"])
class IntegrationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = IntegrationSerializer
    filterset_class = IntegrationFilterSet
    scopes = {"rotate_token": _own_integration_or_admin}

    def get_queryset(self):
        return selectors.integration_list(user=self.request.user)

    @extend_schema(request=IntegrationCreateSerializer, responses={201: IntegrationWithTokenSerializer},
                   summary="Register an integration (security admins); its token is in the response, once")
    @idempotent
    def create(self, request):
        serializer = IntegrationCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        integration, token = services.integration_create(
            actor=self.actor, name=data["name"], owner=data["owner"], scopes=data["scopes"], team=data.get("team"),
            expires_at=data.get("expires_at"), description=data.get("description", ""),
            store=data.get("store"),
            store_path=data.get("store_path", ""))
        body = IntegrationWithTokenSerializer(self.reread(integration)).data
        return Response({**body, "token": token}, status=status.HTTP_201_CREATED)

    @extend_schema(request=IntegrationUpdateSerializer, responses=IntegrationSerializer)
    def partial_update(self, request, pk=None):
        integration = self.get_object()
        serializer = IntegrationUpdateSerializer(integration, data=request.data, partial=True,
                                                 context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        integration = services.integration_update(actor=self.actor, integration=integration,
                                                  data=dict(serializer.validated_data))
        return Response(IntegrationSerializer(self.reread(integration)).data)

    @extend_schema(request=RotateTokenSerializer, responses={201: IssuedTokenSerializer},
                   summary="Issue a new token; the old one keeps working for the overlap, then is revoked")
    @action(detail=True, methods=["post"], url_path="rotate-token")
    @idempotent
    def rotate_token(self, request, pk=None):
        integration = self.get_object()
        body = RotateTokenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        hours = body.validated_data.get("overlap_hours")
        token, raw = services.integration_token_rotate(
            actor=self.actor, integration=integration,
            overlap=dt.timedelta(hours=hours) if hours is not None else None)
        return Response({**IssuedTokenSerializer(token).data, "token": raw}, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonSerializer, responses=IntegrationSerializer,
                   summary="Disable: every token is revoked at once")
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        integration = self.get_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        integration = services.integration_disable(actor=self.actor, integration=integration,
                                                   reason=body.validated_data["reason"])
        return Response(IntegrationSerializer(self.reread(integration)).data)


@extend_schema(tags=["integrations"])
class IntegrationTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Tokens by prefix and state; their values are never shown again."""

    serializer_class = IntegrationTokenSerializer
    filterset_fields = ["integration"]
    scopes = {"revoke": _own_token_or_admin}

    def get_queryset(self):
        return selectors.integration_token_list(user=self.request.user)

    @extend_schema(request=None, responses=IntegrationTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.integration_token_revoke(actor=self.actor, token=self.get_object())
        return Response(IntegrationTokenSerializer(token).data)


@extend_schema(tags=["integrations"])
class WhoAmIView(StewardAPIView):
    """Who the caller is: the person whose rights apply and, for a token, the integration and its scopes."""

    @extend_schema(responses=WhoAmISerializer)
    def get(self, request):
        auth = integration_of(request)
        body = {
            "person": request.user.pk, "username": request.user.get_username(),
            "integration": auth.integration.pk if auth else None,
            "integration_name": auth.integration.name if auth else None,
            "scopes": list(auth.integration.scopes) if auth else None,
            "token_prefix": auth.token.prefix if auth else None,
            "token_expires_at": auth.token.expires_at if auth else None,
        }
        return Response(WhoAmISerializer(body).data)
