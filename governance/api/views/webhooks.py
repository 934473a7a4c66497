"""Webhook endpoints and deliveries over the API (managed by security admins; owners may look)."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.api.base import StewardViewSet
from governance.api.idempotency import idempotent
from governance.api.serializers.webhooks import (
    RotateSecretSerializer,
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
)
from governance.filtersets.integrations import WebhookDeliveryFilterSet, WebhookEndpointFilterSet
from governance.selectors import integrations as selectors
from governance.services import webhooks as services


@extend_schema(tags=["webhooks"])
class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = WebhookEndpointSerializer
    filterset_class = WebhookEndpointFilterSet

    def get_queryset(self):
        return selectors.webhook_endpoint_list(user=self.request.user)

    @extend_schema(responses={201: WebhookEndpointWithSecretSerializer},
                   summary="Register an endpoint; its signing secret is in the response, once")
    @idempotent
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint, secret = services.webhook_endpoint_create(
            actor=self.actor, name=data["name"], url=data["url"], event_types=data["event_types"],
            owner=data["owner"], team=data.get("team"), description=data.get("description", ""))
        body = WebhookEndpointWithSecretSerializer(self.reread(endpoint)).data
        return Response({**body, "secret": secret}, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        serializer = self.get_serializer(endpoint, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(actor=self.actor, endpoint=endpoint,
                                                    data=dict(serializer.validated_data))
        return Response(self.get_serializer(self.reread(endpoint)).data)

    @extend_schema(request=RotateSecretSerializer, responses={201: WebhookEndpointWithSecretSerializer},
                   summary="New signing secret; both signatures are sent during the overlap")
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    @idempotent
    def rotate_secret(self, request, pk=None):
        endpoint = self.get_object()
        body = RotateSecretSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        hours = body.validated_data.get("overlap_hours")
        endpoint, secret = services.webhook_endpoint_rotate_secret(
            actor=self.actor, endpoint=endpoint, overlap=dt.timedelta(hours=hours) if hours is not None else None)
        body = WebhookEndpointWithSecretSerializer(self.reread(endpoint)).data
        return Response({**body, "secret": secret}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=WebhookEndpointSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        endpoint = services.webhook_endpoint_set_status(actor=self.actor, endpoint=self.get_object(), active=False)
        return Response(self.get_serializer(self.reread(endpoint)).data)

    @extend_schema(request=None, responses=WebhookEndpointSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        endpoint = services.webhook_endpoint_set_status(actor=self.actor, endpoint=self.get_object(), active=True)
        return Response(self.get_serializer(self.reread(endpoint)).data)

    @extend_schema(request=None, responses={201: WebhookDeliverySerializer},
                   summary="Send a test event (webhook.ping) to this endpoint")
    @action(detail=True, methods=["post"])
    @idempotent
    def ping(self, request, pk=None):
        delivery = services.webhook_endpoint_ping(actor=self.actor, endpoint=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["webhooks"])
class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Every delivery with its attempts and the receiver's responses."""

    filterset_class = WebhookDeliveryFilterSet
    cursor_ordering = "-pk"

    def get_serializer_class(self):
        return WebhookDeliveryDetailSerializer if self.action != "list" else WebhookDeliverySerializer

    def get_queryset(self):
        if self.action == "list":
            return selectors.webhook_delivery_list(user=self.request.user)
        return selectors.webhook_delivery_detail(user=self.request.user)

    @extend_schema(request=None, responses=WebhookDeliveryDetailSerializer,
                   summary="Send a failed delivery again (same webhook-id)")
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        delivery = services.webhook_delivery_retry(actor=self.actor, delivery=self.get_object())
        return Response(WebhookDeliveryDetailSerializer(self.reread(delivery)).data)
