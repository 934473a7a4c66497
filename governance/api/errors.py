"""One error body for every 4xx and 5xx the API answers, with field messages.

    {"status": 400, "code": "invalid", "message": "The request is not valid.",
     "fields": {"name": ["This field is required."]}, "request_id": "..."}

Services raise django ValidationError({field: message}) and PermissionDenied; DRF raises its own
exceptions; both end here. Field paths of nested errors are joined with dots ("scopes.0").
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from governance.api.parsers import PayloadTooLarge
from governance.services.duplicates import unique_violation_error

MESSAGES = {
    400: "The request is not valid.",
    401: "Authentication is required: send a bearer token or use a signed-in session.",
    403: "You may not do this.",
    404: "Not found.",
    405: "This method is not allowed here.",
    406: "Only application/json is served.",
    409: "Conflict.",
    413: "The request body is too large.",
    415: "Send application/json.",
    429: "Too many requests.",
}


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = api_settings.NON_FIELD_ERRORS_KEY if key in (NON_FIELD_ERRORS, "__all__") else str(key)
            for sub, messages in _flatten(value, f"{prefix}{name}.").items():
                fields.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, value in enumerate(detail):
            for sub, messages in _flatten(value, f"{prefix}{index}.").items():
                fields.setdefault(sub, []).extend(messages)
    else:
        items = detail if isinstance(detail, list) else [detail]
        fields[prefix.rstrip(".") or api_settings.NON_FIELD_ERRORS_KEY] = [str(item) for item in items if item != ""]
    return {k: v for k, v in fields.items() if v}


def error_body(*, status_code: int, code: str, message: str, fields: dict | None = None, request=None) -> dict:
    return {
        "status": status_code,
        "code": code,
        "message": message,
        "fields": fields or {},
        "request_id": getattr(getattr(request, "_request", request), "request_id", "") or "",
    }


def error_response(request, status_code: int, code: str, message: str, fields: dict | None = None,
                   headers: dict | None = None) -> Response:
    return Response(error_body(status_code=status_code, code=code, message=message, fields=fields, request=request),
                    status=status_code, headers=headers)


def exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error in the one format."""
    request = context.get("request")
    if isinstance(exc, IntegrityError):
        # Two identical creates at once: the loser of the unique constraint hears 409 naming the field.
        duplicate = unique_violation_error(exc)
        if duplicate is None:
            return None
        exc = Conflict(duplicate.message_dict)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    code = exc.default_code
    if isinstance(exc.detail, dict | list):
        fields = _flatten(exc.detail)
        message = MESSAGES.get(exc.status_code, str(exc.default_detail))
        if set(fields) == {api_settings.NON_FIELD_ERRORS_KEY} and len(fields[api_settings.NON_FIELD_ERRORS_KEY]) == 1:
            message = fields[api_settings.NON_FIELD_ERRORS_KEY][0]
    else:
        fields = {}
        message = str(exc.detail)
        code = getattr(exc.detail, "code", None) or code
    set_rollback()
    return error_response(request, exc.status_code, str(code), message, fields, headers)


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (for the schema)."""

    status = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="Messages per field; non_field_errors for the request as a whole.")
    request_id = serializers.CharField()


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "Conflict."

