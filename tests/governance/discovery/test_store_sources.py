"""The OpenBao, PostgreSQL and Redis sources against real servers: what they read, and that no value is read."""

import pytest
from psycopg import sql

from governance.discovery.sources.base import SourceError, SourceMisconfigured
from governance.discovery.sources.openbao import OpenBaoSource, OpenBaoSourceSettings
from governance.discovery.sources.postgres import PostgresSource, PostgresSourceSettings
from governance.discovery.sources.redis_acl import RedisSource, RedisSourceSettings, parse_acl_rule
from governance.models.discovery import DiscoveredKind, DiscoverySource
from tests.governance.connectors.conftest import PG_PASSWORD_ENV, PG_USER_ENV, TOKEN_ENV, pg_admin, unique
from tests.lifecycle_servers import free_port


def openbao_source(openbao, **settings) -> OpenBaoSource:
    model = DiscoverySource(name="bao", kind="openbao", settings={"address": openbao.address, **settings},
                            credential_env_var=TOKEN_ENV)
    return OpenBaoSource(OpenBaoSourceSettings.from_source(model))


def test_openbao_kv_metadata_pki_roles_and_accessors_without_values(openbao):
    client = openbao.client()
    mount = unique("kvd").replace("_", "-")
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    value = "kv-value-" + unique("never")
    client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": value}, mount_point=mount)
    client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": value + "2"}, mount_point=mount)
    client.secrets.kv.v2.update_metadata(path="app/db", mount_point=mount, custom_metadata={"owner": "payments"})
    client.secrets.kv.v2.create_or_update_secret(path="app/api/key", secret={"k": value}, mount_point=mount)
    issued = client.secrets.pki.generate_certificate("services", common_name="svc.test.internal", mount_point="pki")
    serial = issued["data"]["serial_number"]
    approle = unique("approle").replace("_", "-")
    client.sys.enable_auth_method("approle", path=approle)
    client.auth.approle.create_or_update_approle("deployer", token_policies=["root"], mount_point=approle)
    client.auth.approle.create_or_update_approle("reader", token_policies=["default"], mount_point=approle)
    token = client.auth.token.create(policies=["default"], ttl="1h", display_name="ci-bot")["auth"]

    items = list(openbao_source(openbao, kv_mounts=[mount], pki_mounts=["pki"], approle_mounts=[approle]).observe())
    by_key = {(i.kind, i.natural_key): i for i in items}
    db = by_key[(DiscoveredKind.KV_SECRET, f"{mount}/app/db")]
    assert db.facts["current_version"] == "2" and db.facts["versions"] == 2
    assert db.facts["custom_metadata"] == {"owner": "payments"}
    assert (DiscoveredKind.KV_SECRET, f"{mount}/app/api/key") in by_key
    cert = by_key[(DiscoveredKind.CERTIFICATE, f"pki:{serial}")]
    assert cert.facts["subject"] == "CN=svc.test.internal" and cert.facts["not_after"]
    assert by_key[(DiscoveredKind.AUTH_ROLE, f"{approle}:deployer")].privileged
    assert not by_key[(DiscoveredKind.AUTH_ROLE, f"{approle}:reader")].privileged
    accessor = by_key[(DiscoveredKind.TOKEN, f"accessor:{token['accessor']}")]
    assert accessor.facts["display_name"] == "token-ci-bot" and accessor.facts["policies"] == ["default"]
    everything = repr(items)
    assert value not in everything and token["client_token"] not in everything and openbao.token not in everything


def test_openbao_unreachable_and_missing_token_are_errors(openbao, monkeypatch):
    model = DiscoverySource(name="dead", kind="openbao", settings={"address": f"http://127.0.0.1:{free_port()}",
                                                                    "timeout": 2}, credential_env_var=TOKEN_ENV)
    with pytest.raises(SourceError, match="did not answer"):
        list(OpenBaoSource(OpenBaoSourceSettings.from_source(model)).observe())
    monkeypatch.delenv("STEWARD_TEST_NO_SUCH_TOKEN", raising=False)
    model.credential_env_var = "STEWARD_TEST_NO_SUCH_TOKEN"
    with pytest.raises(SourceMisconfigured, match="STEWARD_TEST_NO_SUCH_TOKEN"):
        OpenBaoSource(OpenBaoSourceSettings.from_source(model))


def test_openbao_permission_denied_is_an_error_not_an_empty_result(openbao, monkeypatch):
    client = openbao.client()
    limited = client.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("STEWARD_TEST_LIMITED_DISCOVERY", limited)
    model = DiscoverySource(name="limited", kind="openbao", settings={"address": openbao.address},
                            credential_env_var="STEWARD_TEST_LIMITED_DISCOVERY")
    with pytest.raises(SourceError, match="permission denied"):
        list(OpenBaoSource(OpenBaoSourceSettings.from_source(model)).observe())


def test_postgres_login_roles_with_privilege_and_membership(pg_cluster):
    plain, admin = unique("app"), unique("ops")
    with pg_admin(pg_cluster) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'x-pw-123' VALID UNTIL '2031-01-01'").format(
            sql.Identifier(plain)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(admin)))
        conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(plain)))
    try:
        model = DiscoverySource(name="pg", kind="postgres", credential_env_var=PG_PASSWORD_ENV, settings={
            "host": pg_cluster.host, "port": pg_cluster.port, "sslmode": "disable", "user_env_var": PG_USER_ENV})
        items = {i.natural_key: i for i in PostgresSource(PostgresSourceSettings.from_source(model)).observe()}
        assert items[plain].facts["valid_until"].startswith("2031-01-01")
        assert items[plain].facts["member_of"] == ["pg_read_all_data"] and not items[plain].privileged
        assert items[admin].privileged and items[admin].facts["createrole"]
        assert "x-pw-123" not in repr(items)
    finally:
        with pg_admin(pg_cluster) as conn:
            for role in (plain, admin):
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_postgres_wrong_password_is_an_error_without_the_password(pg_cluster, monkeypatch):
    monkeypatch.setenv("STEWARD_TEST_WRONG_PG", "wrong-pw-987")
    model = DiscoverySource(name="pg", kind="postgres", credential_env_var="STEWARD_TEST_WRONG_PG", settings={
        "host": pg_cluster.host, "port": pg_cluster.port, "sslmode": "disable", "user_env_var": PG_USER_ENV})
    with pytest.raises(SourceError) as error:
        list(PostgresSource(PostgresSourceSettings.from_source(model)).observe())
    assert "wrong-pw-987" not in error.value.reason


def test_redis_acl_users_privileged_by_all_commands_or_all_keys(redis_admin):
    full, narrow = unique("steward_disc_full"), unique("steward_disc_narrow")
    redis_admin.execute_command("ACL", "SETUSER", full, "on", ">pw-full-123", "~*", "+@all")
    redis_admin.execute_command("ACL", "SETUSER", narrow, "on", ">pw-narrow-123", "~cache:*", "+get")
    try:
        model = DiscoverySource(name="redis", kind="redis", settings={"host": "127.0.0.1", "port": 6379})
        items = {i.natural_key: i for i in RedisSource(RedisSourceSettings.from_source(model)).observe()}
        assert items[full].privileged and not items[narrow].privileged
        assert items[narrow].facts["keys"] == ["~cache:*"]
        assert "pw-full" not in repr(items) and "#" not in " ".join(items[full].facts["commands"])
    finally:
        redis_admin.execute_command("ACL", "DELUSER", full, narrow)


def test_acl_line_parser_drops_password_hashes():
    item = parse_acl_rule("user svc on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ~* &* +@all")
    assert item.privileged and item.facts["commands"] == ["+@all"]
    assert "5e884898" not in repr(item)

