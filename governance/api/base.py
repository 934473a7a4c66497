"""What every API view shares: authentication, the permission choke point, errors, paging, schema.

These are set on the base class so the API works whatever REST_FRAMEWORK says; the lead also
sets them as REST_FRAMEWORK defaults (docs/integrations.md lists them).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from governance import permissions
from governance.api.authentication import BearerTokenAuthentication, actor_of, integration_of
from governance.api.errors import error_response, exception_handler
from governance.api.pagination import StewardCursorPagination
from governance.api.parsers import StewardJSONParser
from governance.api.permissions import StewardPermission
from governance.api.schema import StewardAutoSchema
from governance.audit import Actor

logger = logging.getLogger(__name__)


class StewardAPIMixin:
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [StewardPermission]
    pagination_class = StewardCursorPagination
    filter_backends = [DjangoFilterBackend]
    renderer_classes = [JSONRenderer]
    parser_classes = [StewardJSONParser]
    schema = StewardAutoSchema()
    # action name -> scope an integration needs (see governance.api.permissions); GETs need read.
    scopes: dict = {}
    cursor_ordering = "pk"

    def get_exception_handler(self):
        return exception_handler

    def handle_exception(self, exc):
        """Unexpected errors too answer in the one error format (logged with their traceback)."""
        try:
            return super().handle_exception(exc)
        except Exception:
            if settings.DEBUG:
                raise
            logger.exception("API error on %s %s", self.request.method, self.request.path)
            return error_response(self.request, 500, "server_error",
                                  "Something went wrong on our side; the request id identifies it in the logs.")

    @property
    def actor(self) -> Actor:
        return actor_of(self.request)

    @property
    def integration_auth(self):
        return integration_of(self.request)

    def get_restricted(self, model, pk, action: str = permissions.VIEW, queryset=None):
        """Missing and forbidden look the same: 404."""
        queryset = queryset if queryset is not None else model.objects.all()
        return get_object_or_404(permissions.restrict(queryset, self.request.user, action), pk=pk)


class StewardViewSet(StewardAPIMixin, viewsets.GenericViewSet):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = r"[0-9]+"

    def reread(self, obj):
        """An object just written, as the list shows it (annotations included)."""
        return self.get_queryset().get(pk=obj.pk)


class StewardAPIView(StewardAPIMixin, APIView):
    pass
