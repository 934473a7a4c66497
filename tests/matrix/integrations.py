"""Permission-matrix rules of the integrations pages: integrations, their tokens, webhooks, deliveries.

The integration, endpoint and delivery belong to the owner persona (team Payments); they are
built by tests/matrix/integrations_api.py, which the API matrix shares.
"""

from tests.matrix.integrations_api import api_objects
from tests.matrix_personas import ADMINS, EVERYONE, OWN, OWN_CHANGE, POST_ONLY


def _token(estate, personas):
    made = api_objects(estate, personas)
    return {"pk": made["integration"].pk, "token_pk": made["token"].pk}


def _endpoint_op(estate, personas):
    return {"pk": api_objects(estate, personas)["endpoint"].pk, "op": "ping"}


def _delegation(estate, personas):
    """The approver's delegation to the matrix integration (only she may revoke it; the page is POST only)."""
    from tests.factories_integrations import delegate  # like api_objects: built lazily, inside the test

    if "delegation" not in estate:
        estate["delegation"] = delegate(personas.approver, api_objects(estate, personas)["integration"])
    return {"pk": estate["delegation"].pk}


KWARGS = {"integration_token": _token, "webhook_op": _endpoint_op, "delegation": _delegation}

RULES = {
    "integration-list": (None, EVERYONE),
    "integration-create": (None, ADMINS),
    "integration-detail": ("api_integration", OWN),
    "integration-edit": ("api_integration", ADMINS),
    "integration-rotate": ("api_integration", OWN_CHANGE),
    "integration-disable": ("api_integration", OWN_CHANGE),
    "integration-token-revoke": ("integration_token", POST_ONLY),
    # a person's own delegations: everyone has the page; revoking is a POST of one's own
    "delegation-list": (None, EVERYONE),
    "delegation-revoke": ("delegation", POST_ONLY),
    "webhook-list": (None, EVERYONE),
    "webhook-create": (None, ADMINS),
    "webhook-detail": ("api_endpoint", OWN),
    "webhook-edit": ("api_endpoint", ADMINS),
    "webhook-rotate-secret": ("api_endpoint", POST_ONLY),
    "webhook-action": ("webhook_op", POST_ONLY),
    "webhook-delivery-detail": ("api_delivery", OWN),
    "webhook-delivery-retry": ("api_delivery", POST_ONLY),
}
