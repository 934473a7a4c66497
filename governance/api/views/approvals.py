"""Approval requests over the API: file, read, and the explicit approve / reject / cancel operations.

A request filed by an integration records the integration and the person it acts for; separation
of duties applies to that person (the approvals services check it).
"""

from __future__ import annotations

from django.apps import apps
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance import permissions
from governance.api.base import StewardViewSet
from governance.api.idempotency import idempotent
from governance.api.permissions import DECIDE, FILE
from governance.api.serializers.approvals import (
    ApprovalRequestSerializer,
    ApproveSerializer,
    FileRequestSerializer,
    RejectSerializer,
)
from governance.api.serializers.common import TicketSerializer
from governance.filtersets.approvals import ApprovalRequestFilterSet
from governance.models.approvals import ApprovalDecision
from governance.selectors.approvals import approval_request_list
from governance.services import approvals as services
from governance.services.tickets import ticket_reference_set


def resolve_target(user, target_type: str | None, target_id: int | None):
    """The target object, if the user may see it; a field error otherwise (missing = forbidden)."""
    if not target_type:
        return None
    model = apps.get_model(target_type)
    target = permissions.restrict(model.objects.all(), user, permissions.VIEW).filter(pk=target_id).first()
    if target is None:
        raise serializers.ValidationError({"target_id": "No such object that you may see."})
    return target


@extend_schema(tags=["approvals"])
class ApprovalRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = ApprovalRequestSerializer
    filterset_class = ApprovalRequestFilterSet
    cursor_ordering = "-pk"
    scopes = {"create": FILE, "cancel": FILE, "ticket": FILE, "approve": DECIDE, "reject": DECIDE}

    def get_queryset(self):
        return approval_request_list(user=self.request.user).prefetch_related(
            Prefetch("decisions", queryset=ApprovalDecision.objects.order_by("decided_at", "pk")))

    def _respond(self, request_obj, code=status.HTTP_200_OK):
        return Response(self.get_serializer(self.reread(request_obj)).data, status=code)

    @extend_schema(request=FileRequestSerializer, responses={201: ApprovalRequestSerializer},
                   summary="File an approval request")
    @idempotent
    def create(self, request):
        body = FileRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        target = resolve_target(request.user, data.get("target_type"), data.get("target_id"))
        filed = services.approval_request_file(
            actor=self.actor, action=data["action"], target=target, payload=data.get("payload") or {},
            justification=data["justification"], ticket=data.get("ticket"))
        return self._respond(filed, status.HTTP_201_CREATED)

    @extend_schema(request=ApproveSerializer, summary="Approve (separation of duties applies)")
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        self.get_object()
        body = ApproveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decided = services.approval_request_approve(actor=self.actor, request_id=int(pk),
                                                    comment=body.validated_data.get("comment", ""))
        return self._respond(decided)

    @extend_schema(request=RejectSerializer, summary="Reject, with a reason")
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request, pk=None):
        self.get_object()
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decided = services.approval_request_reject(actor=self.actor, request_id=int(pk),
                                                   reason=body.validated_data["reason"])
        return self._respond(decided)

    @extend_schema(request=None, summary="Cancel (the requester withdraws a pending request)")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        self.get_object()
        return self._respond(services.approval_request_cancel(actor=self.actor, request_id=int(pk)))

    @extend_schema(request=TicketSerializer, summary="Set the external ticket reference")
    @action(detail=True, methods=["post"])
    def ticket(self, request, pk=None):
        return ticket_response(self, request)


def ticket_response(view, request):
    """Shared by every resource that carries a ticket: validate, set through the service, re-read."""
    obj = view.get_object()
    body = TicketSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    ticket_reference_set(actor=view.actor, target=obj, system=data["system"], key=data["key"],
                         url=data.get("url", ""))
    return Response(view.get_serializer(view.reread(obj)).data)
