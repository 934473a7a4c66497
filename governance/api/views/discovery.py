"""Discovery over the API: the review queue's items and their review actions, the sources and their runs.

    GET  /discovered-items/               the items you may see (filters as the portal's queue)  read
    POST /discovered-items/{id}/dismiss/  {"reason", "until"}: out of the queue until then       file_requests
    POST /discovered-items/{id}/link/     {"credential"} or {"workflow"}: it is that object      file_requests
    GET  /discovery-sources/              sources, with their last success and last error       read
    POST /discovery-sources/{id}/run/     run it now (security admins, the system's owners)      discovery:run
    GET  /discovery-runs/                 runs, with counts, duration and errors                 read

Adopting registers a new object and stays in the portal, where the registration's form is. Objects the
caller may not see answer 404; the review services gate the rest (403) and validate the input (400).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.api.base import StewardViewSet
from governance.api.idempotency import idempotent
from governance.api.permissions import FILE
from governance.api.serializers.discovery import (
    DiscoveredItemSerializer,
    DiscoveryRunSerializer,
    DiscoverySourceSerializer,
    DismissSerializer,
    LinkSerializer,
)
from governance.discovery import review, selectors
from governance.discovery.services import discovery_run_request
from governance.filtersets.discovery import DiscoveredItemFilterSet
from governance.models.integrations import IntegrationScope


@extend_schema(tags=["discovery"])
class DiscoveredItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """What discovery found, reconciled with the inventory; facts never hold a secret value."""

    serializer_class = DiscoveredItemSerializer
    filterset_class = DiscoveredItemFilterSet
    cursor_ordering = "-pk"
    scopes = {"dismiss": FILE, "link": FILE}

    def get_queryset(self):
        return selectors.discovered_item_list(user=self.request.user)

    @extend_schema(request=DismissSerializer, responses={200: DiscoveredItemSerializer},
                   summary="Dismiss with a reason until a date (at most a year); it comes back when it changes")
    @action(detail=True, methods=["post"])
    @idempotent
    def dismiss(self, request, pk=None):
        item = self.get_object()
        body = DismissSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = review.discovered_item_dismiss(actor=self.actor, item=item, reason=body.validated_data["reason"],
                                              until=body.validated_data["until"])
        return Response(self.get_serializer(self.reread(item)).data)

    @extend_schema(request=LinkSerializer, responses={200: DiscoveredItemSerializer},
                   summary="Link to the declared credential or workflow it is (matched from now on)")
    @action(detail=True, methods=["post"])
    @idempotent
    def link(self, request, pk=None):
        item = self.get_object()
        body = LinkSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        target = body.validated_data.get("credential") or body.validated_data.get("workflow")
        item = review.discovered_item_link(actor=self.actor, item=item, target=target)
        return Response(self.get_serializer(self.reread(item)).data)


@extend_schema(tags=["discovery"])
class DiscoverySourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Where discovery looks; a broken source shows its last error and when."""

    serializer_class = DiscoverySourceSerializer
    scopes = {"run": IntegrationScope.DISCOVERY_RUN}

    def get_queryset(self):
        return selectors.discovery_source_list(user=self.request.user)

    @extend_schema(request=None, responses={202: DiscoveryRunSerializer},
                   summary="Run the source now (an open run of it is returned instead); poll status_url")
    @action(detail=True, methods=["post"])
    @idempotent
    def run(self, request, pk=None):
        run = discovery_run_request(actor=self.actor, source=self.get_object(), trigger="api")
        data = DiscoveryRunSerializer(selectors.discovery_run_list(user=request.user).get(pk=run.pk),
                                      context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["status_url"]})


@extend_schema(tags=["discovery"])
class DiscoveryRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = DiscoveryRunSerializer
    cursor_ordering = "-pk"

    def get_queryset(self):
        return selectors.discovery_run_list(user=self.request.user)
