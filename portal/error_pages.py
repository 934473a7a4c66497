"""Friendly 403 and 404 pages in the portal, with DEBUG on as well as off (issue #19, problem 10).

With DEBUG on, Django answers a denied or missing page with its technical page (URL patterns,
settings): people trying the demo met that on every permission failure. This middleware renders
the site's own 404.html / 403.html for portal pages either way; the API keeps its JSON errors
(DRF handles its own exceptions), and with DEBUG off Django's handlers already use the same
templates.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

NOT_PORTAL = ("/api/", "/static/", "/admin/")


def _is_portal(request) -> bool:
    return not request.path.startswith(NOT_PORTAL)


class FriendlyErrorPagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (settings.DEBUG and response.status_code == 404 and _is_portal(request)
                and not getattr(response, "steward_friendly", False)
                and response.get("Content-Type", "").startswith("text/html")):
            response = self._page(request, 404, "")  # a URL that matched no pattern (the resolver's 404)
        return response

    def process_exception(self, request, exception):
        if not _is_portal(request):
            return None
        if isinstance(exception, Http404):
            return self._page(request, 404, str(exception))
        if isinstance(exception, PermissionDenied):
            return self._page(request, 403, str(exception))
        return None

    @staticmethod
    def _page(request, status: int, message: str):
        response = render(request, f"{status}.html", {"exception": message}, status=status)
        response.steward_friendly = True
        return response
