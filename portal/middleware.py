"""Site-wide middleware: session lifetimes and the audit context (request id, source address)."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect, resolve_url

from governance.audit import clean_client_request_id, new_request_id, reset_request_context, set_request_context

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
        tokens = set_request_context(request_id=request_id, source_address=request.META.get("REMOTE_ADDR"),
                                     client_request_id=request.client_request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_context(tokens)
        response["X-Request-ID"] = request_id
        return response
