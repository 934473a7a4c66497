"""PostgreSQL login roles on a private scram-sha-256 cluster: the old password really fails."""

import psycopg
import pytest

from governance.connectors.base import ReferenceBroken, Unreachable
from governance.connectors.postgres_role import PostgresRole, PostgresSettings, scram_verifier
from tests.governance.connectors.conftest import PG_SETTINGS, pg_admin, pg_login, ref
from tests.lifecycle_servers import free_port


@pytest.fixture
def connector(pg_cluster, kv):
    return PostgresRole(PostgresSettings.from_target(PG_SETTINGS(pg_cluster)), kv)


def credential(role):
    return ref(name=role["name"], kind="password", identifier=role["name"], store_path=f"secret/data/{role['path']}")


def test_rotation_new_password_works_old_refused(pg_cluster, connector, pg_role, kv):
    result = connector.rotate(credential(pg_role))
    assert result.version == "2"
    new_password = kv.read_value(pg_role["path"])["password"]
    assert new_password != pg_role["password"]
    assert pg_login(pg_cluster, pg_role["name"], new_password)
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    assert any("previous password is refused" in line for line in result.proof)
    assert new_password not in repr(result)


def test_password_is_sent_as_a_scram_verifier(pg_cluster, pg_role):
    with pg_admin(pg_cluster) as conn:
        conn.execute(f'ALTER ROLE "{pg_role["name"]}" PASSWORD \'{scram_verifier("known-password")}\'')
    assert pg_login(pg_cluster, pg_role["name"], "known-password")


def test_suspend_nologin_then_reactivate(pg_cluster, connector, pg_role):
    with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, dbname="postgres", user=pg_role["name"],
                         password=pg_role["password"], sslmode="disable") as session:
        result = connector.suspend(credential(pg_role))
        assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
        assert "1 open session(s)" in " ".join(result.proof)
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    connector.reactivate(credential(pg_role))
    assert pg_login(pg_cluster, pg_role["name"], pg_role["password"])


def test_revoke_drops_the_role_with_proof(pg_cluster, connector, pg_role, kv):
    result = connector.revoke(credential(pg_role))
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    assert any("dropped" in line for line in result.proof)
    assert any("refused" in line for line in result.proof)
    assert kv.read_value(pg_role["path"]) is None


def test_missing_role_is_a_broken_reference(connector, pg_role):
    missing = ref(kind="password", identifier="no_such_role", store_path=f"secret/data/{pg_role['path']}")
    with pytest.raises(ReferenceBroken):
        connector.rotate(missing)


def test_unreachable_server_changes_nothing(pg_cluster, pg_role, kv):
    dead = PostgresRole(PostgresSettings.from_target({**PG_SETTINGS(pg_cluster), "port": free_port(),
                                                      "connect_timeout": 2}), kv)
    with pytest.raises(Unreachable):
        dead.rotate(credential(pg_role))
    assert kv.read_value(pg_role["path"])["password"] == pg_role["password"]
    assert kv.current_version(pg_role["path"]) == 1


def test_probe(connector, pg_role):
    result = connector.probe(credential(pg_role))
    assert result.ok, result.summary
