"""Every bad input of issue 15 answers 4xx (or a form error / CLI message) naming its field; nothing is written.

Each case was a 500 on main. Each hits the real endpoint, form page or command, and checks the
status, that the field is named, and that no row and no audit event was added.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import AuditEvent, Credential, Person, SecretStore, System, Team, Workflow
from governance.models.approvals import ApprovalRequest
from governance.models.integrations import IdempotencyRecord
from tests.factories_approvals import make_policy
from tests.factories_checks import FindingFactory, load_catalogue

pytestmark = pytest.mark.django_db

BIG = 3_000_000  # over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB)
DEEP = '{"a":' * 5000 + "1" + "}" * 5000  # deep enough to overflow Python's JSON parser
MEDIUM = '{"a":' * 40 + "1" + "}" * 40  # parses, but deeper than the limit of 32
COUNTED = (System, SecretStore, Credential, Workflow, Person, Team, ApprovalRequest, IdempotencyRecord, AuditEvent)


@dataclass
class World:
    personas: object
    finding: object

    def client(self, persona: str, cls=APIClient):
        client = cls(raise_request_exception=False)
        client.force_login(getattr(self.personas, persona))
        return client


@pytest.fixture
def world(personas, estate):
    load_catalogue()
    make_policy(groups=[personas.other_team.group])
    return World(personas, FindingFactory.for_object(estate["credential"], code="rotation-age"))


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


# --- channels: each answers (status, what names the field) -----------------------------------


def api_post(url: str, body: str, persona: str = "secadmin", **headers):
    def run(world: World):
        response = world.client(persona).post(url, body, content_type="application/json", **headers)
        return response.status_code, response.json()["fields"]
    return run


def api_get(url: str):
    def run(world: World):
        response = world.client("secadmin").get(url)
        return response.status_code, response.json()["fields"]
    return run


def store_body(settings: str) -> str:
    return f'{{"name": "bad-store", "kind": "openbao_kv", "settings": {settings}}}'


def filing_body(payload: str):
    def body(world: World) -> str:
        return (f'{{"action": "risk_acceptance", "target_type": "governance.finding", "target_id": {world.finding.pk}, '
                f'"payload": {payload}, "justification": "Rotation is planned"}}')
    return body


def api_file(payload: str):
    def run(world: World):
        return api_post("/api/v1/approval-requests/", filing_body(payload)(world), persona="owner",
                        HTTP_IDEMPOTENCY_KEY="bad-input")(world)
    return run


def portal_post(url: str, data: dict, content_type: str | None = None):
    def run(world: World):
        client = world.client("secadmin", Client)
        if content_type:
            response = client.post(url, urlencode(data), content_type=content_type)
        else:
            response = client.post(url, data)
        if response.status_code != 200:
            return response.status_code, {}
        return 400, {name: list(errors) for name, errors in response.context["form"].errors.items()}
    return run


def portal_store(settings: str):
    return portal_post("/stores/new/", {"name": "bad-store", "kind": "openbao_kv", "address": "", "settings": settings})


def portal_import(filename: str, content: bytes):
    def run(world: World):
        response = world.client("secadmin", Client).post(
            "/import/", {"object_type": "all", "file": SimpleUploadedFile(filename, content)})
        assert response.status_code == 200, response.status_code
        assert "Nothing was imported" in str(response.context["form"].non_field_errors())
        return 400, {error.field: [f"line {error.line}: {error.message}"] for error in response.context["errors"]}
    return run


def command_import(filename: str, content: bytes):
    def run(world: World):
        path = world.tmp_path / filename
        path.write_bytes(content)
        stderr = io.StringIO()
        with pytest.raises(CommandError, match="nothing was imported"):
            call_command("import_inventory", str(path), stderr=stderr)
        fields = {}
        for line in stderr.getvalue().splitlines():  # "line 2, field name: message"
            where, _, message = line.partition(": ")
            fields.setdefault(where.split("field ")[-1], []).append(f"{where.split(',')[0]}: {message}")
        return 400, fields
    return run


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable
    status: int
    field: str
    says: str = ""


CASES = [
    Case("api_body_over_2_5_mb", api_post("/api/v1/systems/", json.dumps({"name": "x", "description": "a" * BIG})),
         413, "body", "larger than"),
    Case("portal_body_over_2_5_mb_form", portal_post("/systems/new/", {"name": "x", "description": "a" * BIG}),
         413, ""),
    Case("portal_body_over_2_5_mb_urlencoded",
         portal_post("/systems/new/", {"name": "x", "description": "a" * BIG},
                     content_type="application/x-www-form-urlencoded"), 413, ""),
    Case("api_deeply_nested_json", api_post("/api/v1/secret-stores/", store_body(DEEP)), 400, "settings", "Nested"),
    Case("api_nested_deeper_than_limit", api_post("/api/v1/secret-stores/", store_body(MEDIUM)),
         400, "settings", "Nested"),
    Case("api_store_settings_1e999", api_post("/api/v1/secret-stores/", store_body('{"timeout": 1e999}')),
         400, "settings.timeout", "finite"),
    Case("api_store_settings_nan_literal", api_post("/api/v1/secret-stores/", store_body('{"timeout": NaN}')),
         400, "settings.timeout", "finite"),
    Case("api_store_settings_lone_surrogate",
         api_post("/api/v1/secret-stores/", store_body('{"mount": "\\ud800"}')), 400, "settings.mount", "surrogate"),
    Case("api_store_settings_nul", api_post("/api/v1/secret-stores/", store_body('{"mount": "kv\\u0000"}')),
         400, "settings.mount", "NUL"),
    Case("api_approval_payload_1e999", api_file('{"expires_at": 1e999}'), 400, "payload.expires_at", "finite"),
    Case("api_approval_payload_lone_surrogate", api_file('{"expires_at": "\\ud800"}'),
         400, "payload.expires_at", "surrogate"),
    Case("api_risk_acceptance_expires_at_number", api_file('{"expires_at": 5}'), 400, "expires_at", "date"),
    Case("api_risk_acceptance_expires_at_object", api_file('{"expires_at": {"at": "2030-01-01"}}'),
         400, "expires_at", "single value"),
    Case("api_cursor_p_abc", api_get(f"/api/v1/systems/?cursor={cursor('p=abc')}"), 404, "cursor", "Invalid cursor"),
    Case("api_cursor_p_nul", api_get(f"/api/v1/audit-events/?cursor={cursor('p=%00')}"),
         404, "cursor", "Invalid cursor"),
    Case("api_cursor_p_nul_on_pk_desc", api_get(f"/api/v1/approval-requests/?cursor={cursor('r=1&p=%00')}"),
         404, "cursor", "Invalid cursor"),
    Case("api_cursor_p_out_of_range", api_get(f"/api/v1/systems/?cursor={cursor('p=' + '9' * 30)}"),
         404, "cursor", "Invalid cursor"),
    Case("portal_store_settings_not_an_object", portal_store("[1, 2]"), 400, "settings", "JSON object"),
    Case("portal_store_settings_bad_json", portal_store('{"mount": '), 400, "settings", "Not valid JSON"),
    Case("portal_store_settings_1e999", portal_store('{"timeout": 1e999}'), 400, "settings", "timeout: Give a finite"),
    Case("portal_store_settings_lone_surrogate", portal_store('{"mount": "\\udfff"}'), 400, "settings", "surrogate"),
    Case("portal_store_settings_nul", portal_store('{"mount": "\\u0000"}'), 400, "settings", "NUL"),
    Case("portal_store_settings_deep", portal_store(DEEP), 400, "settings", "Nested"),
    Case("portal_import_csv_nul", portal_import("systems.csv", b"name,description\nok,fine\nx\x00y,d\n"),
         400, "file", "line 3: The file contains a NUL"),
    Case("portal_import_json_nul_escape", portal_import("systems.json", b'[\n{"name": "a\\u0000"}\n]'),
         400, "name", "line 2: Text may not contain NUL"),
    Case("portal_import_json_deep", portal_import("systems.json", b"[\n" + b"[" * 5000 + b"]" * 5000 + b"\n]"),
         400, "file", "line 2: Nested"),
    Case("portal_import_json_store_settings_1e999",
         portal_import("secret_stores.json", b'[{"name": "s", "kind": "openbao_kv", "settings": {"t": 1e999}}]'),
         400, "settings", "finite"),
    Case("portal_import_csv_store_settings_1e999",
         portal_import("secret_stores.csv", b'name,kind,settings\ns,openbao_kv,"{""t"": 1e999}"\n'),
         400, "settings", "finite"),
    Case("command_import_csv_nul", command_import("systems.csv", b"name\nx\x00\n"), 400, "file", "line 2: The file"),
    Case("command_import_json_nul_byte", command_import("systems.json", b'[{"name": "a\x00"}]'),
         400, "file", "NUL"),
    Case("command_import_json_deep", command_import("systems.json", b"[" * 5000 + b"]" * 5000), 400, "file", "Nested"),
    Case("command_import_json_lone_surrogate",
         command_import("systems.json", b'[\n{"name": "ok"},\n{"name": "\\ud800"}\n]'),
         400, "name", "line 3: Text may not contain a lone surrogate"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_naming_its_field_and_writes_nothing(world, case, tmp_path):
    world.tmp_path = tmp_path
    before = counts()
    status, fields = case.run(world)
    assert status == case.status, fields
    if case.field:
        assert case.field in fields, fields
        assert case.says in " ".join(fields[case.field]), fields
    assert counts() == before


def test_a_good_body_still_passes_the_same_checks(world):
    """The checks refuse only what cannot be stored: ordinary nested settings and a risk acceptance go through."""
    client = world.client("secadmin")
    settings = '{"mount": "kv", "retries": [1, 2.5], "tls": {"verify": true}, "note": "caf\\u00e9"}'
    created = client.post("/api/v1/secret-stores/", store_body(settings), content_type="application/json")
    assert created.status_code == 201, created.json()
    assert created.json()["settings"]["note"] == "café"
    until = (timezone.now() + dt.timedelta(days=30)).replace(microsecond=0).isoformat()
    body = filing_body(json.dumps({"expires_at": until}))(world)
    filed = world.client("owner").post("/api/v1/approval-requests/", body, content_type="application/json")
    assert filed.status_code == 201, filed.json()
    first = client.get("/api/v1/audit-events/?page_size=1").json()
    assert first["next"] and client.get(first["next"]).status_code == 200  # a real cursor still works

def test_a_large_import_file_is_not_refused_as_a_large_body(world, tmp_path):
    """The 2.5 MB body limit leaves room for an upload: a 3 MB inventory file is read, not answered 413."""
    rows = "".join(f"bulk-{n:06d},{'d' * 40}\n" for n in range(60_000))
    content = ("name,description\n" + rows).encode()
    assert len(content) > BIG
    response = world.client("secadmin", Client).post(
        "/import/", {"object_type": "all", "file": SimpleUploadedFile("systems.csv", b"name,bogus\n" + content[17:])})
    assert response.status_code == 200
    assert any(error.field == "bogus" for error in response.context["errors"])
