"""Gated fields cannot be walked around (issue 14): every gated field on every write path is refused.

For each inventory kind and each of its gated fields (services.inventory.GATED_FIELDS), a write
that would change it (API PATCH and PUT, the portal's edit form, CSV and JSON import, the admin)
is refused with a message naming the field and the operation to use, and leaves the object and
the audit trail exactly as they were. Then the reproductions of the issue, by name.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit import Actor
from governance.choices import CredentialStatus, WorkflowStatus
from governance.models import AuditEvent, Credential, Person, System, Workflow
from governance.models.checks import Finding, FindingState
from governance.services import inventory
from governance.services.common import snapshot
from governance.services.exchange import ImportRejected, import_inventory
from governance.services.sweep import sweep_run

pytestmark = [pytest.mark.django_db]

LONG_AGO = "2020-01-01T00:00:00Z"
KINDS = {"system": System, "credential": Credential, "workflow": Workflow}
API = {"system": "systems", "credential": "credentials", "workflow": "workflows"}
IMPORT = {"system": "systems", "credential": "credentials", "workflow": "workflows"}


def changed_value(name: str, personas):
    """A value for the gated field that differs from the test estate's, as the API takes it."""
    return {
        "lifecycle": "retiring", "status": "suspended", "owner": personas.approver.pk,
        "team": personas.other_team.pk, "privilege_level": "admin", "scopes": ["*"],
        "last_rotated_at": LONG_AGO, "store_version": "99", "issued_at": LONG_AGO,
        "last_drilled_at": timezone.now().isoformat(), "last_drill_result": "passed",
        "hosts": ["bank.example.com"],
    }[name]


def import_value(name: str, personas):
    """The same change as an import cell takes it (people and teams by name)."""
    if name == "owner":
        return personas.approver.username
    if name == "team":
        return personas.other_team.name
    return changed_value(name, personas)


CASES = [(kind, name) for kind, model in KINDS.items() for name in inventory.GATED_FIELDS[model]]


def state_of(obj):
    """Everything a walk-around could change: every owned field, and the number of audit events."""
    fresh = type(obj).objects.get(pk=obj.pk)
    return snapshot(fresh, inventory.OWNED_FIELDS[type(obj)]), AuditEvent.objects.count()


def required_fields(kind: str, obj) -> dict:
    """The descriptive fields a PUT or the portal's edit form must carry."""
    if kind == "system":
        return {"name": obj.name}
    if kind == "credential":
        return {"name": obj.name, "kind": obj.kind, "system": obj.system_id, "identifier": obj.identifier}
    return {"name": obj.name, "kind": obj.kind, "platform": obj.platform}


def import_key(kind: str, obj) -> dict:
    if kind == "credential":
        return {"system": obj.system.name, "identifier": obj.identifier}
    return {"name": obj.name}


@pytest.fixture
def api(personas):
    client = APIClient()
    client.force_login(personas.owner)
    return client


def assert_refused_by_name(fields: dict, name: str):
    assert name in fields, fields
    message = " ".join(fields[name]) if isinstance(fields[name], list) else str(fields[name])
    assert message.startswith(f"{name}:"), message  # names the field and then the operation to use
    return message


# Every gated field x every write path -------------------------------------------------------------

@pytest.mark.parametrize(("kind", "name"), CASES)
def test_api_patch_of_a_gated_field_is_refused(api, personas, estate, kind, name):
    obj = estate[kind]
    before = state_of(obj)
    response = api.patch(f"/api/v1/{API[kind]}/{obj.pk}/", {name: changed_value(name, personas)}, format="json")
    assert response.status_code == 400
    assert_refused_by_name(response.json()["fields"], name)
    assert state_of(obj) == before


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_api_put_of_a_gated_field_is_refused(api, personas, estate, kind, name):
    obj = estate[kind]
    before = state_of(obj)
    body = {**required_fields(kind, obj), name: changed_value(name, personas)}
    response = api.put(f"/api/v1/{API[kind]}/{obj.pk}/", body, format="json")
    assert response.status_code == 400
    assert_refused_by_name(response.json()["fields"], name)
    assert state_of(obj) == before


def test_api_put_with_the_unchanged_current_values_is_fine(api, estate):
    obj = estate["credential"]
    current = api.get(f"/api/v1/credentials/{obj.pk}/").json()
    body = {name: current[name] for name in inventory.OWNED_FIELDS[Credential]} | {"notes": "put back"}
    response = api.put(f"/api/v1/credentials/{obj.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    assert Credential.objects.get(pk=obj.pk).notes == "put back"


def test_the_schema_marks_gated_fields_read_only(api):
    schema = api.get("/api/schema/?format=json").json()["components"]["schemas"]
    for kind, model in KINDS.items():
        properties = schema[model.__name__]["properties"]
        for name in inventory.GATED_FIELDS[model]:
            assert properties[name].get("readOnly") is True, (kind, name)
        for name in inventory.DESCRIPTIVE_FIELDS[model]:
            assert not properties[name].get("readOnly"), (kind, name)


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_portal_edit_form_refuses_a_crafted_gated_field(client, personas, estate, kind, name):
    obj = estate[kind]
    client.force_login(personas.owner)
    form = client.get(reverse(f"{kind}-edit", args=[obj.pk]))
    assert f'name="{name}"' not in form.content.decode()  # the edit form carries no gated field
    before = state_of(obj)
    value = changed_value(name, personas)
    data = {**required_fields(kind, obj), name: ",".join(value) if isinstance(value, list) else value}
    response = client.post(reverse(f"{kind}-edit", args=[obj.pk]), data)
    assert response.status_code == 200  # the form again, with the error; no redirect
    errors = response.context["form"].non_field_errors()
    assert any(error.startswith(f"{name}:") for error in errors), errors
    assert state_of(obj) == before


def _csv(columns: dict) -> bytes:
    return (",".join(columns) + "\n" + ",".join(
        ";".join(v) if isinstance(v, list) else str(v) for v in columns.values()) + "\n").encode()


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize(("kind", "name"), CASES)
def test_import_of_a_gated_field_of_an_existing_object_is_refused(personas, estate, kind, name, fmt):
    obj = estate[kind]
    row = {**import_key(kind, obj), name: import_value(name, personas)}
    content = _csv(row) if fmt == "csv" else json.dumps([row]).encode()
    before = state_of(obj)
    for actor in (Actor.for_user(personas.owner), Actor.for_user(personas.secadmin)):  # not even admins
        with pytest.raises(ImportRejected) as info:
            import_inventory(actor=actor, content=content, filename=f"{IMPORT[kind]}.{fmt}")
        errors = [(e.line, e.field) for e in info.value.errors]
        assert errors == [(2 if fmt == "csv" else 1, name)], info.value.errors
        assert info.value.errors[0].message.startswith(f"{name}:")
        assert state_of(obj) == before


def test_portal_import_refuses_a_gated_change_with_line_and_field(client, personas, estate):
    from django.core.files.uploadedfile import SimpleUploadedFile

    credential = estate["credential"]
    before = state_of(credential)
    client.force_login(personas.owner)
    upload = SimpleUploadedFile("credentials.csv", _csv({**import_key("credential", credential),
                                                         "privilege_level": "admin"}))
    response = client.post(reverse("inventory-import"), {"object_type": "credentials", "file": upload})
    page = response.content.decode()
    assert "privilege_level" in page and "privileged scope change" in page
    assert state_of(credential) == before


def test_import_creation_by_a_security_admin_may_set_gated_fields_a_person_may_not(personas, estate):
    row = {"system": estate["system"].name, "identifier": "imported-key", "name": "imported", "kind": "api_key",
           "status": "suspended", "last_rotated_at": LONG_AGO, "owner": personas.approver.username}
    with pytest.raises(ImportRejected) as info:
        import_inventory(actor=Actor.for_user(personas.owner), content=_csv(row), filename="credentials.csv")
    assert {e.field for e in info.value.errors} == {"status", "last_rotated_at", "owner"}
    assert not Credential.objects.filter(identifier="imported-key").exists()
    import_inventory(actor=Actor.for_user(personas.secadmin), content=_csv(row), filename="credentials.csv")
    created = Credential.objects.get(identifier="imported-key")
    assert (created.status, created.owner) == (CredentialStatus.SUSPENDED, personas.approver)


@pytest.mark.parametrize("kind", list(KINDS))
def test_admin_cannot_add_change_or_delete_the_inventory(client, estate, kind):
    superuser = Person.objects.create_superuser("root-admin", "root@example.com", "pw-for-tests-only")
    client.force_login(superuser)
    obj = estate[kind]
    before = state_of(obj)
    base = f"/admin/governance/{kind}/"
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}add/", {"name": "via-admin"}).status_code == 403
    assert client.post(f"{base}{obj.pk}/change/", {"name": "via-admin", "status": "active",
                                                   "owner": superuser.pk}).status_code == 403
    assert client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert state_of(obj) == before


# The reproductions of issue 14 ------------------------------------------------------------------

@pytest.mark.embedded
def test_owner_patches_drill_fields_and_the_sweep_keeps_the_kill_switch_finding_open(api, estate):
    workflow = estate["workflow"]
    Workflow.objects.filter(pk=workflow.pk).update(shutdown_procedure="Stop the runner.",
                                                   kill_switch_steps="Suspend the deploy key.")
    sweep_run(checks=["kill-switch"], trigger="test")
    finding = Finding.objects.get(failed_check__code="kill-switch", object_id=workflow.pk)
    assert finding.state == FindingState.OPEN
    response = api.patch(f"/api/v1/workflows/{workflow.pk}/", {
        "last_drilled_at": timezone.now().isoformat(), "last_drill_result": "passed"}, format="json")
    assert response.status_code == 400
    assert {"last_drilled_at", "last_drill_result"} <= set(response.json()["fields"])
    assert "drill" in response.json()["fields"]["last_drilled_at"][0]
    sweep_run(checks=["kill-switch"], trigger="test")
    finding.refresh_from_db()
    assert finding.state == FindingState.OPEN  # a drill nobody ran resolves nothing


def test_owner_patches_privilege_admin_scopes_star_or_a_new_owner_and_is_refused(api, personas, estate):
    credential = estate["credential"]
    before = state_of(credential)
    for body, operation in (({"privilege_level": "admin"}, "privileged_scope_change"),
                            ({"scopes": ["*"]}, "privileged_scope_change"),
                            ({"owner": personas.backup_owner.pk}, "ownership_transfer")):
        response = api.patch(f"/api/v1/credentials/{credential.pk}/", body, format="json")
        assert response.status_code == 400
        (name,) = body
        assert operation in assert_refused_by_name(response.json()["fields"], name)
    assert state_of(credential) == before


def test_patch_status_active_on_a_kill_switched_workflow_is_refused(api, estate):
    workflow = estate["workflow"]
    Workflow.objects.filter(pk=workflow.pk).update(status=WorkflowStatus.SUSPENDED)
    before = state_of(workflow)
    response = api.patch(f"/api/v1/workflows/{workflow.pk}/", {"status": "active"}, format="json")
    assert response.status_code == 400
    assert "reactivation" in assert_refused_by_name(response.json()["fields"], "status")
    assert state_of(workflow) == before
    response = api.post(f"/api/v1/workflows/{workflow.pk}/transition/", {"transition": "reactivate"}, format="json")
    assert response.status_code == 400 and "transition" in response.json()["fields"]
    assert state_of(workflow) == before


def test_patch_status_active_on_a_suspended_credential_is_refused(api, estate):
    credential = estate["credential"]
    Credential.objects.filter(pk=credential.pk).update(status=CredentialStatus.SUSPENDED)
    before = state_of(credential)
    response = api.patch(f"/api/v1/credentials/{credential.pk}/", {"status": "active"}, format="json")
    assert response.status_code == 400
    assert_refused_by_name(response.json()["fields"], "status")
    assert state_of(credential) == before


def test_portal_edit_form_cannot_reactivate_escalate_or_transfer(client, personas, estate):
    client.force_login(personas.owner)
    workflow, credential = estate["workflow"], estate["credential"]
    Workflow.objects.filter(pk=workflow.pk).update(status=WorkflowStatus.SUSPENDED)
    before = state_of(workflow), state_of(credential)
    response = client.post(reverse("workflow-edit", args=[workflow.pk]),
                           {**required_fields("workflow", workflow), "status": "active"})
    assert response.status_code == 200 and "reactivation" in response.content.decode()
    response = client.post(reverse("credential-edit", args=[credential.pk]), {
        **required_fields("credential", credential), "privilege_level": "admin", "scopes": "*",
        "owner": personas.backup_owner.pk})
    errors = " ".join(response.context["form"].non_field_errors())
    assert all(f"{name}:" in errors for name in ("privilege_level", "scopes", "owner"))
    assert (state_of(workflow), state_of(credential)) == before


def test_services_refuse_a_gated_change_for_security_admins_too(personas, estate):
    with pytest.raises(Exception, match="ownership transfer"):
        inventory.credential_update(actor=Actor.for_user(personas.secadmin), credential=estate["credential"],
                                    data={"owner": personas.approver})
    expires = timezone.now() + dt.timedelta(days=30)
    updated = inventory.credential_update(actor=Actor.for_user(personas.secadmin), credential=estate["credential"],
                                          data={"expires_at": expires, "owner": personas.owner})
    assert updated.expires_at == expires and updated.owner == personas.owner  # unchanged value: fine
