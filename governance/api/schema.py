"""The OpenAPI schema is generated from the views; this adds what every operation shares.

Every operation documents the error body for the statuses it can answer, the optional
X-On-Behalf-Of header, and (on POSTs that create) the Idempotency-Key header.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter

from governance.api.authentication import ON_BEHALF_OF_HEADER
from governance.api.errors import ErrorSerializer
from governance.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from governance.services.integration_access import ON_BEHALF_OF_RULE

ERROR_DESCRIPTIONS = {
    "400": "The request is not valid: see fields.",
    "401": "No valid credentials: send a bearer token or use a signed-in session.",
    "403": "Authenticated, but this operation is not allowed (scope, role or separation of duties).",
    "404": "No such object, or not one you may see.",
    "409": "Idempotency-Key conflict: reused with another body, or still in progress.",
}


class StewardAutoSchema(AutoSchema):
    def _handler(self):
        action = getattr(self.view, "action", None)
        return getattr(self.view, action, None) if action else getattr(self.view, self.method.lower(), None)

    def is_idempotent(self) -> bool:
        return bool(getattr(self._handler(), "idempotent", False))

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        parameters.append(OpenApiParameter(
            ON_BEHALF_OF_HEADER, str, OpenApiParameter.HEADER, required=False,
            description="Integrations only: the username of the person the integration acts for (default: its "
                        "owner). " + ON_BEHALF_OF_RULE + " A decision made this way counts for that person and "
                        "for the integration's owner (separation of duties)."))
        parameters.append(OpenApiParameter(
            "X-Request-ID", str, OpenApiParameter.HEADER, required=False,
            description="Your own reference for the request (printable ASCII, at most 128 characters): stored as "
                        "client_request_id on its audit events. The response's X-Request-ID is always the "
                        "server's own request id."))
        if self.method == "POST" and self.is_idempotent():
            parameters.append(OpenApiParameter(
                IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
                description="Any unique string (a UUID): retrying with the same key and body returns the first "
                            "committed response, also after a 5xx; the same key with another body is a 409, as "
                            "is a key whose request is still running (for at most its 2-minute lease)."))
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "404"]
        if self.method == "POST" and self.is_idempotent():
            codes.append("409")
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses
