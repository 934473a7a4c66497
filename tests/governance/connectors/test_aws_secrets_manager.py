"""AWS Secrets Manager against moto in server mode: put, describe, verify; deletion refuses reads."""

import json
import uuid

import pytest

from governance.connectors.aws_secrets_manager import AWSSecretsManager, SecretsManagerSettings
from governance.connectors.base import Misconfigured, ReferenceBroken, Unreachable
from tests.aws_stand_in import aws_settings
from tests.factories import SecretStoreFactory
from tests.governance.connectors.conftest import ref, unique
from tests.lifecycle_servers import free_port


def store(aws, **settings):
    return SecretStoreFactory.build(name=unique("asm"), kind="aws_secrets_manager", address="",
                                    settings=aws_settings(aws, **settings))


@pytest.fixture
def connector(aws):
    return AWSSecretsManager(SecretsManagerSettings.from_store(store(aws)))


@pytest.fixture
def secret(aws):
    name = f"steward/test/{uuid.uuid4().hex[:10]}"
    created = aws.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(
        {"value": "first-value", "username": "svc"}))
    return {"name": name, "version": created["VersionId"]}


def current(aws, name):
    response = aws.client("secretsmanager").get_secret_value(SecretId=name)
    return response["VersionId"], json.loads(response["SecretString"])


def test_rotation_puts_a_new_current_version_and_keeps_the_other_fields(aws, connector, secret):
    result = connector.rotate(ref(store_path=secret["name"], store_version=secret["version"]))
    version, data = current(aws, secret["name"])
    assert result.version == version != secret["version"]
    assert data["username"] == "svc" and data["value"] != "first-value"
    stages = aws.client("secretsmanager").describe_secret(SecretId=secret["name"])["VersionIdsToStages"]
    assert stages[secret["version"]] == ["AWSPREVIOUS"]
    assert "AWSCURRENT" in result.proof[0] and "AWSPREVIOUS" in result.proof[1]
    assert data["value"] not in repr(result)


def test_suspend_refuses_reads_and_reactivation_restores_with_a_new_value(aws, connector, secret):
    credential = ref(store_path=secret["name"])
    connector.suspend(credential)
    with pytest.raises(aws.client("secretsmanager").exceptions.InvalidRequestException):
        aws.client("secretsmanager").get_secret_value(SecretId=secret["name"])
    assert connector.observe(credential).state == "deleted"
    result = connector.reactivate(credential)
    version, data = current(aws, secret["name"])
    assert data["value"] != "first-value" and result.rotation.version == version


def test_revoke_deletes_without_recovery(aws, connector, secret):
    result = connector.revoke(ref(store_path=secret["name"]))
    with pytest.raises(ReferenceBroken):
        connector.observe(ref(store_path=secret["name"]))
    assert "without recovery" in result.proof[0]


def test_observe(connector, secret):
    observed = connector.observe(ref(store_path=secret["name"]))
    assert observed.version == secret["version"] and observed.state == "active"


def test_missing_secret_is_a_broken_reference(connector):
    with pytest.raises(ReferenceBroken):
        connector.rotate(ref(store_path="steward/test/no-such-secret"))


def test_unreachable_endpoint_is_reported(aws, secret):
    dead = AWSSecretsManager(SecretsManagerSettings.from_store(store(
        aws, endpoint_url=f"http://127.0.0.1:{free_port()}", timeout=1)))
    with pytest.raises(Unreachable):
        dead.rotate(ref(store_path=secret["name"]))
    assert current(aws, secret["name"])[0] == secret["version"]
    assert not dead.probe(ref(store_path=secret["name"])).ok


def test_settings_must_name_the_credential_variables(aws):
    with pytest.raises(Misconfigured, match="access_key_id_env_var"):
        SecretsManagerSettings.from_store(SecretStoreFactory.build(name="x", kind="aws_secrets_manager",
                                                                   settings={"region": "us-east-1"}))


def test_probe(connector, secret):
    result = connector.probe(ref(store_path=secret["name"]))
    assert result.ok, result.summary
