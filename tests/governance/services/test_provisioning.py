"""Provisioning through connectors, end to end: approved request -> identity created, secret stored, proven.

Real OpenBao, the scram-sha-256 PostgreSQL cluster and Redis; the outbox runs the task in-process
(eager Celery). The reproductions of issue #16 are here: #25 (portal) and #29 (API, two approvals).
"""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

from __future__ import annotations

import psycopg
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from psycopg import sql

from governance.audit import Actor
from governance.choices import CredentialStatus
from governance.connectors import registry
from governance.connectors.base import ProvisionSpec
from governance.connectors.redis_acl import RedisACL, RedisSettings
from governance.models import AuditEvent, Credential
from governance.models.approvals import ApprovalAction, ApprovalStatus
from governance.models.notifications import Notification
from governance.models.outbox import OutboxMessage
from governance.models.provisioning import CredentialProvisioning, ProvisioningStatus
from governance.services import approvals, provisioning
from tests.factories import WorkflowFactory
from tests.factories_approvals import make_policy
from tests.factories_integrations import bearer, make_integration
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    PG_SETTINGS,
    REDIS_HOST,
    REDIS_PORT,
    eager_celery,
    fresh_connectors,
    kv,
    kv_put,
    kv_store,
    openbao,
    pg_admin,
    pg_cluster,
    pg_login,
    pg_system,
    redis_admin,
    redis_system,
    target_system,
    unique,
)
from tests.lifecycle_servers import free_port

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def app_schema(pg_cluster):
    with psycopg.connect(host=pg_cluster.directory, port=pg_cluster.port, dbname="postgres", user="postgres",
                         autocommit=True) as superuser:
        superuser.execute(f"CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION {pg_cluster.admin_user}")
    with pg_admin(pg_cluster) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS app.orders (id int)")
        conn.execute("CREATE TABLE IF NOT EXISTS app.customers (id int)")


@pytest.fixture
def workflow(personas, pg_system, redis_system):
    wf = WorkflowFactory(name=unique("orders-etl"), owner=personas.owner, team=personas.team)
    wf.systems.add(pg_system, redis_system)
    return wf


@pytest.fixture
def one_approval(personas):
    return make_policy(name="Standard", groups=[personas.other_team.group])


def payload(system, store, *, identifier, scopes, kind="password", path=None):
    return {"name": identifier.replace("_", "-"), "kind": kind, "system": system.pk, "identifier": identifier,
            "store": store.pk, "store_path": path or f"secret/data/prov/{identifier}", "scopes": scopes,
            "privilege_level": "read", "purpose": "read the orders"}


def role_exists(cluster, name: str) -> bool:
    with pg_admin(cluster) as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone() is not None


def drop_role(cluster, name: str) -> None:
    with pg_admin(cluster) as conn:
        if role_exists(cluster, name):
            conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA app FROM {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("REVOKE ALL ON SCHEMA app FROM {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def role_name(pg_cluster):
    name = unique("etl_ro")
    yield name
    drop_role(pg_cluster, name)


@pytest.fixture
def acl_user(redis_admin):
    name = unique("steward_prov")
    yield name
    redis_admin.execute_command("ACL", "DELUSER", name)


def approve_all(request, *approvers, capture):
    for approver in approvers:
        with capture(execute=True):
            approvals.approval_request_approve(actor=Actor.for_user(approver), request_id=request.pk, comment="ok")
    request.refresh_from_db()
    return request


def file_and_approve(personas, workflow, data, capture):
    request = approvals.approval_request_file(actor=Actor.for_user(personas.owner),
                                              action=ApprovalAction.PROVISION_CREDENTIAL, target=workflow,
                                              payload=data, justification="The ETL needs its own role")
    return approve_all(request, personas.approver, capture=capture)


def redis_signs_in(user: str, password: str) -> bool:
    return RedisACL(RedisSettings(host=REDIS_HOST, port=REDIS_PORT), kv=None).auth_works(user, password)


def select_works(cluster, role: str, password: str, table: str) -> bool:
    with psycopg.connect(host=cluster.host, port=cluster.port, dbname="postgres", user=role, password=password,
                         sslmode="disable", autocommit=True) as conn:
        try:
            conn.execute(f"SELECT * FROM {table}")
            return True
        except psycopg.errors.InsufficientPrivilege:
            return False


# The path that works


def test_approved_request_creates_a_postgres_role_with_its_grants_before_it_is_active(
        personas, workflow, pg_system, kv_store, kv, pg_cluster, role_name, one_approval, eager_celery,
        django_capture_on_commit_callbacks):
    data = payload(pg_system, kv_store, identifier=role_name,
                   scopes=["USAGE ON SCHEMA app", "SELECT ON TABLE app.orders"])
    request = file_and_approve(personas, workflow, data, django_capture_on_commit_callbacks)
    assert request.status == ApprovalStatus.EXECUTED, request.failure_reason
    credential = Credential.objects.get(identifier=role_name)
    run = CredentialProvisioning.objects.get(credential=credential)
    assert run.status == ProvisioningStatus.SUCCEEDED, run.reason
    assert credential.status == CredentialStatus.ACTIVE and credential.store_version == "1"
    assert credential.issued_at and credential.last_rotated_at
    password = kv.read_value(f"prov/{role_name}")["password"]
    assert pg_login(pg_cluster, role_name, password)
    assert select_works(pg_cluster, role_name, password, "app.orders")
    assert not select_works(pg_cluster, role_name, password, "app.customers")  # not declared: refused
    assert run.steps == [f"postgres_role:{role_name}", f"kv-new:prov/{role_name}@1"] and run.attempts == 1
    actions = list(AuditEvent.objects.filter(object_type="governance.credential", object_id=str(credential.pk))
                   .order_by("pk").values_list("action", flat=True))
    assert actions[-2:] == ["credential.provision_start", "credential.provision"]
    assert password not in str(list(AuditEvent.objects.values_list("summary", "changes")))


def test_a_redelivered_job_does_the_work_once(personas, workflow, redis_system, kv_store, kv, acl_user, one_approval,
                                              eager_celery, django_capture_on_commit_callbacks):
    data = payload(redis_system, kv_store, identifier=acl_user, scopes=["~orders:*", "+get"])
    file_and_approve(personas, workflow, data, django_capture_on_commit_callbacks)
    run = CredentialProvisioning.objects.get(credential__identifier=acl_user)
    assert run.status == ProvisioningStatus.SUCCEEDED, run.reason
    password = kv.read_value(f"prov/{acl_user}")["password"]
    assert provisioning.provisioning_execute(provisioning_id=run.pk) == "skipped"
    message = OutboxMessage.objects.get(task_name="governance.lifecycle.provisioning_run", args=[run.pk])
    from governance.tasks.lifecycle import provisioning_run_task

    assert provisioning_run_task.apply(args=[run.pk], task_id=str(message.message_id)).get() == "skipped"
    assert kv.current_version(f"prov/{acl_user}") == 1 and kv.read_value(f"prov/{acl_user}")["password"] == password
    assert redis_signs_in(acl_user, password)
    run.refresh_from_db()
    assert run.attempts == 1
    assert AuditEvent.objects.filter(action="credential.provision", object_id=str(run.credential_id)).count() == 1


# Failures leave nothing behind


def test_grant_on_a_missing_table_fails_with_the_reason_and_leaves_nothing(
        client, personas, workflow, pg_system, kv_store, kv, pg_cluster, role_name, one_approval, eager_celery,
        django_capture_on_commit_callbacks):
    data = payload(pg_system, kv_store, identifier=role_name, scopes=["SELECT ON TABLE app.no_such_table"])
    file_and_approve(personas, workflow, data, django_capture_on_commit_callbacks)
    credential = Credential.objects.get(identifier=role_name)
    run = credential.provisioning
    assert credential.status == CredentialStatus.PROVISIONING_FAILED
    assert run.status == ProvisioningStatus.FAILED and "no_such_table" in run.reason and not run.cleanup_incomplete
    assert not role_exists(pg_cluster, role_name)
    with pytest.raises(Exception):  # noqa: B017 - the path answers 404 (ReferenceBroken)
        kv.metadata(f"prov/{role_name}")
    assert run.steps == [] and any("does not exist" in line for line in run.undo_proof)
    assert AuditEvent.objects.filter(action="credential.provision_fail", object_id=str(credential.pk)).exists()
    assert any("Provisioning of" in m.subject and "failed" in m.subject for m in mail.outbox)
    assert Notification.objects.filter(kind="provisioning_failed", object_id=credential.pk).count() == 1
    client.force_login(personas.owner)
    page = client.get(reverse("credential-detail", args=[credential.pk])).content.decode()
    assert "Failure reason" in page and "no_such_table" in page and "provisioning_failed" in page


def test_verification_failure_after_creation_undoes_role_and_secret(
        personas, workflow, pg_system, kv_store, kv, pg_cluster, role_name, one_approval, eager_celery,
        django_capture_on_commit_callbacks):
    """CONNECT on a database the admin may not grant: created, then proven wrong, then removed."""
    data = payload(pg_system, kv_store, identifier=role_name, scopes=["CONNECT ON DATABASE template1"])
    file_and_approve(personas, workflow, data, django_capture_on_commit_callbacks)
    run = CredentialProvisioning.objects.get(credential__identifier=role_name)
    assert run.status == ProvisioningStatus.FAILED and "missing: CONNECT ON database template1" in run.reason
    assert not role_exists(pg_cluster, role_name)
    assert any("dropped" in line for line in run.undo_proof)
    assert any("deleted with its metadata" in line for line in run.undo_proof)


def test_a_refused_kv_write_fails_and_the_acl_user_is_removed(
        personas, workflow, redis_system, kv_store, openbao, acl_user, redis_admin, one_approval, eager_celery,
        django_capture_on_commit_callbacks):
    path = f"prov/{acl_user}"
    kv_put(openbao, path, {"value": "not Steward's"})  # the path is taken: nothing may be created
    data = payload(redis_system, kv_store, identifier=acl_user, scopes=["+get"], path=path)
    file_and_approve(personas, workflow, data, django_capture_on_commit_callbacks)
    run = CredentialProvisioning.objects.get(credential__identifier=acl_user)
    assert run.status == ProvisioningStatus.FAILED and "already holds a secret" in run.reason
    assert redis_admin.acl_getuser(acl_user) is None
    assert openbao.client().secrets.kv.v2.read_secret_version(path=path, mount_point="secret")["data"]["data"] == {
        "value": "not Steward's"}


def test_an_unreachable_system_is_retried_then_fails_and_creates_nothing(personas, kv_store, kv, pg_cluster):
    nobody = {**PG_SETTINGS(pg_cluster), "port": free_port(), "connect_timeout": 1}
    system = target_system(personas, "postgres_role", nobody, "dead-db")
    credential = Credential.objects.create(name=unique("c"), kind="password", system=system, identifier=unique("r"),
                                           store=kv_store, store_path=f"prov/{unique('p')}", owner=personas.owner,
                                           team=personas.team, status=CredentialStatus.PROVISIONING)
    run = provisioning.provisioning_start(actor=Actor.system(task_id="test"), credential=credential)
    assert provisioning.provisioning_execute(provisioning_id=run.pk, final_attempt=False) == "retry"
    run.refresh_from_db()
    assert run.status == ProvisioningStatus.PENDING and "did not answer" in run.reason and run.steps == []
    assert provisioning.provisioning_execute(provisioning_id=run.pk, final_attempt=True) == "failed"
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.PROVISIONING_FAILED


# A worker lost mid-way


def test_a_run_whose_worker_died_mid_way_is_undone_and_provisioned_afresh(
        personas, pg_system, kv_store, kv, pg_cluster, role_name, settings):
    credential = Credential.objects.create(name=unique("c"), kind="password", system=pg_system, identifier=role_name,
                                           store=kv_store, store_path=f"prov/{role_name}", owner=personas.owner,
                                           team=personas.team, scopes=["SELECT ON TABLE app.orders"],
                                           status=CredentialStatus.PROVISIONING)
    run = provisioning.provisioning_start(actor=Actor.system(task_id="test"), credential=credential)
    # The lost worker: it claimed the run, created the role and wrote the secret, then died unrecorded.
    connector, ref = registry.connector_for(credential)
    steps: list[str] = []
    connector.provision(ref, ProvisionSpec(scopes=tuple(credential.scopes), run_key=f"provisioning-{run.pk}",
                                           record=steps.append))
    lost_password = kv.read_value(f"prov/{role_name}")["password"]
    from django.utils import timezone

    CredentialProvisioning.objects.filter(pk=run.pk).update(
        status=ProvisioningStatus.RUNNING, steps=steps, lease_token="dead-worker", attempts=1,
        lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert provisioning.provisionings_recover([run.pk]) == {"succeeded": 1}
    run.refresh_from_db()
    credential.refresh_from_db()
    assert run.status == ProvisioningStatus.SUCCEEDED and run.attempts == 2 and run.lease_takeovers == 1
    assert any(line.startswith("Earlier attempt undone") for line in run.undo_proof)
    new_password = kv.read_value(f"prov/{role_name}")["password"]
    assert credential.status == CredentialStatus.ACTIVE and new_password != lost_password
    assert pg_login(pg_cluster, role_name, new_password) and not pg_login(pg_cluster, role_name, lost_password)


# Declared scopes are checked when the request is filed


def test_scopes_that_do_not_parse_for_the_connector_are_refused_when_filing(personas, workflow, pg_system,
                                                                            redis_system, kv_store, one_approval):
    with pytest.raises(ValidationError) as refused:
        approvals.approval_request_file(
            actor=Actor.for_user(personas.owner), action=ApprovalAction.PROVISION_CREDENTIAL, target=workflow,
            payload=payload(pg_system, kv_store, identifier=unique("r"), scopes=["orders:read", "SELECT"]),
            justification="x")
    assert "scopes" in refused.value.message_dict and len(refused.value.message_dict["scopes"]) == 2
    with pytest.raises(ValidationError, match="password"):
        provisioning.provision_scopes_validate(system=redis_system, store=kv_store, kind="password",
                                               scopes=[">secret"])
    assert provisioning.provision_scopes_validate(system=redis_system, store=kv_store, kind="password",
                                                  scopes=["~a:*", " "]) == ["~a:*"]


def test_portal_form_shows_the_scope_error_on_the_field(client, personas, workflow, pg_system, kv_store, one_approval):
    client.force_login(personas.owner)
    url = reverse("approval-new", args=[ApprovalAction.PROVISION_CREDENTIAL]) + f"?workflow={workflow.pk}"
    response = client.post(url, {**payload(pg_system, kv_store, identifier="r1", scopes="SELECT ON app.orders"),
                                 "justification": "x"})
    assert response.status_code == 200
    assert "is not a PostgreSQL grant" in " ".join(response.context["change_form"].errors["scopes"])
    assert not Credential.objects.filter(identifier="r1").exists()


# The reproductions of issue #16


def test_issue_16_reproduction_25_portal_provisioning_creates_a_real_role(
        client, personas, workflow, pg_system, kv_store, kv, pg_cluster, role_name, one_approval, eager_celery,
        django_capture_on_commit_callbacks):
    """#25: approved in the portal, the credential was active with no OpenBao secret (404) and no role."""
    client.force_login(personas.owner)
    url = reverse("approval-new", args=[ApprovalAction.PROVISION_CREDENTIAL]) + f"?workflow={workflow.pk}"
    filed = client.post(url, {**payload(pg_system, kv_store, identifier=role_name,
                                        scopes="USAGE ON SCHEMA app, SELECT ON TABLE app.orders"),
                              "justification": "The nightly ETL needs a read-only role"})
    assert filed.status_code == 302, filed.context["change_form"].errors
    request = approvals.ApprovalRequest.objects.get(action=ApprovalAction.PROVISION_CREDENTIAL,
                                                    payload__identifier=role_name)
    client.force_login(personas.approver)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("approval-approve", args=[request.pk]), {"comment": "fine"})
    credential = Credential.objects.get(identifier=role_name)
    assert credential.status == CredentialStatus.ACTIVE, credential.provisioning.reason
    password = kv.read_value(f"prov/{role_name}")["password"]  # the path answers now
    assert select_works(pg_cluster, role_name, password, "app.orders")
    assert not select_works(pg_cluster, role_name, password, "app.customers")
    client.force_login(personas.owner)
    page = client.get(reverse("credential-detail", args=[credential.pk])).content.decode()
    assert "Provisioned, with proof" in page and "holds exactly the declared privileges" in page


def test_issue_16_reproduction_29_api_two_approvals_creates_a_real_identity(
        api_client, personas, workflow, redis_system, kv_store, kv, acl_user, eager_celery, backup_approver,
        django_capture_on_commit_callbacks):
    """#29: over the API with two approvals, the credential was active and nothing existed in Redis or OpenBao."""
    make_policy(name="Two people", groups=[personas.other_team.group], required=2)
    _, filer = make_integration(owner=personas.owner, scopes=["read", "file_requests"], name="ticketing")
    filed = api_client.post("/api/v1/approval-requests/", {
        "action": "provision_credential", "target_type": "governance.workflow", "target_id": workflow.pk,
        "payload": payload(redis_system, kv_store, identifier=acl_user, scopes=["~orders:*", "+get"]),
        "justification": "The order cache reader"}, format="json", **bearer(filer))
    assert filed.status_code == 201, filed.json()
    request_id = filed.json()["id"]
    for person in (personas.approver, backup_approver):
        _, token = make_integration(owner=person, scopes=["read", "decide_requests"], name=unique("chatops"))
        with django_capture_on_commit_callbacks(execute=True):
            decided = api_client.post(f"/api/v1/approval-requests/{request_id}/approve/", {"comment": "ok"},
                                      format="json", **bearer(token))
        assert decided.status_code == 200, decided.json()
    assert decided.json()["status"] == "executed"
    credential = Credential.objects.get(identifier=acl_user)
    password = kv.read_value(f"prov/{acl_user}")["password"]
    assert credential.status == CredentialStatus.ACTIVE and redis_signs_in(acl_user, password)
    status = api_client.get(f"/api/v1/credentials/{credential.pk}/provisioning/", **bearer(filer))
    assert status.status_code == 200, status.json()
    body = status.json()
    assert body["status"] == "succeeded" and body["credential_status"] == "active" and body["attempts"] == 1
    assert body["steps"] == [f"redis_acl:{acl_user}", f"kv-new:prov/{acl_user}@1"]
    assert any("AUTH as" in line for line in body["proof"]) and password not in str(body)


def test_provisioning_status_of_a_registered_credential_or_an_unseen_one_is_404(api_client, personas, estate):
    _, reader = make_integration(owner=personas.owner, scopes=["read"], name="reader")
    assert api_client.get(f"/api/v1/credentials/{estate['credential'].pk}/provisioning/",
                          **bearer(reader)).status_code == 404
    assert api_client.get(f"/api/v1/credentials/{estate['other_credential'].pk}/provisioning/",
                          **bearer(reader)).status_code == 404


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def backup_approver(personas):
    from tests.factories import PersonFactory

    return PersonFactory(username="paula.platform", teams=[personas.other_team])
