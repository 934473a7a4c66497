"""Site-wide middleware: body size limit, session lifetimes, the audit context (request id, address)."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import redirect, render, resolve_url

from governance.api.errors import error_body
from governance.api.parsers import too_large_message
from governance.audit import clean_client_request_id, new_request_id, reset_request_context, set_request_context
from portal.client_address import client_address

SESSION_STARTED = "steward_session_started"
SESSION_SEEN = "steward_session_seen"


class SessionLifetimeMiddleware:
    """Signs people out after an idle period and after an absolute lifetime, whichever comes first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            started = request.session.setdefault(SESSION_STARTED, now)
            seen = request.session.get(SESSION_SEEN, now)
            idle = now - seen > settings.STEWARD_SESSION_IDLE_SECONDS
            expired = now - started > settings.STEWARD_SESSION_ABSOLUTE_SECONDS
            if idle or expired:
                logout(request)
                if not request.path.startswith("/api/"):
                    messages.info(request, "Your session ended; please sign in again.")
                    return redirect(f"{resolve_url(settings.LOGIN_URL)}?next={request.path}")
            else:
                request.session[SESSION_SEEN] = now
        return self.get_response(request)


class AuditContextMiddleware:
    """Every audit event written during a request carries its request id and source address.

    The request id is always the server's own: a client's X-Request-ID is kept apart as
    client_request_id (cleaned, capped), so nobody can make their events share another's id.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = new_request_id()
        request.request_id = request_id
        request.client_request_id = clean_client_request_id(request.headers.get("X-Request-ID"))
        tokens = set_request_context(request_id=request_id, source_address=client_address(request),
                                     client_request_id=request.client_request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_context(tokens)
        response["X-Request-ID"] = request_id
        return response


class RequestSizeLimitMiddleware:
    """413 for a body over the limit, for the API and the portal alike, before anything reads it.

    The limit is DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB); a multipart upload (the inventory import)
    may carry a file of up to STEWARD_MAX_UPLOAD_BYTES besides. Django's own check raises
    RequestDataTooBig only when the body is read, deep in a view or CSRF check, and answers 400
    (the API answered 500); here the declared length is checked first, and a form body that is too
    big in its fields alone is caught by reading the form once here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        multipart = request.content_type == "multipart/form-data"
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + (settings.STEWARD_MAX_UPLOAD_BYTES if multipart else 0)
        if length > limit:
            return self.too_large(request, limit)
        if request.method == "POST" and request.content_type in ("multipart/form-data",
                                                                  "application/x-www-form-urlencoded"):
            try:
                request.POST  # noqa: B018  (parse the form now, where its size error becomes a 413)
            except RequestDataTooBig:
                return self.too_large(request, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return self.get_response(request)

    @staticmethod
    def too_large(request, limit: int):
        if request.path.startswith("/api/"):
            message = too_large_message() if limit == settings.DATA_UPLOAD_MAX_MEMORY_SIZE else (
                f"The request body is larger than {limit // (1024 * 1024)} MiB.")
            body = error_body(status_code=413, code="too_large", message="The request body is too large.",
                              fields={"body": [message]}, request=request)
            return JsonResponse(body, status=413)
        return render(request, "413.html", {"limit_kib": limit // 1024}, status=413)
