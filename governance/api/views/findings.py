"""Findings and attestation items over the API: thin views over their services."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.api.base import StewardViewSet
from governance.api.filters import AttestationItemFilterSet
from governance.api.idempotency import idempotent
from governance.api.permissions import FILE
from governance.api.serializers.approvals import ApprovalRequestSerializer, RiskAcceptanceSerializer
from governance.api.serializers.common import TicketSerializer
from governance.api.serializers.findings import (
    AcknowledgeSerializer,
    AnswerSerializer,
    AttestationItemSerializer,
    FindingSerializer,
)
from governance.api.views.approvals import ticket_response
from governance.filtersets.checks import FindingFilterSet
from governance.selectors.approvals import approval_request_list
from governance.selectors.attestation import item_list
from governance.selectors.checks import finding_list
from governance.services.approvals import approval_request_file
from governance.services.attestation import attestation_item_answer
from governance.services.findings import finding_acknowledge

RISK_ACCEPTANCE = "risk_acceptance"


@extend_schema(tags=["findings"])
@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("control", int, description="Findings of checks mapped to this framework control (id).")]))
class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Findings (unresolved by default: ?state=all for every one)."""

    serializer_class = FindingSerializer
    filterset_class = FindingFilterSet
    cursor_ordering = "-pk"
    scopes = {"acknowledge": FILE, "request_risk_acceptance": FILE, "ticket": FILE}

    def get_queryset(self):
        return finding_list(user=self.request.user)

    def get_object(self):
        # The detail ignores the list's default "unresolved" filter.
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    @extend_schema(request=AcknowledgeSerializer, summary="Acknowledge: the owner knows and is on it")
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):

        finding = self.get_object()
        body = AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        finding_acknowledge(actor=self.actor, finding_ids=[finding.pk], comment=body.validated_data.get("comment", ""))
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=RiskAcceptanceSerializer, responses={201: ApprovalRequestSerializer},
                   summary="Request risk acceptance (files an approval request)")
    @action(detail=True, methods=["post"], url_path="request-risk-acceptance")
    @idempotent
    def request_risk_acceptance(self, request, pk=None):

        finding = self.get_object()
        body = RiskAcceptanceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        filed = approval_request_file(
            actor=self.actor, action=RISK_ACCEPTANCE, target=finding,
            payload={"expires_at": data["expires_at"].isoformat()}, justification=data["justification"],
            ticket=data.get("ticket"))
        filed = approval_request_list(user=request.user).get(pk=filed.pk)
        return Response(ApprovalRequestSerializer(filed).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TicketSerializer, summary="Set the external ticket reference")
    @action(detail=True, methods=["post"])
    def ticket(self, request, pk=None):
        return ticket_response(self, request)

    def reread(self, obj):
        return self.get_object()


@extend_schema(tags=["attestation"])
class AttestationItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = AttestationItemSerializer
    filterset_class = AttestationItemFilterSet
    scopes = {"answer": FILE, "ticket": FILE}

    def get_queryset(self):
        return item_list(user=self.request.user)

    @extend_schema(request=AnswerSerializer, summary="Answer (confirm, transfer, change scopes, flag, revoke)")
    @action(detail=True, methods=["post"])
    @idempotent
    def answer(self, request, pk=None):

        item = self.get_object()
        body = AnswerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        attestation_item_answer(
            actor=self.actor, item_id=item.pk, answer=data["answer"], comment=data.get("comment", ""),
            transfer_to=data.get("transfer_to"), transfer_team=data.get("transfer_team"),
            scope_credential=data.get("scope_credential"), requested_scopes=data.get("requested_scopes"),
            requested_privilege_level=data.get("requested_privilege_level"), ticket=data.get("ticket"))
        return Response(self.get_serializer(self.reread(item)).data)

    @extend_schema(request=TicketSerializer, summary="Set the external ticket reference")
    @action(detail=True, methods=["post"])
    def ticket(self, request, pk=None):
        return ticket_response(self, request)
