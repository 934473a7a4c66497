"""Real OpenBao, PostgreSQL and Redis for the connector and lifecycle tests (no mocks).

Session-scoped servers (an OpenBao dev server with PKI enabled, a private PostgreSQL cluster
with scram-sha-256) on free loopback ports, stopped afterwards; Redis is the machine's
127.0.0.1:6379, where each test creates ACL users with unique names and deletes them again.
Lifecycle tests outside this folder import these fixtures by name.
"""

from __future__ import annotations

import os
import secrets
import uuid

import psycopg
import pytest
import redis
from psycopg import sql
from redis.connection import Connection

from governance.connectors import registry
from governance.connectors.base import CredentialRef
from governance.connectors.openbao_kv import OpenBaoKV, OpenBaoSettings
from tests import lifecycle_servers as servers

TOKEN_ENV = "STEWARD_TEST_OPENBAO_TOKEN"
PG_USER_ENV = "STEWARD_TEST_PG_ADMIN_USER"
PG_PASSWORD_ENV = "STEWARD_TEST_PG_ADMIN_PASSWORD"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


# Its own variable: the live stores' token (TOKEN_ENV) must stay as the OpenBao fixture set it.
DEAD_STORE_TOKEN_ENV = "STEWARD_TEST_DEAD_STORE_TOKEN"

@pytest.fixture(scope="session")
def openbao():
    server = servers.shared("openbao", servers.start_openbao)
    os.environ[TOKEN_ENV] = server.token
    yield server
    servers.stop_all()
    os.environ.pop(TOKEN_ENV, None)


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = servers.shared("postgres", servers.start_postgres)
    os.environ[PG_USER_ENV] = cluster.admin_user
    os.environ[PG_PASSWORD_ENV] = cluster.admin_password
    yield cluster
    servers.stop_all()


@pytest.fixture(autouse=True)
def fresh_connectors():
    registry.clear_cache()
    yield
    registry.clear_cache()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def kv_settings(openbao, **extra) -> OpenBaoSettings:
    return OpenBaoSettings(address=openbao.address, token_env_var=TOKEN_ENV, **extra)


@pytest.fixture
def kv(openbao) -> OpenBaoKV:
    return OpenBaoKV(kv_settings(openbao))


def kv_put(openbao, path: str, data: dict) -> int:
    response = openbao.client().secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")
    return int(response["data"]["version"])


def ref(*, name="test-credential", kind="api_key", identifier="id-1", store_path="", **extra) -> CredentialRef:
    return CredentialRef(pk=None, name=name, kind=kind, identifier=identifier, store_path=store_path, **extra)


PG_SETTINGS = lambda cluster: {  # noqa: E731
    "host": cluster.host, "port": cluster.port, "dbname": "postgres", "sslmode": "disable",
    "admin_user_env_var": PG_USER_ENV, "admin_password_env_var": PG_PASSWORD_ENV,
}
REDIS_SETTINGS = {"host": REDIS_HOST, "port": REDIS_PORT}


def pg_admin(cluster) -> psycopg.Connection:
    return psycopg.connect(host=cluster.host, port=cluster.port, dbname="postgres", user=cluster.admin_user,
                           password=cluster.admin_password, autocommit=True, sslmode="disable")


@pytest.fixture
def pg_role(pg_cluster, openbao):
    """A login role with a known password, stored in OpenBao KV; dropped afterwards."""
    name = unique("app")
    password = secrets.token_urlsafe(16)
    with pg_admin(pg_cluster) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    path = f"pg/{name}"
    kv_put(openbao, path, {"username": name, "password": password})
    yield {"name": name, "password": password, "path": path}
    with pg_admin(pg_cluster) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def pg_login(cluster, user: str, password: str) -> bool:
    try:
        with psycopg.connect(host=cluster.host, port=cluster.port, dbname="postgres", user=user, password=password,
                             sslmode="disable", connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture
def redis_admin():
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    yield client
    client.close()


@pytest.fixture
def redis_user(redis_admin, openbao):
    """An ACL user with a known password, stored in OpenBao KV; deleted afterwards."""
    name = unique("steward_test")
    password = secrets.token_urlsafe(16)
    redis_admin.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~steward-test:*", "+get", "+set")
    path = f"redis/{name}"
    kv_put(openbao, path, {"username": name, "password": password})
    yield {"name": name, "password": password, "path": path}
    redis_admin.execute_command("ACL", "DELUSER", name)


def redis_auth(user: str, password: str) -> bool:
    """AUTH and one command on a fresh connection (no client-side retries)."""
    connection = Connection(host=REDIS_HOST, port=REDIS_PORT, username=user, password=password)
    try:
        connection.connect()
        connection.send_command("GET", "steward-test:probe")
        connection.read_response()
        return True
    except redis.AuthenticationError:
        return False
    finally:
        connection.disconnect()


# Database-level fixtures for the lifecycle services (stores, targets, credentials, eager Celery) ---


@pytest.fixture
def eager_celery():
    """Tasks enqueued on commit run in-process (the real task functions).

    Eager errors do not propagate, because Celery then re-raises a task's Retry instead of running
    the retry eagerly; tests assert on the recorded outcome (job, attempts, steps) instead.
    """
    from portal.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def kv_store(db, openbao):
    from tests.factories import SecretStoreFactory

    return SecretStoreFactory(name=unique("openbao-kv"), kind="openbao_kv", address=openbao.address,
                              settings={"mount": "secret"}, credential_env_var=TOKEN_ENV)


@pytest.fixture
def pki_store(db, openbao):
    from tests.factories import SecretStoreFactory

    return SecretStoreFactory(name=unique("openbao-pki"), kind="openbao_pki", address=openbao.address,
                              settings={"mount": "pki", "role": "services", "domain": "test.internal"},
                              credential_env_var=TOKEN_ENV)


@pytest.fixture
def dead_store(db, monkeypatch):
    """An OpenBao store nobody answers at (its token is set, so only the address is wrong)."""
    from tests.factories import SecretStoreFactory
    from tests.lifecycle_servers import free_port

    monkeypatch.setenv(DEAD_STORE_TOKEN_ENV, "token-for-a-store-nobody-answers")

    return SecretStoreFactory(name=unique("dead"), kind="openbao_kv", address=f"http://127.0.0.1:{free_port()}",
                              settings={"mount": "secret", "timeout": 2}, credential_env_var=DEAD_STORE_TOKEN_ENV)


def target_system(personas, kind: str, settings: dict, name: str):
    from governance.models.lifecycle import ConnectorTarget
    from tests.factories import SystemFactory

    system = SystemFactory(name=unique(name), owner=personas.owner, team=personas.team)
    ConnectorTarget.objects.create(system=system, kind=kind, settings=settings)
    return system


@pytest.fixture
def pg_system(personas, pg_cluster):
    return target_system(personas, "postgres_role", PG_SETTINGS(pg_cluster), "payments-db")


@pytest.fixture
def redis_system(personas):
    return target_system(personas, "redis_acl", REDIS_SETTINGS, "cache")


def make_credential(personas, *, store, path, system=None, kind="api_key", identifier=None, **extra):
    from tests.factories import CredentialFactory, SystemFactory

    system = system or SystemFactory(name=unique("system"), owner=personas.owner, team=personas.team)
    return CredentialFactory(name=unique("cred"), kind=kind, system=system, store=store, store_path=path,
                             identifier=identifier or unique("id"), owner=personas.owner, team=personas.team,
                             **{"store_version": "1", **extra})


# The AWS stand-in (moto server) and the CI stand-in, for the cloud and CI connector tests ---------

from tests.aws_stand_in import aws  # noqa: E402, F401 - fixtures shared with the lifecycle tests
from tests.ci_stand_in import ci_server  # noqa: E402, F401
