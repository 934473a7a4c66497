"""The caller's own inbox over the API: list it, mark one read. Thin over the selector and the service.

Integrations see the inbox of the person they act for (read scope, for a bot that relays it to chat);
marking read is a receipt, not a governed change, so it needs read too and is not audited.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from governance.api.base import StewardViewSet
from governance.api.permissions import READ
from governance.api.serializers.notifications import NotificationSerializer
from governance.models.notifications import Notification
from governance.selectors.notifications import notification_get, notifications_of
from governance.services.notifications import notification_mark_read


@extend_schema(tags=["notifications"])
@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("unread", bool, description="Only the unread notifications (unread=true).")]))
class NotificationViewSet(mixins.ListModelMixin, StewardViewSet):
    """The caller's notifications, newest first (another person's answer 404)."""

    serializer_class = NotificationSerializer
    cursor_ordering = "-id"
    scopes = {"read": READ}

    def get_queryset(self):
        rows = notifications_of(user=self.request.user)
        if self.request.query_params.get("unread", "").lower() in ("1", "true", "yes"):
            rows = rows.filter(read_at__isnull=True)
        return rows

    @extend_schema(request=None, responses=NotificationSerializer, summary="Mark one notification read")
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        try:
            notification = notification_get(user=request.user, pk=pk)
        except Notification.DoesNotExist:
            raise NotFound("No such notification.") from None
        notification_mark_read(actor=self.actor, notification=notification)
        return Response(self.get_serializer(notification).data)
