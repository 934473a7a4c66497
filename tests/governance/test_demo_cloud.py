"""The demo's AWS and CI credentials (make run): seeded against the stand-ins, then rotated through their connectors."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import secrets

import pytest
from django.utils import timezone

from governance import demo_cloud
from governance.audit import Actor
from governance.demo_ci_server import CIStandIn
from governance.models import Credential
from governance.models.deliveries import DeliveryState
from governance.models.lifecycle import RotationStatus
from governance.services import rotation
from tests.aws_stand_in import aws, signs_in  # noqa: F401  (fixture)
from tests.factories import PersonFactory, SecretStoreFactory, TeamFactory
from tests.governance.connectors.conftest import TOKEN_ENV, eager_celery, fresh_connectors, kv, openbao  # noqa: F401

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def ci():
    server = CIStandIn(github_token=secrets.token_urlsafe(16), gitlab_token=secrets.token_urlsafe(16)).start()
    yield server
    server.stop()


@pytest.fixture
def demo_owner(db, openbao, monkeypatch):
    for name in (demo_cloud.AWS_KEY_ENV, demo_cloud.AWS_SECRET_ENV, demo_cloud.GITHUB_TOKEN_ENV,
                 demo_cloud.GITLAB_TOKEN_ENV):
        monkeypatch.setenv(name, "")  # restored after the test: the seed sets them for this run's stand-ins
    team = TeamFactory(name="Platform")
    owner = PersonFactory(username=demo_cloud.OWNER)
    owner.groups.add(team.group)
    SecretStoreFactory(name=demo_cloud.KV_STORE, kind="openbao_kv", address=openbao.address,
                       settings={"mount": "secret"}, credential_env_var=TOKEN_ENV)
    return owner


def test_demo_cloud_credentials_are_seeded_and_rotate_through_their_connectors(
        demo_owner, aws, ci, kv, eager_celery, django_capture_on_commit_callbacks):
    result = demo_cloud.seed_demo_cloud(aws=aws, ci=ci, now=timezone.now())
    assert result["skipped"] == [], result
    assert len(result["seeded"]) == 4 and "delivered to 3 of 3" in result["seeded"][0]
    assert result["observed"] == {"ok": 4}
    key = Credential.objects.get(identifier=demo_cloud.IAM_KEY.identifier)
    stored = kv.read_value("aws/ci-deployer")
    assert signs_in(aws, stored) and key.fingerprint == stored["access_key_id"]
    assert ci.secret_value(demo_cloud.REPOSITORY, "AWS_SECRET_ACCESS_KEY", "production") == stored["secret_access_key"]

    again = demo_cloud.seed_demo_cloud(aws=aws, ci=ci, now=timezone.now())  # every start: same inventory
    assert again["skipped"] == [] and Credential.objects.filter(system__name=demo_cloud.AWS_SYSTEM).count() == 4
    stored = kv.read_value("aws/ci-deployer")

    for credential in Credential.objects.filter(system__name=demo_cloud.AWS_SYSTEM):
        with django_capture_on_commit_callbacks(execute=True):
            job = rotation.rotation_request(actor=Actor.for_user(demo_owner), credential=credential)
        job.refresh_from_db()
        assert job.status == RotationStatus.SUCCEEDED, (credential.name, job.last_error)
    new = kv.read_value("aws/ci-deployer")
    assert signs_in(aws, new) and not signs_in(aws, stored)
    assert ci.secret_value(demo_cloud.REPOSITORY, "AWS_ACCESS_KEY_ID") == new["access_key_id"]
    assert ci.variable(demo_cloud.PROJECT, "AWS_SECRET_ACCESS_KEY")["value"] == new["secret_access_key"]
    assert {d.state for d in key.deliveries.all()} == {DeliveryState.DELIVERED}


def test_without_openbao_the_iam_key_is_skipped_with_the_reason(demo_owner, aws, ci, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    result = demo_cloud.seed_demo_cloud(aws=aws, ci=ci, now=timezone.now())
    assert len(result["seeded"]) == 3
    assert len(result["skipped"]) == 1 and demo_cloud.IAM_KEY.name in result["skipped"][0]
