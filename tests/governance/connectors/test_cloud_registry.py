"""Which connector acts on cloud and CI credentials (the registry's rule, docs/connectors.md)."""

import pytest

from governance.connectors import registry
from governance.connectors.aws_iam import AWSIAMAccessKey
from governance.connectors.aws_secrets_manager import AWSSecretsManager
from governance.connectors.base import Unsupported
from governance.connectors.github_actions import GitHubActions
from governance.connectors.gitlab_ci import GitLabCI
from tests.factories import SecretStoreFactory
from tests.governance.connectors.conftest import make_credential, target_system, unique

AWS = {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:1", "access_key_id_env_var": "AWS_KEY_VAR",
       "secret_access_key_env_var": "AWS_SECRET_VAR"}


@pytest.mark.django_db
def test_an_access_key_on_an_aws_iam_system_is_rotated_at_iam(personas, kv_store):
    system = target_system(personas, "aws_iam", AWS, "aws-account")
    key = make_credential(personas, store=kv_store, path="aws/ci-deployer", system=system, kind="api_key",
                          identifier="ci-deployer")
    connector, ref = registry.connector_for(key)
    assert isinstance(connector, AWSIAMAccessKey) and ref.identifier == "ci-deployer"
    assert registry.connector_kind(key) == "aws_iam"
    # A certificate on the same system is not an IAM key: plain KV.
    other = make_credential(personas, store=kv_store, path="aws/other", system=system, kind="ssh_key")
    assert registry.connector_kind(other) == "openbao_kv"


@pytest.mark.django_db
@pytest.mark.parametrize("kind,connector_class,store_settings", [
    ("aws_secrets_manager", AWSSecretsManager, AWS),
    ("github_actions", GitHubActions, {}),
    ("gitlab_ci", GitLabCI, {}),
])
def test_stores_with_their_own_connector(personas, kind, connector_class, store_settings):
    store = SecretStoreFactory(name=unique(kind), kind=kind, address="http://127.0.0.1:1", settings=store_settings,
                               credential_env_var="" if kind == "aws_secrets_manager" else "CI_TOKEN_VAR")
    credential = make_credential(personas, store=store, path="acme/app/API_TOKEN")
    connector, _ = registry.connector_for(credential)
    assert isinstance(connector, connector_class)
    assert registry.connector_kind(credential) == kind


@pytest.mark.django_db
def test_a_plain_cicd_variable_stays_unmanaged(personas):
    store = SecretStoreFactory(name=unique("cicd"), kind="cicd_variable")
    credential = make_credential(personas, store=store, path="somewhere")
    with pytest.raises(Unsupported, match="not a managed store"):
        registry.connector_for(credential)
