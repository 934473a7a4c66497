"""The inventory over the API: systems, secret stores, credentials, workflows, bindings, people, teams.

Lists use the portal's filtersets and restrict(); writes call the inventory services (integrations
need the admin scope for them). Not visible: 404. Visible but not yours to change: 403.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance import filtersets, selectors
from governance.api.base import StewardViewSet
from governance.api.idempotency import idempotent
from governance.api.serializers.common import ReasonSerializer
from governance.api.serializers.inventory import (
    BindingSerializer,
    CredentialSerializer,
    SecretStoreSerializer,
    SystemSerializer,
    WorkflowSerializer,
)
from governance.api.serializers.people import PersonSerializer, TeamSerializer
from governance.filtersets.integrations import BindingFilterSet, TeamFilterSet
from governance.models import Binding
from governance.selectors import integrations as directory
from governance.services import inventory as inventory_services


class InventoryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """List, read, register (POST) and change (PATCH) through the services."""

    kind = ""  # the key of its writes in inventory_services.WRITES

    @idempotent
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        obj = inventory_services.WRITES[self.kind].create(self.actor, dict(serializer.validated_data))
        return Response(self.get_serializer(self.reread(obj)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        obj = self.get_object()
        serializer = self.get_serializer(obj, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        obj = inventory_services.WRITES[self.kind].update(self.actor, obj, dict(serializer.validated_data))
        return Response(self.get_serializer(self.reread(obj)).data)


class RetireMixin:
    """POST .../retire/ for the kinds whose writes include retire."""

    @extend_schema(request=ReasonSerializer, summary="Retire (the reason is recorded in the audit trail)")
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        obj = self.get_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        obj = inventory_services.WRITES[self.kind].retire(self.actor, obj, body.validated_data["reason"])
        return Response(self.get_serializer(self.reread(obj)).data)


@extend_schema(tags=["inventory"])
class SystemViewSet(RetireMixin, InventoryViewSet):
    serializer_class = SystemSerializer
    filterset_class = filtersets.SystemFilterSet
    kind = "system"

    def get_queryset(self):
        return selectors.system_list(user=self.request.user)


@extend_schema(tags=["inventory"])
class SecretStoreViewSet(InventoryViewSet):
    serializer_class = SecretStoreSerializer
    filterset_class = filtersets.SecretStoreFilterSet
    kind = "secretstore"

    def get_queryset(self):
        return selectors.secret_store_list(user=self.request.user)


@extend_schema(tags=["inventory"])
class CredentialViewSet(InventoryViewSet):
    serializer_class = CredentialSerializer
    filterset_class = filtersets.CredentialFilterSet
    kind = "credential"

    def get_queryset(self):
        return selectors.credential_list(user=self.request.user)


@extend_schema(tags=["inventory"])
class WorkflowViewSet(RetireMixin, InventoryViewSet):
    serializer_class = WorkflowSerializer
    filterset_class = filtersets.WorkflowFilterSet
    kind = "workflow"

    def get_queryset(self):
        return selectors.workflow_list(user=self.request.user).prefetch_related("systems")


@extend_schema(tags=["inventory"])
class BindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Which workflow uses which credential. Bindings are created and removed, never edited."""

    serializer_class = BindingSerializer
    filterset_class = BindingFilterSet

    def get_queryset(self):
        from governance.permissions import restrict

        return restrict(Binding.objects.all(), self.request.user).select_related("workflow", "credential")

    @idempotent
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        binding = inventory_services.binding_create(actor=self.actor, data=dict(serializer.validated_data))
        return Response(self.get_serializer(binding).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        inventory_services.binding_delete(actor=self.actor, binding=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["people"])
@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("team", int, description="Members of this team (its id).")]))
class PersonViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = PersonSerializer
    filterset_class = filtersets.PersonFilterSet

    def get_queryset(self):
        return directory.person_directory(user=self.request.user)


@extend_schema(tags=["people"])
class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = TeamSerializer
    filterset_class = TeamFilterSet

    def get_queryset(self):
        return directory.team_directory(user=self.request.user)
