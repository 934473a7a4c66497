"""The OpenAPI schema is generated and complete, and schemathesis finds no server error and no
response outside it (a bounded number of examples per operation, against the WSGI app)."""

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories_integrations import make_integration
from tests.matrix.integrations_api import api_objects

pytestmark = pytest.mark.django_db
MAX_EXAMPLES = 5  # per operation; about 70 operations
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_schema_is_served_to_callers_and_documents_every_operation(api, personas):
    assert api.get("/api/schema/").status_code == 401
    api.force_login(personas.auditor)
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    from tests.governance.api.test_api_matrix import api_operations

    documented = {(path, method) for path, ops in schema["paths"].items() for method in ops}
    assert len(documented) == len(api_operations())
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert {"401", "403", "404"} <= set(op["responses"]), (path, method)
            if method in ("post", "patch") and "requestBody" not in op and not path.endswith(
                    ("/revoke/", "/cancel/", "/disable/", "/enable/", "/ping/", "/retry/", "/drill/", "/run/",
                     "/read/")):
                raise AssertionError(f"{method} {path} documents no request body")
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    assert {"Error"} <= set(schema["components"]["schemas"])


def test_docs_page_serves_no_asset_from_a_cdn(client, personas):
    client.force_login(personas.owner)
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui-bundle.js" in html and "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html


@pytest.fixture
def wsgi_app():
    """The Django WSGI app, without the per-request connection recycling that would close the test
    transaction's connection (Django's own test client disconnects it in the same way)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(personas, estate, settings, wsgi_app):
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    api_objects(estate, personas)
    _, token = make_integration(owner=personas.secadmin, scopes=["admin"], name="schemathesis")
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, headers=headers)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 60

    for operation in operations:
        @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
        @hypothesis.given(case=operation.as_strategy())
        def check(case):
            with transaction.atomic():  # every call sees the same estate
                response = case.call(headers=headers)
                transaction.set_rollback(True)
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert failures == [], "\n\n".join(failures)
