"""The audit trail over the API: read-only, for auditors and security admins (others: 404)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins

from governance import filtersets, roles, selectors
from governance.api.base import StewardViewSet
from governance.api.serializers.audit import AuditEventSerializer


@extend_schema(tags=["audit"])
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Newest first. Verify the chain with `manage.py verify_audit_chain` or the portal's audit log."""

    serializer_class = AuditEventSerializer
    filterset_class = filtersets.AuditEventFilterSet
    cursor_ordering = "-sequence"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not roles.reads_everything(request.user):
            raise exceptions.NotFound()

    def get_queryset(self):
        return selectors.audit_event_list(user=self.request.user)
