"""Inventory import and export: all or nothing, idempotent, audited, restricted."""

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.utils import timezone

from governance.audit import Actor, verify_chain
from governance.choices import PersonStatus
from governance.models import AuditEvent, Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.services.exchange import (
    OBJECT_TYPES,
    ImportRejected,
    export_inventory,
    export_rows,
    import_inventory,
)
from tests.factories import PersonFactory

SAMPLES = Path(__file__).resolve().parents[3] / "docs" / "samples"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PEM_HEADER = "-----BEGIN RSA PRIVATE KEY-----"
MODELS = (Team, Person, System, SecretStore, Credential, Workflow, Binding, AuditEvent)


def csv_bytes(header, *rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def rejected(**kwargs):
    with pytest.raises(ImportRejected) as caught:
        import_inventory(**kwargs)
    return caught.value


def where(exc):
    return {(e.line, e.field) for e in exc.errors}


@pytest.fixture
def system_import():
    return Actor.system(task_id="import_inventory:test")


@pytest.fixture
def sample_estate(db, system_import):
    """docs/samples/inventory.json imported into an empty database."""
    import_inventory(actor=system_import, content=(SAMPLES / "inventory.json").read_bytes(),
                     filename="inventory.json")


# --- good imports ------------------------------------------------------------------------------


def test_json_document_of_every_type_creates_everything_with_audit_events(db, system_import):
    result = import_inventory(actor=system_import, content=(SAMPLES / "inventory.json").read_bytes(),
                              filename="inventory.json")

    assert result.created == {"teams": 2, "people": 2, "systems": 3, "secret_stores": 2, "credentials": 2,
                              "workflows": 2, "bindings": 3}
    assert sum(result.updated.values()) == sum(result.unchanged.values()) == 0
    payments = Team.objects.get(name="Payments")
    olivia = Person.objects.get(username="olivia.owner")
    assert set(payments.members.values_list("username", flat=True)) == {"olivia.owner", "bruno.backup"}
    assert not olivia.has_usable_password()
    credential = Credential.objects.get(system__name="payments-db", identifier="svc_payments_app")
    assert credential.store.name == "vault-prod"
    assert credential.owner == olivia and credential.team == payments
    assert credential.scopes == ["SELECT", "INSERT", "UPDATE"]
    assert credential.issued_at == dt.datetime(2025, 1, 15, 9, tzinfo=dt.UTC)
    assert credential.rotation_max_age_days == 90
    workflow = Workflow.objects.get(name="payments-deploy")
    assert set(workflow.systems.values_list("name", flat=True)) == {"payments-db", "github-org"}
    assert workflow.credentials.count() == 2
    assert System.objects.get(name="legacy-sftp").retired_at is not None
    assert SecretStore.objects.get(name="vault-prod").settings == {"mount": "secret", "namespace": "payments"}

    events = AuditEvent.objects.all()
    actions = list(events.values_list("action", flat=True))
    for action, expected in [("team.create", 2), ("person.create", 2), ("system.create", 3),
                             ("system.retire", 1), ("secretstore.create", 2), ("credential.create", 2),
                             ("workflow.create", 2), ("binding.create", 3)]:
        assert actions.count(action) == expected, action
    assert set(events.values_list("actor_kind", "task_id")) == {("system", "import_inventory:test")}
    assert verify_chain().intact


def test_csv_per_type_in_import_order_matches_the_json_samples(db, system_import):
    for name in OBJECT_TYPES:
        result = import_inventory(actor=system_import, content=(SAMPLES / f"{name}.csv").read_bytes(),
                                  filename=f"{name}.csv")  # the type is guessed from the file name
        assert result.created[name] > 0

    for name in OBJECT_TYPES:
        result = import_inventory(actor=system_import, content=(SAMPLES / f"{name}.json").read_bytes(),
                                  filename=f"{name}.json")
        assert sum(result.created.values()) == sum(result.updated.values()) == 0, name
    result = import_inventory(actor=system_import, content=(SAMPLES / "inventory.json").read_bytes(),
                              filename="inventory.json")
    assert sum(result.created.values()) == sum(result.updated.values()) == 0


def test_second_import_changes_nothing_and_writes_no_audit_event(sample_estate, system_import):
    before = counts()

    result = import_inventory(actor=system_import, content=(SAMPLES / "inventory.json").read_bytes(),
                              filename="inventory.json")

    assert sum(result.created.values()) == sum(result.updated.values()) == 0
    assert result.unchanged["credentials"] == 2 and result.unchanged["bindings"] == 3
    assert counts() == before


def test_changed_row_updates_only_that_object(estate, system_import):
    credential = estate["credential"]
    # Descriptive fields only: status and scopes are gated (test_walk_around.py shows their refusal).
    content = csv_bytes(["system", "identifier", "notes", "rotation_max_age_days"],
                        ["payments-db", credential.identifier, "moved to the new vault", "30"],
                        ["platform-k8s", estate["other_credential"].identifier, "", ""])
    before = AuditEvent.objects.count()

    result = import_inventory(actor=system_import, content=content, filename="credentials.csv")

    assert [getattr(result, outcome)["credentials"] for outcome in ("created", "updated", "unchanged")] == \
        [0, 1, 1]
    credential.refresh_from_db()
    assert credential.notes == "moved to the new vault" and credential.rotation_max_age_days == 30
    event = AuditEvent.objects.get(sequence=before + 1)
    assert event.action == "credential.update" and set(event.changes) == {"notes", "rotation_max_age_days"}
    assert AuditEvent.objects.count() == before + 1


def test_values_naive_datetimes_are_utc_and_booleans_take_yes_no(db, system_import):
    content = csv_bytes(["name", "third_party", "vendor"],
                        ["vendor-crm", "yes", "Acme"], ["intranet", "0", ""])
    import_inventory(actor=system_import, content=content, filename="systems.csv")
    content = csv_bytes(["system", "identifier", "name", "kind", "expires_at"],
                        ["vendor-crm", "crm-key", "crm key", "api_key", "2026-02-01 08:30"])
    import_inventory(actor=system_import, content=content, filename="credentials.csv")

    assert System.objects.get(name="vendor-crm").third_party is True
    assert System.objects.get(name="intranet").third_party is False
    assert Credential.objects.get().expires_at == dt.datetime(2026, 2, 1, 8, 30, tzinfo=dt.UTC)


def test_new_people_join_existing_teams_and_existing_people_gain_teams(personas, system_import):
    content = json.dumps([
        {"username": "nina.new", "first_name": "Nina", "teams": ["Platform"]},
        {"username": personas.outsider.username, "teams": ["Payments"]},
    ]).encode()

    result = import_inventory(actor=system_import, content=content, filename="people.json",
                              object_type="people")

    assert (result.created["people"], result.updated["people"]) == (1, 1)
    assert personas.other_team.members.filter(username="nina.new").exists()
    assert personas.team.members.filter(pk=personas.outsider.pk).exists()
    assert AuditEvent.objects.filter(action="team.member_add").count() == 1


def test_a_new_team_may_be_managed_by_a_new_person_of_the_same_file(db, system_import):
    document = {"teams": [{"name": "Data", "manager": "mia.manager"}, {"name": "Ops"}],
                "people": [{"username": "mia.manager", "teams": ["Data", "Ops"]},
                           {"username": "max.member", "teams": ["Data"]}],
                "systems": [{"name": "warehouse", "owner": "mia.manager", "team": "Data"}]}

    result = import_inventory(actor=system_import, content=json.dumps(document).encode(), filename="x.json")

    assert (result.created["teams"], result.created["people"], result.created["systems"]) == (2, 2, 1)
    data = Team.objects.get(name="Data")
    assert data.manager.username == "mia.manager"
    assert set(data.members.values_list("username", flat=True)) == {"mia.manager", "max.member"}
    assert Team.objects.get(name="Ops").members.get().username == "mia.manager"
    assert System.objects.get(name="warehouse").team == data
    again = import_inventory(actor=system_import, content=json.dumps(document).encode(), filename="x.json")
    assert sum(again.unchanged.values()) == 5


def test_retired_in_a_row_goes_through_the_retire_action(estate, system_import):
    content = csv_bytes(["name", "status"], ["payments-deploy", "retired"])

    result = import_inventory(actor=system_import, content=content, filename="workflows.csv")

    assert result.updated["workflows"] == 1
    estate["workflow"].refresh_from_db()
    assert estate["workflow"].status == "retired" and estate["workflow"].retired_at is not None
    event = AuditEvent.objects.get(action="workflow.retire")
    assert "inventory import workflows.csv" in event.summary
    assert not AuditEvent.objects.filter(action="workflow.update").exists()


def test_byte_order_mark_and_crlf_keep_line_numbers(db, system_import):
    content = "\ufeffname,environment\r\nfine,prod\r\nbad,moon\r\n".encode()

    exc = rejected(actor=system_import, content=content, filename="systems.csv")

    assert where(exc) == {(3, "environment")}


def test_auditors_change_nothing(estate, personas):
    content = csv_bytes(["name", "criticality"], ["payments-db", "low"], ["platform-k8s", "low"])

    exc = rejected(actor=Actor.for_user(personas.auditor), content=content, filename="systems.csv")

    assert where(exc) == {(2, "")} and "Auditors" in str(exc)
    assert not AuditEvent.objects.exists()


def test_dry_run_counts_but_saves_nothing(db, system_import):
    result = import_inventory(actor=system_import, content=(SAMPLES / "inventory.json").read_bytes(),
                              filename="inventory.json", dry_run=True)

    assert result.created["credentials"] == 2
    assert all(n == 0 for n in counts().values())


# --- bad rows: every error, with line and field, and nothing written --------------------------


def test_bad_csv_rows_are_all_reported_and_nothing_is_written(estate, system_import):
    before = counts()
    content = csv_bytes(
        ["system", "identifier", "name", "kind", "notes", "expires_at", "password"],
        ["payments-db", "new-1", "fine", "api_key", "", "", ""],
        ["payments-db", "new-2", "bad kind", "magic_key", "", "", ""],
        ["no-such-system", "new-3", "missing system", "api_key", "", "", ""],
        ["payments-db", "new-4", "token", "api_key", f"the key is {GITHUB_TOKEN}", "", ""],
        ["payments-db", "new-5", "pem", "api_key", f"{PEM_HEADER}\nMIIEow", "", ""],
        ["payments-db", "new-6", "bad date", "api_key", "", "next tuesday", ""],
        ["payments-db", "new-1", "twice", "api_key", "", "", ""],
    )

    exc = rejected(actor=system_import, content=content, filename="credentials.csv")

    # The PEM cell spans lines 6 and 7, so the rows after it start on lines 8 and 9.
    assert where(exc) == {(1, "password"), (3, "kind"), (4, "system"), (5, "notes"), (6, "notes"),
                          (8, "expires_at"), (9, "identifier")}
    messages = {(e.line, e.field): e.message for e in exc.errors}
    assert "GitHub token" in messages[(5, "notes")] and GITHUB_TOKEN not in str(exc)
    assert "private key" in messages[(6, "notes")]
    assert "magic_key" in messages[(3, "kind")] and "api_key" in messages[(3, "kind")]
    assert "line 2" in messages[(9, "identifier")]
    assert "line 8, field expires_at:" in str(exc)
    assert counts() == before


def test_bad_json_rows_are_reported_at_the_line_their_object_starts(db, system_import):
    text = """{
  "systems": [
    {"name": "billing-api", "environment": "moon"},
    {
      "name": "billing-db",
      "owner": "nobody.here",
      "colour": "blue"
    }
  ],
  "credentials": [
    {"system": "billing-api", "identifier": "k1", "name": "k1", "kind": "api_key", "issued_at": "yesterday"},
    {"system": "billing-db", "identifier": "k2", "kind": "api_key", "fingerprint": "TOKEN"}
  ]
}""".replace("TOKEN", GITHUB_TOKEN)

    exc = rejected(actor=system_import, content=text.encode(), filename="upload.json")

    assert where(exc) == {(3, "environment"), (4, "owner"), (4, "colour"), (11, "issued_at"), (12, "name"),
                          (12, "fingerprint")}
    assert counts() == {model.__name__: 0 for model in MODELS}


def test_a_refusal_half_way_rolls_back_the_rows_already_written(estate, personas):
    """The owner may register a system, not retire one (the retire service refuses it while writing).

    (This used to register a credential for another owner; that is now refused while validating.)
    """
    before = counts()
    content = csv_bytes(["name", "lifecycle"], ["owner-new-system", ""], ["payments-db", "retired"])

    exc = rejected(actor=Actor.for_user(personas.owner), content=content, filename="systems.csv")

    assert [e.line for e in exc.errors] == [3]
    assert "security admin" in str(exc)
    assert counts() == before


def test_person_actor_cannot_import_what_needs_a_security_admin(personas):
    content = csv_bytes(["name", "kind"], ["vault-dev", "openbao_kv"])

    exc = rejected(actor=Actor.for_user(personas.owner), content=content, filename="secret_stores.csv")

    assert where(exc) == {(2, "")} and "security admin" in str(exc)
    assert not SecretStore.objects.exists()


def test_person_actor_sees_other_teams_objects_as_missing(estate, personas):
    content = csv_bytes(["system", "identifier", "name", "kind"],
                        ["platform-k8s", "new-key", "sneaky", "api_key"],
                        ["platform-k8s", estate["other_credential"].identifier, "renamed", "api_key"])

    exc = rejected(actor=Actor.for_user(personas.owner), content=content, filename="credentials.csv")

    assert where(exc) == {(2, "system"), (3, "system")}
    assert "No system 'platform-k8s'" in str(exc)


def test_rules_beyond_column_types(estate, personas, system_import):
    departed = PersonFactory(username="dora.departed", status=PersonStatus.DEPARTED,
                             departed_at=timezone.now())
    assert departed.is_departed
    document = {
        "teams": [{"name": "Payments", "manager": "ada.approver"}, {"name": "payments"}],
        "people": [{"username": "olivia.owner", "first_name": "Renamed"},
                   {"username": "neil.new", "status": "departed"}],
        "systems": [{"name": "crm", "owner": "dora.departed"}],
        "credentials": [{"system": "crm", "identifier": "k", "name": "k", "kind": "api_key",
                         "store": estate["credential"].store.name, "store_path": ""}],
        "bindings": [{"workflow": "payments-deploy", "credential_system": "payments-db",
                      "credential_identifier": estate["credential"].identifier, "purpose": "other"},
                     {"workflow": "payments-deploy", "credential_system": "crm",
                      "credential_identifier": "nope", "purpose": "x"}],
        "pets": [],
    }
    text = json.dumps(document, indent=1)

    exc = rejected(actor=system_import, content=text.encode(), filename="all.json")

    fields = {e.field for e in exc.errors}
    assert fields == {"manager", "name", "first_name", "status", "owner", "store_path", "purpose",
                      "credential_identifier", "pets"}
    assert "has departed" in str(exc) and "depart action" in str(exc)


def test_file_level_errors(db, system_import):
    assert where(rejected(actor=system_import, content=b"x", filename="inventory.xlsx")) == {(1, "file")}
    assert where(rejected(actor=system_import, content=b"name\nx\n", filename="upload.csv")) == {(1, "file")}
    assert where(rejected(actor=system_import, content=b"[]", filename="upload.json")) == {(1, "file")}
    assert where(rejected(actor=system_import, content=b'{\n "teams": [\n  {"name": }\n]}',
                          filename="t.json")) == {(3, "file")}
    duplicate = b'[\n {"name": "a",\n  "name": "b"}\n]'
    assert where(rejected(actor=system_import, content=duplicate, filename="teams.json")) == {(2, "name")}
    wrong_type = b'{"teams": [], "people": []}'
    assert where(rejected(actor=system_import, content=wrong_type, filename="x.json",
                          object_type="teams")) == {(1, "people")}


# --- export ------------------------------------------------------------------------------------


def test_export_respects_restrict(estate, personas):
    text, content_type = export_inventory(user=personas.outsider, object_type="all", fmt="json")
    document = json.loads(text)
    assert content_type == "application/json"
    for name in ("systems", "credentials", "workflows", "bindings"):
        assert document[name] == [], name
    assert "payments-db" not in text and "payments-deploy" not in text

    text, content_type = export_inventory(user=personas.outsider, object_type="credentials", fmt="csv")
    assert content_type.startswith("text/csv") and text.count("\n") == 1  # the header only

    owner_names = {row["name"] for row in json.loads(
        export_inventory(user=personas.owner, object_type="credentials", fmt="json")[0])}
    assert owner_names == {"payments-deploy-key"}
    auditor_names = {row["name"] for row in json.loads(
        export_inventory(user=personas.auditor, object_type="credentials", fmt="json")[0])}
    assert auditor_names == {"payments-deploy-key", "platform-token"}


def test_export_rows_use_natural_keys(estate):
    [row] = export_rows("bindings", Binding.objects.filter(pk=estate["binding"].pk))
    assert row == {"workflow": "payments-deploy", "credential_system": "payments-db",
                   "credential_identifier": estate["credential"].identifier, "purpose": "deploy",
                   "scopes_used": []}
    [row] = export_rows("credentials", Credential.objects.filter(pk=estate["credential"].pk))
    assert (row["system"], row["owner"], row["team"]) == ("payments-db", "olivia.owner", "Payments")
    assert row["issued_at"].endswith("Z")


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_round_trip_export_then_import_is_unchanged(estate, personas, system_import, fmt):
    estate["workflow"].systems.add(estate["other_system"])
    before = counts()
    if fmt == "json":
        text, _ = export_inventory(user=personas.secadmin, object_type="all", fmt="json")
        files = [("inventory.json", text)]
    else:
        files = [(f"{name}.csv", export_inventory(user=personas.secadmin, object_type=name, fmt="csv")[0])
                 for name in OBJECT_TYPES]

    for filename, text in files:
        result = import_inventory(actor=system_import, content=text.encode(), filename=filename)
        assert sum(result.created.values()) == sum(result.updated.values()) == 0, filename
        assert sum(result.unchanged.values()) > 0

    assert counts() == before


def test_a_hex_digest_imports_as_a_fingerprint_but_not_as_notes(db, system_import):
    """A bare SHA-256 is a fingerprint in the fingerprint column; elsewhere it is a hex-encoded key."""
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    import_inventory(actor=system_import, content=csv_bytes(["name"], ["billing-db"]), filename="systems.csv")
    header = ["system", "identifier", "name", "kind", "fingerprint", "notes"]
    exc = rejected(actor=system_import, filename="credentials.csv",
                   content=csv_bytes(header, ["billing-db", "k1", "k1", "api_key", digest, f"key {digest}"]))
    assert where(exc) == {(2, "notes")} and "hex-encoded key" in exc.errors[0].message
    import_inventory(actor=system_import, filename="credentials.csv",
                     content=csv_bytes(header, ["billing-db", "k1", "k1", "api_key", digest, "rotated by CI"]))
    assert Credential.objects.get(identifier="k1").fingerprint == digest
