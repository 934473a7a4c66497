"""Drift against real PostgreSQL (private cluster, scram-sha-256), Redis and OpenBao: reconcile, finding, drill."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import secrets

import psycopg
import pytest
from psycopg import sql

from governance.audit import Actor
from governance.checks.base import Context
from governance.checks.drift import NoPrivilegeDrift
from governance.choices import DrillResult
from governance.models import AuditEvent, Binding
from governance.models.checks import Finding
from governance.models.lifecycle import KillSwitchStatus, ObservationState
from governance.services import killswitch
from governance.services.lifecycle import credentials_reconcile
from governance.services.sweep import sweep_run
from tests.factories import WorkflowFactory
from tests.factories_checks import load_catalogue
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    TOKEN_ENV,
    eager_celery,
    fresh_connectors,
    kv,
    kv_put,
    kv_store,
    make_credential,
    openbao,
    pg_admin,
    pg_cluster,
    pg_login,
    pg_system,
    redis_admin,
    redis_system,
    unique,
)

pytestmark = [pytest.mark.django_db]


def superuser(cluster) -> psycopg.Connection:
    """The cluster's superuser over its Unix socket (local connections are trusted): what a DBA does by hand."""
    return psycopg.connect(host=cluster.directory, port=cluster.port, dbname="postgres", user="postgres",
                           autocommit=True)


@pytest.fixture
def etl_role(pg_cluster, openbao):
    """orders_etl_ro: a read-only login role with a table it may read, its password in OpenBao KV."""
    name = unique("orders_etl_ro")
    password = secrets.token_urlsafe(16)
    schema = unique("app")
    with superuser(pg_cluster) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE {}.orders (id int)").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT SELECT ON {}.orders TO {}").format(sql.Identifier(schema), sql.Identifier(name)))
    path = f"pg/{name}"
    version = kv_put(openbao, path, {"username": name, "password": password})
    yield {"name": name, "password": password, "path": path, "schema": schema, "version": str(version)}
    with superuser(pg_cluster) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def etl_credential(personas, kv_store, pg_system, etl_role):
    return make_credential(personas, store=kv_store, path=etl_role["path"], system=pg_system, kind="password",
                           identifier=etl_role["name"], privilege_level="read", store_version=etl_role["version"])


def observation_of(credential):
    credential.refresh_from_db()
    return credential.observation


def test_reproduction_createrole_createdb_and_a_password_changed_outside_steward(
        personas, pg_cluster, etl_role, etl_credential, eager_celery, django_capture_on_commit_callbacks):
    """Issue #16: ALTER ROLE orders_etl_ro CREATEROLE CREATEDB plus a password change made outside Steward:
    reconcile said "ok" and the drill "succeeded". Now reconcile reports drift, a finding opens, the drill fails."""
    load_catalogue()
    workflow = WorkflowFactory(name=unique("orders-etl"), owner=personas.owner, team=personas.team,
                               shutdown_procedure="Stop the DAG.", kill_switch_steps="Suspend its credentials.")
    Binding.objects.create(workflow=workflow, credential=etl_credential, purpose="etl")
    assert credentials_reconcile(credential_ids=[etl_credential.pk]) == {"ok": 1}
    assert "GRANT SELECT ON TABLE" in " ".join(observation_of(etl_credential).privilege_baseline)

    with superuser(pg_cluster) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE CREATEDB").format(sql.Identifier(etl_role["name"])))
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(etl_role["name"]),
                                                                 sql.Literal("changed-by-hand")))
    assert pg_login(pg_cluster, etl_role["name"], "changed-by-hand")

    with django_capture_on_commit_callbacks(execute=True):
        counts = credentials_reconcile(credential_ids=[etl_credential.pk])
    assert counts == {"drifted": 1}
    observation = observation_of(etl_credential)
    assert observation.state == ObservationState.DRIFTED and observation.drift_since is not None
    reasons = " | ".join(observation.drift)
    assert "role attribute CREATEROLE (declared read)" in reasons
    assert "role attribute CREATEDB (declared read)" in reasons
    assert "stored password is refused" in reasons
    assert "ATTRIBUTE CREATEROLE" in observation.privileges
    assert AuditEvent.objects.filter(action="credential.observe", object_id=str(etl_credential.pk),
                                     summary__contains="drift").exists()

    sweep_run(checks=["no-privilege-drift"], trigger="test")
    finding = Finding.objects.get(failed_check__code="no-privilege-drift", object_id=etl_credential.pk)
    assert finding.state == "open"
    assert any("CREATEDB" in line for line in finding.evidence["observed_drift"])

    with django_capture_on_commit_callbacks(execute=True):
        drill = killswitch.drill_start(actor=Actor.for_user(personas.owner), workflow=workflow)
    drill.refresh_from_db()
    workflow.refresh_from_db()
    assert drill.status == KillSwitchStatus.FAILED and workflow.last_drill_result == DrillResult.FAILED
    step = drill.steps.get(credential=etl_credential)
    assert "drift" in step.detail and "CREATEROLE" in step.detail
    assert any(line.startswith("Drift FAILED") for line in step.proof)


def test_an_undrifted_identity_passes_and_the_finding_resolves_when_it_matches_again(
        personas, pg_cluster, etl_role, etl_credential):
    load_catalogue()
    with superuser(pg_cluster) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(etl_role["name"])))
    credentials_reconcile(credential_ids=[etl_credential.pk])
    sweep_run(checks=["no-privilege-drift"], trigger="test")
    assert Finding.objects.get(failed_check__code="no-privilege-drift", object_id=etl_credential.pk).state == "open"
    with superuser(pg_cluster) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOCREATEDB").format(sql.Identifier(etl_role["name"])))
    assert credentials_reconcile(credential_ids=[etl_credential.pk]) == {"ok": 1}
    assert observation_of(etl_credential).drift == []
    sweep_run(checks=["no-privilege-drift"], trigger="test")
    assert Finding.objects.get(failed_check__code="no-privilege-drift", object_id=etl_credential.pk).state == "resolved"


def test_grants_beyond_the_declared_scopes_and_memberships_are_drift(personas, pg_cluster, etl_role,
                                                                     etl_credential):
    schema = etl_role["schema"]
    etl_credential.scopes = [f"USAGE ON SCHEMA {schema}", f"SELECT ON TABLE {schema}.orders"]
    etl_credential.save()
    assert credentials_reconcile(credential_ids=[etl_credential.pk]) == {"ok": 1}
    with superuser(pg_cluster) as conn:
        conn.execute(sql.SQL("GRANT INSERT, DELETE ON {}.orders TO {}").format(
            sql.Identifier(schema), sql.Identifier(etl_role["name"])))
        conn.execute(sql.SQL("GRANT pg_write_all_data TO {}").format(sql.Identifier(etl_role["name"])))
    assert credentials_reconcile(credential_ids=[etl_credential.pk]) == {"drifted": 1}
    reasons = observation_of(etl_credential).drift
    assert f"GRANT INSERT ON TABLE {schema}.orders (not a declared scope)" in reasons
    assert f"GRANT DELETE ON TABLE {schema}.orders (not a declared scope)" in reasons
    assert "member of pg_write_all_data (not a declared scope)" in reasons
    assert not any("SELECT" in reason for reason in reasons)


def test_a_privilege_within_the_level_but_added_outside_steward_is_drift(personas, pg_cluster, etl_role,
                                                                         etl_credential):
    """Free-form scopes: the baseline Steward accepted is the declaration; a new read grant was not made by it."""
    credentials_reconcile(credential_ids=[etl_credential.pk])
    with superuser(pg_cluster) as conn:
        conn.execute(sql.SQL("CREATE TABLE {}.payments (id int)").format(sql.Identifier(etl_role["schema"])))
        conn.execute(sql.SQL("GRANT SELECT ON {}.payments TO {}").format(
            sql.Identifier(etl_role["schema"]), sql.Identifier(etl_role["name"])))
    assert credentials_reconcile(credential_ids=[etl_credential.pk]) == {"drifted": 1}
    assert observation_of(etl_credential).drift == [
        f"GRANT SELECT ON TABLE {etl_role['schema']}.payments: added outside Steward"]


def test_a_rotation_through_steward_is_not_drift(personas, pg_cluster, etl_role, etl_credential, eager_celery,
                                                django_capture_on_commit_callbacks):
    from governance.services.rotation import rotation_request

    credentials_reconcile(credential_ids=[etl_credential.pk])
    with django_capture_on_commit_callbacks(execute=True):
        rotation_request(actor=Actor.for_user(personas.owner), credential=etl_credential)
    etl_credential.refresh_from_db()
    assert etl_credential.store_version != etl_role["version"]
    assert credentials_reconcile(credential_ids=[etl_credential.pk]) == {"ok": 1}


# Redis ---------------------------------------------------------------------------------------------

@pytest.fixture
def cache_user(redis_admin, openbao):
    name = unique("orders_cache")
    password = secrets.token_urlsafe(16)
    redis_admin.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~orders:*", "+get")
    path = f"redis/{name}"
    version = kv_put(openbao, path, {"username": name, "password": password})
    yield {"name": name, "password": password, "path": path, "version": str(version)}
    redis_admin.execute_command("ACL", "DELUSER", name)


@pytest.fixture
def cache_credential(personas, kv_store, redis_system, cache_user):
    return make_credential(personas, store=kv_store, path=cache_user["path"], system=redis_system, kind="password",
                           identifier=cache_user["name"], privilege_level="read", scopes=["~orders:*", "+get"],
                           store_version=cache_user["version"])


def test_redis_rules_compared_with_the_declared_ones_as_redis_normalises_them(redis_admin, cache_user,
                                                                             cache_credential):
    assert credentials_reconcile(credential_ids=[cache_credential.pk]) == {"ok": 1}
    redis_admin.execute_command("ACL", "SETUSER", cache_user["name"], "+@all", "~*")
    assert credentials_reconcile(credential_ids=[cache_credential.pk]) == {"drifted": 1}
    reasons = " | ".join(observation_of(cache_credential).drift)
    assert "+@all" in reasons and "keys" in reasons
    assert not [u for u in redis_admin.acl_users() if (u.decode() if isinstance(u, bytes) else u).startswith(
        "steward-drift-")]


def test_a_redis_password_changed_outside_steward_is_drift(redis_admin, cache_user, cache_credential):
    redis_admin.execute_command("ACL", "SETUSER", cache_user["name"], "resetpass", ">set-by-hand")
    assert credentials_reconcile(credential_ids=[cache_credential.pk]) == {"drifted": 1}
    assert any("password was changed outside Steward" in r for r in observation_of(cache_credential).drift)


def test_redis_without_declared_rules_is_held_to_its_level(redis_admin, cache_user, cache_credential):
    cache_credential.scopes = ["orders cache, read"]  # a label, not ACL rules
    cache_credential.save()
    assert credentials_reconcile(credential_ids=[cache_credential.pk]) == {"ok": 1}
    redis_admin.execute_command("ACL", "SETUSER", cache_user["name"], "+@write")
    assert credentials_reconcile(credential_ids=[cache_credential.pk]) == {"drifted": 1}
    assert "commands +@write (declared read)" in observation_of(cache_credential).drift


# OpenBao -------------------------------------------------------------------------------------------

def test_a_kv_version_steward_did_not_write_is_drift(personas, kv_store, openbao):
    path = f"app/{unique('api-key')}"
    version = kv_put(openbao, path, {"value": "steward-made"})
    credential = make_credential(personas, store=kv_store, path=path, store_version=str(version))
    assert credentials_reconcile(credential_ids=[credential.pk]) == {"ok": 1}
    kv_put(openbao, path, {"value": "pasted-by-hand"})
    assert credentials_reconcile(credential_ids=[credential.pk]) == {"drifted": 1}
    observation = observation_of(credential)
    assert observation.observed_version == str(version + 1)  # the observed facts are still recorded
    assert "Steward wrote or recorded version" in observation.drift[0]


def test_approle_policies_beyond_the_declared_ones_are_drift(personas, kv_store, openbao):
    client = openbao.client()
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
    role = unique("deployer")
    client.write(f"auth/approle/role/{role}", token_policies="orders-read")
    path = f"approle/{unique('secret-id')}"
    version = kv_put(openbao, path, {"role_id": "r", "secret_id": "s"})
    credential = make_credential(personas, store=kv_store, path=path, kind="service_account",
                                 identifier=f"approle/{role}", scopes=["orders-read"], store_version=str(version))
    assert credentials_reconcile(credential_ids=[credential.pk]) == {"ok": 1}
    client.write(f"auth/approle/role/{role}", token_policies="orders-read,root")
    assert credentials_reconcile(credential_ids=[credential.pk]) == {"drifted": 1}
    assert observation_of(credential).drift == ["policy root (declared read)"]
    failures = NoPrivilegeDrift().evaluate(Context.current()).failures
    assert ("governance.credential", credential.pk) in failures
