"""AWS IAM access keys against moto in server mode, authenticating like AWS: the old key really is refused."""

import pytest

from governance.connectors.aws_common import AWSSettings
from governance.connectors.aws_iam import AWSIAMAccessKey
from governance.connectors.base import ReferenceBroken, Unreachable
from tests.aws_stand_in import aws_settings, iam_user, signs_in
from tests.governance.connectors.conftest import kv_put, ref, unique
from tests.lifecycle_servers import free_port


@pytest.fixture
def connector(aws, kv):
    return AWSIAMAccessKey(AWSSettings.from_settings(aws_settings(aws)), kv)


@pytest.fixture
def iam_key(aws, openbao):
    user, key = iam_user(aws)
    path = f"aws/{unique('key')}"
    kv_put(openbao, path, key)
    return {"user": user, "key": key, "path": path}


def credential(iam_key, **extra):
    return ref(kind="api_key", identifier=iam_key["user"], store_path=f"secret/data/{iam_key['path']}", **extra)


def test_rotation_new_key_works_old_key_refused(aws, connector, iam_key, kv):
    old = iam_key["key"]
    result = connector.rotate(credential(iam_key, store_version="1"))
    new = kv.read_value(iam_key["path"])
    assert result.version == "2"
    assert new["access_key_id"] != old["access_key_id"]
    assert result.fingerprint == new["access_key_id"] and result.identifier == iam_key["user"]
    assert signs_in(aws, new)
    assert not signs_in(aws, old)
    keys = aws.client("iam").list_access_keys(UserName=iam_key["user"])["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [new["access_key_id"]]
    text = " ".join(result.proof)
    assert "sts:GetCallerIdentity signed by key" in text and f"user/{iam_key['user']}" in text
    assert "previous key" in text and "is refused" in text
    assert new["secret_access_key"] not in repr(result) and old["secret_access_key"] not in repr(result)


def test_suspend_deactivates_at_the_issuer_and_reactivation_issues_a_new_key(aws, connector, iam_key, kv):
    old = iam_key["key"]
    suspended = connector.suspend(credential(iam_key))
    assert not signs_in(aws, old)
    status = aws.client("iam").list_access_keys(UserName=iam_key["user"])["AccessKeyMetadata"][0]["Status"]
    assert status == "Inactive"
    assert "Inactive at the issuer" in suspended.proof[0] and "is refused" in suspended.proof[1]
    assert connector.observe(credential(iam_key)).state == "disabled"

    reactivated = connector.reactivate(credential(iam_key))
    new = kv.read_value(iam_key["path"])
    assert new["access_key_id"] != old["access_key_id"]
    assert signs_in(aws, new) and not signs_in(aws, old)
    assert reactivated.rotation is not None and reactivated.rotation.fingerprint == new["access_key_id"]
    listed = [k["AccessKeyId"] for k in aws.client("iam").list_access_keys(UserName=iam_key["user"])
              ["AccessKeyMetadata"]]
    assert listed == [new["access_key_id"]]


def test_revoke_deletes_the_key_and_the_stored_copy(aws, connector, iam_key, kv):
    result = connector.revoke(credential(iam_key))
    assert not signs_in(aws, iam_key["key"])
    assert aws.client("iam").list_access_keys(UserName=iam_key["user"])["AccessKeyMetadata"] == []
    assert kv.read_value(iam_key["path"]) is None
    assert any("deactivated and deleted" in line for line in result.proof)


def test_observe_reads_the_key_and_the_users_policies(connector, iam_key):
    observed = connector.observe(credential(iam_key))
    assert observed.state == "active" and observed.version == "1"
    assert iam_key["key"]["access_key_id"] in observed.detail and "inline:read" in observed.detail


def test_missing_user_is_a_broken_reference(connector, iam_key):
    with pytest.raises(ReferenceBroken):
        connector.rotate(ref(kind="api_key", identifier="no-such-user", store_path=f"secret/data/{iam_key['path']}"))


def test_unreachable_aws_is_reported_and_changes_nothing(aws, kv, iam_key):
    dead = AWSIAMAccessKey(AWSSettings.from_settings(aws_settings(aws, endpoint_url=f"http://127.0.0.1:{free_port()}",
                                                                  timeout=1)), kv)
    with pytest.raises(Unreachable):
        dead.rotate(credential(iam_key))
    with pytest.raises(Unreachable):
        dead.suspend(credential(iam_key))
    assert kv.current_version(iam_key["path"]) == 1
    assert signs_in(aws, iam_key["key"])
    assert not dead.probe(credential(iam_key)).ok


def test_probe(connector, iam_key):
    result = connector.probe(credential(iam_key))
    assert result.ok, result.summary
