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
    CredentialRegistrationSerializer,
    CredentialSerializer,
    SecretStoreSerializer,
    SystemHostsSerializer,
    SystemRegistrationSerializer,
    SystemSerializer,
    TransitionSerializer,
    WorkflowRegistrationSerializer,
    WorkflowSerializer,
)
from governance.api.serializers.people import PersonSerializer, TeamSerializer
from governance.api.views.provisioning import ProvisioningMixin
from governance.filtersets.integrations import BindingFilterSet, TeamFilterSet
from governance.models import Binding
from governance.permissions import restrict
from governance.selectors import integrations as directory
from governance.services import inventory as inventory_services
from governance.services import states


class InventoryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """List, read, register (POST) and change (PATCH, PUT) through the services.

    Gated fields are read-only in the schema; when a PATCH or PUT sends one anyway, its raw value is
    handed to the service, which refuses a changed value naming the operation to use (400) and lets
    the unchanged current value pass.
    """

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    kind = ""  # the key of its writes in inventory_services.WRITES
    registration_serializer_class = None

    def get_serializer_class(self):
        if self.action == "create" and self.registration_serializer_class is not None:
            return self.registration_serializer_class
        return super().get_serializer_class()

    @idempotent
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        obj = inventory_services.WRITES[self.kind].create(self.actor, dict(serializer.validated_data))
        return Response(self.get_serializer(self.reread(obj)).data, status=status.HTTP_201_CREATED)

    def _change(self, request, *, partial: bool):
        obj = self.get_object()
        serializer = self.get_serializer(obj, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        gated = inventory_services.GATED_FIELDS.get(type(obj), {})
        if isinstance(request.data, dict):
            data.update({name: request.data[name] for name in gated if name in request.data})
        obj = inventory_services.WRITES[self.kind].update(self.actor, obj, data)
        return Response(self.get_serializer(self.reread(obj)).data)

    def partial_update(self, request, pk=None):
        return self._change(request, partial=True)

    def update(self, request, pk=None):
        return self._change(request, partial=False)


class TransitionMixin:
    """POST .../transition/ for the transitions a person asks for directly (services.states.DIRECT)."""

    @extend_schema(request=TransitionSerializer,
                   summary="Make a declared state transition (activate, begin_retirement: see docs/architecture.md)")
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        obj = self.get_object()
        body = TransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        states.direct_transition(actor=self.actor, instance=obj, transition=body.validated_data["transition"],
                                 reason=body.validated_data.get("reason", ""))
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
class SystemViewSet(RetireMixin, TransitionMixin, InventoryViewSet):
    serializer_class = SystemSerializer
    registration_serializer_class = SystemRegistrationSerializer
    filterset_class = filtersets.SystemFilterSet
    kind = "system"

    def get_queryset(self):
        return selectors.system_list(user=self.request.user)

    @extend_schema(request=SystemHostsSerializer, summary="Declare the host names the system's certificates may carry "
                                                          "(security admins; the reason is audited)")
    @action(detail=True, methods=["post"])
    def hosts(self, request, pk=None):
        system = self.get_object()
        body = SystemHostsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        system = inventory_services.system_hosts_set(actor=self.actor, system=system, **body.validated_data)
        return Response(self.get_serializer(self.reread(system)).data)


@extend_schema(tags=["inventory"])
class SecretStoreViewSet(InventoryViewSet):
    serializer_class = SecretStoreSerializer
    filterset_class = filtersets.SecretStoreFilterSet
    kind = "secretstore"

    def get_queryset(self):
        return selectors.secret_store_list(user=self.request.user)


@extend_schema(tags=["inventory"])
class CredentialViewSet(ProvisioningMixin, TransitionMixin, InventoryViewSet):
    serializer_class = CredentialSerializer
    registration_serializer_class = CredentialRegistrationSerializer
    filterset_class = filtersets.CredentialFilterSet
    kind = "credential"

    def get_queryset(self):
        return selectors.credential_list(user=self.request.user)


@extend_schema(tags=["inventory"])
class WorkflowViewSet(RetireMixin, TransitionMixin, InventoryViewSet):
    serializer_class = WorkflowSerializer
    registration_serializer_class = WorkflowRegistrationSerializer
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
