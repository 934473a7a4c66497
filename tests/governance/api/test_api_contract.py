"""The API's shared contract: idempotency keys, cursor pagination, constant query counts, errors."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import Binding, Credential, Person, SecretStore, System, Workflow
from governance.models.integrations import (
    IdempotencyRecord,
    Integration,
    IntegrationToken,
    WebhookEndpoint,
)
from governance.models.notifications import Notification
from tests.factories import SystemFactory
from tests.factories_integrations import bearer, make_integration
from tests.matrix.integrations_api import api_objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_token(personas):
    _, token = make_integration(owner=personas.secadmin, scopes=["admin"], name="admin-bot")
    return token


class TestIdempotency:
    @pytest.mark.embedded
    def test_same_key_and_body_returns_the_first_response(self, api, personas, admin_token):
        headers = {**bearer(admin_token), "HTTP_IDEMPOTENCY_KEY": "k-1"}
        first = api.post("/api/v1/systems/", {"name": "idem-sys"}, format="json", **headers)
        again = api.post("/api/v1/systems/", {"name": "idem-sys"}, format="json", **headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
        assert System.objects.filter(name="idem-sys").count() == 1

    def test_same_key_with_another_body_is_a_conflict(self, api, personas, admin_token):
        headers = {**bearer(admin_token), "HTTP_IDEMPOTENCY_KEY": "k-2"}
        assert api.post("/api/v1/systems/", {"name": "a"}, format="json", **headers).status_code == 201
        conflict = api.post("/api/v1/systems/", {"name": "b"}, format="json", **headers)
        assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"
        assert not System.objects.filter(name="b").exists()

    def test_keys_are_per_principal_and_failures_release_the_key(self, api, personas, admin_token):
        session = APIClient()
        session.force_login(personas.owner)
        headers = {"HTTP_IDEMPOTENCY_KEY": "shared"}
        assert api.post("/api/v1/systems/", {"name": "x1"}, format="json", **bearer(admin_token),
                        **headers).status_code == 201
        assert session.post("/api/v1/systems/", {"name": "x2"}, format="json", **headers).status_code == 201
        assert IdempotencyRecord.objects.filter(key="shared").count() == 2
        refused = session.post("/api/v1/systems/", {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="bad")
        assert refused.status_code == 400
        assert not IdempotencyRecord.objects.filter(key="bad").exists()  # a failed request can be retried

    def test_in_progress_key_is_a_conflict(self, api, personas, admin_token):
        integration = IdempotencyRecord._meta.get_field("integration").related_model.objects.get(name="admin-bot")
        IdempotencyRecord.objects.create(key="busy", principal=f"integration:{integration.pk}",
                                         integration=integration, method="POST", path="/api/v1/systems/",
                                         request_hash="0" * 64, lease_token="other-request",
                                         lease_expires_at=timezone.now() + dt.timedelta(minutes=1))
        busy = api.post("/api/v1/systems/", {"name": "y"}, format="json", **bearer(admin_token),
                        HTTP_IDEMPOTENCY_KEY="busy")
        assert busy.status_code == 409

    def test_token_rotation_is_not_repeated_and_its_token_is_never_stored(self, api, personas):
        integration, token = make_integration(owner=personas.owner, scopes=["read"], name="self-rotating")
        headers = {**bearer(token), "HTTP_IDEMPOTENCY_KEY": "rotate-1"}
        url = f"/api/v1/integrations/{integration.pk}/rotate-token/"
        first = api.post(url, {"overlap_hours": 1}, format="json", **headers)
        again = api.post(url, {"overlap_hours": 1}, format="json", **headers)
        assert first.status_code == 201 and again.status_code == 201 and integration.tokens.count() == 2
        assert again.json()["prefix"] == first.json()["prefix"] and again.json()["token"] is None
        assert first.json()["token"] not in str(IdempotencyRecord.objects.values_list("response_body", flat=True))
        # the new token works, and the old one still does during the overlap
        assert api.get("/api/v1/whoami/", **bearer(first.json()["token"])).status_code == 200
        assert api.get("/api/v1/whoami/", **bearer(token)).status_code == 200


ROWS = 55


def _bulk(rows):
    """ROWS rows in one INSERT (the auditor sees every row: no grants needed)."""
    return type(rows[0]).objects.bulk_create(rows)


def _clones(obj, **changes):
    rows = []
    for i in range(ROWS):
        row = type(obj).objects.get(pk=obj.pk)
        row.pk = None
        for name, value in changes.items():
            setattr(row, name, value(i))
        rows.append(row)
    return _bulk(rows)


def _credentials(e, p):
    return _bulk([Credential(name=f"bulk-{i}", kind="api_key", system=e["system"], identifier=f"bulk-{i}",
                             owner=p.owner) for i in range(ROWS)])


def _workflows(e, p):
    for workflow in _bulk([Workflow(name=f"bulk-{i}", kind="scheduled_job", platform="cron", owner=p.owner)
                           for i in range(ROWS)]):
        workflow.systems.add(e["system"])


def _integrations(e, p):
    expires = e["_api"]["report"].created_at
    integrations = _bulk([Integration(name=f"bulk-{i}", owner=p.owner, scopes=["read"], expires_at=expires)
                          for i in range(ROWS)])
    _bulk([IntegrationToken(integration=x, prefix=f"stw_bulk{i:04d}", token_hash=f"{i:064x}", expires_at=expires)
           for i, x in enumerate(integrations)])


LISTS = [
    ("/api/v1/systems/", lambda e, p: _bulk([System(name=f"bulk-{i}", owner=p.owner) for i in range(ROWS)])),
    ("/api/v1/secret-stores/", lambda e, p: _bulk([SecretStore(name=f"bulk-{i}", kind="openbao_kv")
                                                   for i in range(ROWS)])),
    ("/api/v1/credentials/", _credentials),
    ("/api/v1/workflows/", _workflows),
    ("/api/v1/bindings/", lambda e, p: _bulk([Binding(workflow=e["workflow"], credential=c, purpose="bulk")
                                              for c in _credentials(e, p)])),
    ("/api/v1/people/", lambda e, p: _bulk([Person(username=f"bulk-{i}", password="!") for i in range(ROWS)])),
    ("/api/v1/teams/", None),
    ("/api/v1/audit-events/", None),  # the estate's registrations already wrote more than 50
    ("/api/v1/integrations/", _integrations),
    ("/api/v1/integration-tokens/", None),
    ("/api/v1/webhook-endpoints/", lambda e, p: _bulk([WebhookEndpoint(
        name=f"bulk-{i}", url="https://hooks.example.test/x", event_types=["finding.opened"], owner=p.owner)
        for i in range(ROWS)])),
    ("/api/v1/webhook-deliveries/", lambda e, p: _clones(e["_api"]["delivery"], message_id=lambda i: f"msg_{i}")),
    # distinct fingerprints: the database allows one pending request per action, target and change
    ("/api/v1/approval-requests/",
     lambda e, p: _clones(e["_api"]["approval"], payload_fingerprint=lambda i: f"{i:064}")),
    ("/api/v1/findings/", lambda e, p: _clones(e["_api"]["finding"], object_id=lambda i: 10_000 + i)),
    ("/api/v1/attestation-items/", None),  # one per object: the estate's and the integrations' credentials
    ("/api/v1/report-jobs/", lambda e, p: _clones(e["_api"]["report"])),
    # the caller's own: the auditor's inbox
    ("/api/v1/notifications/", lambda e, p: _bulk([Notification(
        recipient=p.auditor, kind="finding_opened", subject=f"bulk {i}", dedupe_key=f"bulk:{i}")
        for i in range(ROWS)])),
]


NEEDS_CAPABILITY_OBJECTS = {"integrations", "webhook-deliveries", "approval-requests", "findings",
                            "attestation-items", "report-jobs", "integration-tokens"}


@pytest.mark.parametrize("url,make", LISTS, ids=[url.split("/")[3] for url, _ in LISTS])
def test_list_query_count_is_constant_in_the_page_size(api, personas, estate, settings, url, make):
    """The same number of queries for a page of 1 row and a page of 50 rows, as the auditor
    (every row visible), with a token (the authentication's queries included)."""
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    if url.split("/")[3] in NEEDS_CAPABILITY_OBJECTS:
        api_objects(estate, personas)
    if make is not None:
        make(estate, personas)
    _, token = make_integration(owner=personas.auditor, scopes=["read"], name="counter")
    counts = {}
    for size in (1, 50):
        api.get(url, {"page_size": size}, **bearer(token))  # warm caches (content types) first
        with CaptureQueriesContext(connection) as queries:
            response = api.get(url, {"page_size": size}, **bearer(token))
        assert response.status_code == 200, response.content
        rows = len(response.json()["results"])
        assert rows == size or (size == 50 and 1 < rows < 50), (url, size, rows)
        counts[size] = len(queries)
    assert counts[1] == counts[50], f"{url}: {counts}"


def test_cursor_pagination_walks_every_row_once(api, personas):
    for i in range(7):
        SystemFactory(name=f"page-{i}", owner=personas.owner)
    api.force_login(personas.owner)
    seen, url = [], "/api/v1/systems/?page_size=3"
    while url:
        body = api.get(url).json()
        seen += [row["name"] for row in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(f"page-{i}" for i in range(7)) and len(seen) == 7
    SystemFactory(name="page-late", owner=personas.owner)  # a cursor is stable under inserts
    first = api.get("/api/v1/systems/?page_size=3").json()
    second = api.get(first["next"]).json()
    assert not {r["name"] for r in first["results"]} & {r["name"] for r in second["results"]}
    assert api.get("/api/v1/systems/?cursor=not-a-cursor").status_code == 404


def test_a_page_runs_the_visibility_rule_once_for_ids_and_reads_its_rows_by_key(api, personas):
    """Ids first (the restricted query, ordered and limited), then the rows by primary key: the visible set is
    never read whole to be sorted. Walking back through the pages (a reversed cursor) keeps the order."""
    for i in range(5):
        SystemFactory(name=f"keyed-{i}", owner=personas.owner)
    SystemFactory(name="keyed-other", owner=personas.approver)
    api.force_login(personas.owner)
    with CaptureQueriesContext(connection) as captured:
        body = api.get("/api/v1/systems/?page_size=2").json()
    system_queries = [q["sql"] for q in captured.captured_queries if 'FROM "governance_system"' in q["sql"]]
    restricted = [sql for sql in system_queries if "UNION" in sql]
    assert len(restricted) == 1 and '"governance_system"."name"' not in restricted[0].split("FROM")[0]
    assert any("UNION" not in sql and '"governance_system"."name"' in sql for sql in system_queries)
    names = [row["name"] for row in body["results"]]
    second = api.get(body["next"]).json()
    back = api.get(second["previous"]).json()
    assert [row["name"] for row in back["results"]] == names and "keyed-other" not in str(second)


def test_lists_use_the_portal_filtersets(api, personas, estate):
    api.force_login(personas.owner)
    names = {r["name"] for r in api.get("/api/v1/credentials/", {"q": "deploy"}).json()["results"]}
    assert names == {"payments-deploy-key"}
    bad = api.get("/api/v1/credentials/", {"kind": "crystal-ball"})
    assert bad.status_code == 400 and "kind" in bad.json()["fields"]


class TestErrors:
    def test_one_error_body_with_field_messages(self, api, personas):
        api.force_login(personas.owner)
        response = api.post("/api/v1/workflows/", {"kind": "nope"}, format="json")
        body = response.json()
        assert response.status_code == 400
        assert set(body) == {"status", "code", "message", "fields", "request_id"}
        assert {"name", "kind", "platform"} <= set(body["fields"])
        assert body["request_id"] == response["X-Request-ID"]

    def test_service_validation_errors_become_field_messages(self, api, personas, estate):
        api.force_login(personas.owner)
        response = api.patch(f"/api/v1/workflows/{estate['workflow'].pk}/", {"status": "retired"}, format="json")
        assert response.status_code == 400 and "status" in response.json()["fields"]
        leaked = api.post("/api/v1/systems/", {"name": "s", "description": "password=hunter2hunter2"},
                          format="json")
        assert leaked.status_code == 400 and "description" in leaked.json()["fields"]

    def test_401_403_404_405(self, api, personas, estate):
        assert api.get("/api/v1/systems/").json()["code"] == "not_authenticated"
        assert api.get("/api/v1/systems/", HTTP_AUTHORIZATION="Bearer stw_nope").status_code == 401
        api.force_login(personas.outsider)
        assert api.get(f"/api/v1/systems/{estate['system'].pk}/").json()["code"] == "not_found"
        assert api.post("/api/v1/secret-stores/", {"name": "s", "kind": "unknown"},
                        format="json").json()["code"] == "permission_denied"
        assert api.put("/api/v1/systems/", {}, format="json").status_code == 405

    def test_session_writes_need_csrf(self, personas):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(personas.owner)
        response = client.post("/api/v1/systems/", {"name": "csrf"}, format="json")
        assert response.status_code == 403 and "CSRF" in response.json()["message"]


def test_unexpected_errors_answer_in_the_error_format_too(api, personas, monkeypatch):
    from governance.api.views import inventory

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(inventory.selectors, "system_list", broken)
    api.force_login(personas.owner)
    response = api.get("/api/v1/systems/")
    assert response.status_code == 500 and response.json()["code"] == "server_error"
    assert "boom" not in response.content.decode()
