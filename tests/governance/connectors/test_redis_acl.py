"""Redis ACL users on the real 127.0.0.1:6379: AUTH with the new password works, the old one fails."""

import pytest
import redis

from governance.connectors.base import ReferenceBroken
from governance.connectors.redis_acl import RedisACL, RedisSettings, password_hash
from tests.governance.connectors.conftest import REDIS_HOST, REDIS_PORT, REDIS_SETTINGS, redis_auth, ref


@pytest.fixture
def connector(kv):
    return RedisACL(RedisSettings.from_target(REDIS_SETTINGS), kv)


def credential(user):
    return ref(name=user["name"], kind="password", identifier=user["name"], store_path=f"secret/data/{user['path']}")


def test_rotation_new_password_works_old_refused(connector, redis_user, redis_admin, kv):
    result = connector.rotate(credential(redis_user))
    new_password = kv.read_value(redis_user["path"])["password"]
    assert redis_auth(redis_user["name"], new_password)
    assert not redis_auth(redis_user["name"], redis_user["password"])
    assert redis_admin.acl_getuser(redis_user["name"])["passwords"] == [password_hash(new_password)]
    assert "+get" in redis_admin.acl_getuser(redis_user["name"])["commands"]  # permissions untouched
    assert result.version == "2"


def test_suspend_off_closes_connections_and_reactivate(connector, redis_user):
    session = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, username=redis_user["name"],
                          password=redis_user["password"], single_connection_client=True, retry_on_error=[])
    session.get("steward-test:x")
    result = connector.suspend(credential(redis_user))
    assert not redis_auth(redis_user["name"], redis_user["password"])
    assert "1 open connection(s)" in " ".join(result.proof)
    with pytest.raises((redis.ConnectionError, redis.AuthenticationError)):
        session.connection.send_command("GET", "steward-test:x")
        session.connection.read_response()
    connector.reactivate(credential(redis_user))
    assert redis_auth(redis_user["name"], redis_user["password"])


def test_revoke_deletes_the_user(connector, redis_user, redis_admin):
    result = connector.revoke(credential(redis_user))
    assert redis_admin.acl_getuser(redis_user["name"]) is None
    assert any("refused" in line for line in result.proof)
    redis_admin.execute_command("ACL", "SETUSER", redis_user["name"])  # so the fixture's teardown has a user


def test_missing_user_is_a_broken_reference(connector, redis_user):
    with pytest.raises(ReferenceBroken):
        connector.observe(ref(kind="password", identifier="no-such-user-x", store_path=redis_user["path"]))


def test_probe(connector, redis_user):
    result = connector.probe(credential(redis_user))
    assert result.ok, result.summary
