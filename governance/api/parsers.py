"""The API's one JSON parser: a size cap, then governance.json_input's checks on the whole body.

A body Steward cannot store (too deep, 1e999, a lone surrogate, NUL) is refused here with the
field that holds it, as a 400 in the one error format, before a serializer or service sees it.
"""

from __future__ import annotations

import codecs

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings

from governance import json_input


def too_large_message() -> str:
    return (f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024} KiB; "
            "send less at a time (inventory files: manage.py import_inventory).")


class PayloadTooLarge(APIException):
    """413, with the limit named under the field "body" (RequestSizeLimitMiddleware answers the same)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self):
        super().__init__({"body": [too_large_message()]})


class StewardJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError({api_settings.NON_FIELD_ERRORS_KEY: [f"The body is not {encoding} text."]}) from None
        try:
            return json_input.loads(text)
        except json_input.JSONInputError as exc:
            raise ParseError({exc.path or api_settings.NON_FIELD_ERRORS_KEY: [exc.message]}) from None
