"""Ids in bodies are whole numbers, never booleans (issue 14: JSON `true` was accepted as an id:
`new_team: true` became team 1, in an ownership-transfer approval payload)."""

import json

import pytest
from rest_framework.test import APIClient

from governance.audit import Actor
from governance.models import AuditEvent, Team
from governance.models.approvals import ApprovalRequest
from governance.services.exchange import ImportRejected, import_inventory
from governance.services.ids import id_error, parse_id
from tests.factories import TeamFactory
from tests.factories_approvals import make_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_one(personas):
    """Object 1 exists, so that `true` (== 1 in Python) would name it."""
    return Team.objects.filter(pk=1).first() or TeamFactory(id=1, name="Team one")


@pytest.fixture
def policy(personas):
    return make_policy(name="Standard", groups=[personas.other_team.group])


def as_user(person) -> APIClient:
    client = APIClient()
    client.force_login(person)
    return client


def transfer(estate, personas, **payload):
    return {"action": "ownership_transfer", "target_type": "governance.credential",
            "target_id": estate["credential"].pk, "justification": "Olivia moves",
            "payload": {"new_owner": personas.backup_owner.pk, **payload}}


def test_new_team_true_became_team_1_in_an_ownership_transfer_payload(personas, estate, policy, team_one):
    response = as_user(personas.owner).post("/api/v1/approval-requests/", transfer(estate, personas, new_team=True),
                                            format="json")
    assert response.status_code == 400, response.json()
    assert "whole number" in response.json()["fields"]["new_team"][0]
    assert not ApprovalRequest.objects.exists()


# (path, who posts, url, body builder, field the message is on)
API_PATHS = [
    ("related field (owned object's team)", "owner", "/api/v1/systems/",
     lambda e, p, v: {"name": "s-new", "owner": p.owner.pk, "team": v}, "team"),
    ("related field (credential's system)", "owner", "/api/v1/credentials/",
     lambda e, p, v: {"name": "c", "kind": "api_key", "identifier": "c-1", "system": v, "owner": p.owner.pk},
     "system"),
    ("many related field (workflow's systems)", "owner", "/api/v1/workflows/",
     lambda e, p, v: {"name": "w", "kind": "scheduled_job", "platform": "cron", "owner": p.owner.pk,
                      "systems": [v]}, "systems"),
    ("binding's workflow", "owner", "/api/v1/bindings/",
     lambda e, p, v: {"workflow": v, "credential": e["credential"].pk, "purpose": "x"}, "workflow"),
    ("explicit related field (integration owner)", "secadmin", "/api/v1/integrations/",
     lambda e, p, v: {"name": "bool-owner", "owner": v, "scopes": ["read"]}, "owner"),
    ("approval target id", "owner", "/api/v1/approval-requests/",
     lambda e, p, v: {**transfer(e, p), "target_id": v}, "target_id"),
    ("approval payload model choice", "owner", "/api/v1/approval-requests/",
     lambda e, p, v: transfer(e, p, new_team=v), "new_team"),
    ("approval payload person", "owner", "/api/v1/approval-requests/",
     lambda e, p, v: {**transfer(e, p), "payload": {"new_owner": v}}, "new_owner"),
    ("approval payload model multiple choice", "owner", "/api/v1/approval-requests/",
     lambda e, p, v: {"action": "register_workflow", "justification": "new job",
                      "payload": {"name": "nw", "kind": "scheduled_job", "platform": "cron", "systems": [v]}},
     "systems"),
]


@pytest.mark.parametrize("value", [True, False, 1.5, "1.5", "true", -1, 0])
@pytest.mark.parametrize(("path", "who", "url", "body", "field"), API_PATHS, ids=[p[0] for p in API_PATHS])
def test_an_id_is_a_whole_number_on_every_api_path(personas, estate, policy, team_one, path, who, url, body, field,
                                                   value):
    before = AuditEvent.objects.count()
    response = as_user(getattr(personas, who)).post(url, body(estate, personas, value), format="json")
    assert response.status_code == 400, response.json()
    fields = response.json()["fields"]
    assert any(name == field or name.startswith(f"{field}.") for name in fields), fields
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("value", [True, 1.5])
@pytest.mark.parametrize("column", ["owner", "team"])
def test_import_refuses_a_boolean_or_a_number_where_a_name_is_due(personas, team_one, column, value):
    document = {"systems": [{"name": "imported", column: value}]}
    with pytest.raises(ImportRejected) as caught:
        import_inventory(actor=Actor.for_user(personas.secadmin), content=json.dumps(document).encode(),
                         filename="inventory.json")
    assert any(error.field == column for error in caught.value.errors)


def test_whole_ids_still_work(personas, estate, policy):
    as_owner = as_user(personas.owner)
    made = as_owner.post("/api/v1/systems/", {"name": "s-ok", "owner": personas.owner.pk, "team": personas.team.pk},
                         format="json")
    assert made.status_code == 201 and made.json()["team"] == personas.team.pk
    filed = as_owner.post("/api/v1/approval-requests/", transfer(estate, personas, new_team=str(personas.team.pk)),
                          format="json")
    assert filed.status_code == 201, filed.json()
    assert ApprovalRequest.objects.get().payload["new_team"] == personas.team.pk


@pytest.mark.parametrize(("value", "ok"), [
    (7, True), ("7", True), (" 7 ", True), (7.0, True),
    (True, False), (False, False), (7.5, False), (float("nan"), False), ("7.0", False), ("", False),
    (None, False), ([7], False), (0, False), (2**63, False), ("\u0667", False),
])
def test_the_one_rule(value, ok):
    assert (id_error(value) is None) is ok
    if ok:
        assert parse_id(value, field="x") == 7
