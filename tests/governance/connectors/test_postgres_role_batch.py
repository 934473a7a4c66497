"""PostgreSQL rotations in a batch: one admin connection for the batch, every proof kept, a failure alone.

Against the private scram-sha-256 cluster (an old password really fails) and the OpenBao dev server.
"""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from the conftest)

import datetime as dt
import secrets

import psycopg
import pytest
from django.utils import timezone
from psycopg import sql

from governance.connectors import registry
from governance.connectors.base import ReferenceBroken, Unreachable, VerificationFailed
from governance.connectors.openbao_kv import Conflict
from governance.connectors.postgres_role import (
    LIBPQ_TAKES_SCRAM_KEYS,
    PostgresRole,
    PostgresSettings,
    scram_keys,
    scram_verifier_of,
)
from governance.models import AuditEvent
from governance.models.lifecycle import RotationJob, RotationStatus
from governance.tasks.lifecycle import rotation_batch_run
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    PG_SETTINGS,
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
    ref,
    unique,
)


@pytest.fixture
def roles(pg_cluster, openbao):
    """Four login roles with known passwords, each stored in OpenBao KV (version 1); dropped afterwards."""
    made = []
    with pg_admin(pg_cluster) as conn:
        for _ in range(4):
            name, password = unique("batch"), secrets.token_urlsafe(16)
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name),
                                                                             sql.Literal(password)))
            kv_put(openbao, f"pg/{name}", {"username": name, "password": password})
            made.append({"name": name, "password": password, "path": f"pg/{name}"})
    yield made
    with pg_admin(pg_cluster) as conn:
        for role in made:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role["name"])))


@pytest.fixture
def admin_connections(monkeypatch, pg_cluster):
    """Counts the connector's admin connections (the proofs sign in as the roles; the tests' own are not counted)."""
    opened = []
    real = psycopg.connect

    def connect(*args, **kwargs):
        connection = real(*args, **kwargs)
        if kwargs.get("user") == pg_cluster.admin_user and kwargs.get("application_name") == "steward-connector":
            opened.append(connection)
        return connection

    monkeypatch.setattr(psycopg, "connect", connect)
    return opened


@pytest.fixture
def connector(pg_cluster, kv):
    return PostgresRole(PostgresSettings.from_target(PG_SETTINGS(pg_cluster)), kv)


def credential(role):
    return ref(name=role["name"], kind="password", identifier=role["name"], store_path=f"secret/data/{role['path']}")


def assert_rotated(pg_cluster, kv, role, result):
    new_password = kv.read_value(role["path"])["password"]
    assert result.version == "2" and new_password != role["password"]
    assert pg_login(pg_cluster, role["name"], new_password)
    assert not pg_login(pg_cluster, role["name"], role["password"])
    assert any("version 2 is current" in line for line in result.proof)
    assert any("signs in with the new password" in line for line in result.proof)
    assert any("previous password is refused" in line for line in result.proof)
    assert new_password not in repr(result)


def assert_unchanged(pg_cluster, kv, role):
    assert kv.current_version(role["path"]) == 1
    assert kv.read_value(role["path"])["password"] == role["password"]
    assert pg_login(pg_cluster, role["name"], role["password"])


def test_a_session_opens_one_admin_connection_for_its_rotations(pg_cluster, connector, roles, kv,
                                                                admin_connections):
    with connector.batch_session():
        results = [connector.rotate(credential(role)) for role in roles]
        assert len(admin_connections) == 1 and not admin_connections[0].closed
    assert admin_connections[0].closed  # the session's end closes it
    for role, result in zip(roles, results, strict=True):
        assert_rotated(pg_cluster, kv, role, result)


def test_without_a_session_each_rotation_has_its_own_connection(pg_cluster, connector, roles, kv, admin_connections):
    for role in roles[:2]:
        assert_rotated(pg_cluster, kv, role, connector.rotate(credential(role)))
    assert len(admin_connections) == 2 and all(c.closed for c in admin_connections)


def test_a_failure_in_the_middle_leaves_the_other_rotations_proven(pg_cluster, openbao, connector, roles, kv,
                                                                   admin_connections):
    missing = ref(kind="password", identifier="no_such_role", store_path=f"secret/data/{roles[1]['path']}")
    raced = roles[2]
    real_write = connector.kv.write_value

    def write_value(path, data, *, cas):
        if path == raced["path"]:  # someone wrote a version after the read: check-and-set refuses ours
            kv_put(openbao, path, {"username": raced["name"], "password": raced["password"]})
        return real_write(path, data, cas=cas)

    connector.kv.write_value = write_value
    try:
        with connector.batch_session():
            first = connector.rotate(credential(roles[0]))
            with pytest.raises(ReferenceBroken):
                connector.rotate(missing)
            with pytest.raises(Conflict):
                connector.rotate(credential(raced))  # its ALTER ROLE ran in the transaction rolled back
            last = connector.rotate(credential(roles[3]))
    finally:
        del connector.kv.write_value
    assert len(admin_connections) == 1
    assert_rotated(pg_cluster, kv, roles[0], first)
    assert_rotated(pg_cluster, kv, roles[3], last)
    assert_unchanged(pg_cluster, kv, roles[1])  # the failed lookup changed nothing
    assert kv.current_version(raced["path"]) == 2  # the racing write, not ours
    assert pg_login(pg_cluster, raced["name"], raced["password"])  # the role kept the stored password


def test_a_connection_that_broke_is_replaced_for_the_next_rotation(pg_cluster, connector, roles, kv,
                                                                   admin_connections):
    with connector.batch_session():
        first = connector.rotate(credential(roles[0]))
        with pg_admin(pg_cluster) as other:  # the server ends the session's connection between two rotations
            other.execute("SELECT pg_terminate_backend(%s)", [admin_connections[0].info.backend_pid])
        with pytest.raises(Unreachable):  # the rotation that meets the dead connection fails, changing nothing
            connector.rotate(credential(roles[1]))
        last = connector.rotate(credential(roles[2]))
    assert len(admin_connections) == 2 and all(c.closed for c in admin_connections)
    assert_rotated(pg_cluster, kv, roles[0], first)
    assert_unchanged(pg_cluster, kv, roles[1])
    assert_rotated(pg_cluster, kv, roles[2], last)


def test_the_concurrent_proofs_still_refuse_a_rotation_the_old_password_survives(connector, roles, monkeypatch):
    monkeypatch.setattr(connector, "login_works", lambda role, password, **keys: True)
    with pytest.raises(VerificationFailed, match="still signs in with the previous password"):
        connector.rotate(credential(roles[0]))
    monkeypatch.setattr(connector, "login_works", lambda role, password, **keys: False)
    with pytest.raises(VerificationFailed, match="cannot sign in with the new password"):
        connector.rotate(credential(roles[1]))


@pytest.mark.django_db(transaction=False)
def test_the_batch_path_rotates_every_role_over_one_admin_connection(personas, kv_store, pg_system, pg_cluster,
                                                                     roles, kv, admin_connections):
    old = timezone.now() - dt.timedelta(days=400)
    credentials = [make_credential(personas, store=kv_store, path=f"secret/data/{role['path']}", system=pg_system,
                                   kind="password", identifier=role["name"], last_rotated_at=old) for role in roles]
    with pg_admin(pg_cluster) as conn:  # one role vanished meanwhile: its job fails alone
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(roles[1]["name"])))
    jobs = [RotationJob.objects.create(credential=c, due_on=timezone.now().date(), trigger="schedule")
            for c in credentials]
    counts = rotation_batch_run.apply(args=[[j.pk for j in jobs]]).get()
    assert counts == {"skipped": 0, "failed": 1, "succeeded": 3}
    assert len(admin_connections) == 1 and admin_connections[0].closed
    for job in jobs:
        job.refresh_from_db()
    assert [j.status for j in jobs] == \
        [RotationStatus.SUCCEEDED, RotationStatus.FAILED, *[RotationStatus.SUCCEEDED] * 2]
    for role, job in [(roles[0], jobs[0]), (roles[2], jobs[2]), (roles[3], jobs[3])]:
        new_password = kv.read_value(role["path"])["password"]
        assert pg_login(pg_cluster, role["name"], new_password)
        assert not pg_login(pg_cluster, role["name"], role["password"])
        proof = job.attempts.get().proof
        assert any("previous password is refused" in line for line in proof)
        assert not any(new_password in line for line in proof)
    assert jobs[1].attempts.get().error_code == "broken"
    assert kv.current_version(roles[1]["path"]) == 1
    assert AuditEvent.objects.filter(action="credential.rotate").count() == 3
    assert rotation_batch_run.apply(args=[[j.pk for j in jobs]]).get() == {"skipped": 4}  # redelivered: nothing
    assert len(admin_connections) == 1
    registry.clear_cache()


@pytest.mark.django_db(transaction=False)
def test_a_proof_failing_while_the_next_rotation_runs_fails_its_job_alone(personas, kv_store, pg_system, roles, kv,
                                                                          pg_cluster, monkeypatch):
    """The batch begins rotation i+1 before it waits for rotation i's proof: i's failure stays i's."""
    old = timezone.now() - dt.timedelta(days=400)
    credentials = [make_credential(personas, store=kv_store, path=f"secret/data/{role['path']}", system=pg_system,
                                   kind="password", identifier=role["name"], last_rotated_at=old) for role in roles]
    real_login = PostgresRole.login_works
    stubborn = roles[1]["name"]

    def login_works(self, role, password, **keys):  # as if the old password still signed in for one role
        return True if role == stubborn else real_login(self, role, password, **keys)

    monkeypatch.setattr(PostgresRole, "login_works", login_works)
    jobs = [RotationJob.objects.create(credential=c, due_on=timezone.now().date(), trigger="schedule")
            for c in credentials]
    assert rotation_batch_run.apply(args=[[j.pk for j in jobs]]).get() == {"skipped": 0, "failed": 1,
                                                                           "succeeded": 3}
    for job in jobs:
        job.refresh_from_db()
    assert jobs[1].status == RotationStatus.FAILED and jobs[1].attempts.get().error_code == "verification"
    credentials[1].refresh_from_db()
    assert credentials[1].store_version == "1"  # nothing recorded for the unproven rotation
    for index in (0, 2, 3):
        assert jobs[index].status == RotationStatus.SUCCEEDED
        new_password = kv.read_value(roles[index]["path"])["password"]
        assert pg_login(pg_cluster, roles[index]["name"], new_password)
        assert not pg_login(pg_cluster, roles[index]["name"], roles[index]["password"])
    registry.clear_cache()


def test_scram_keys_sign_in_only_for_the_salt_the_server_holds(pg_cluster, connector, roles):
    """The keys handed to libpq prove what a password sign-in proves: a wrong salt or password is refused."""
    role, salt = roles[0]["name"], secrets.token_bytes(16)
    keys = scram_keys("the-new-password", salt)
    with pg_admin(pg_cluster) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                                 sql.Literal(scram_verifier_of(salt, keys))))
    assert pg_login(pg_cluster, role, "the-new-password")  # the verifier is the password's
    assert connector.login_works(role, "the-new-password", keys=keys)
    assert not connector.login_works(role, roles[0]["password"], keys=scram_keys(roles[0]["password"], salt))
    if LIBPQ_TAKES_SCRAM_KEYS:  # keys for another salt are refused even with the right password alongside
        assert not connector.login_works(role, "the-new-password",
                                         keys=scram_keys("the-new-password", secrets.token_bytes(16)))
