"""The demo's OpenBao secrets: written when OpenBao answers, skipped (and said so) when it does not."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import datetime as dt

import pytest
from django.utils import timezone

from governance.audit import Actor
from governance.demo_lifecycle import KV_STORE, PKI_STORE, seed_demo_lifecycle
from governance.models import Credential
from governance.models.lifecycle import CredentialObservation, RotationStatus
from governance.services import rotation
from tests.factories import CredentialFactory, SecretStoreFactory, SystemFactory
from tests.governance.connectors.conftest import eager_celery, fresh_connectors, openbao  # noqa: F401
from tests.lifecycle_servers import free_port

pytestmark = [pytest.mark.django_db]
DAY = dt.timedelta(days=1)


@pytest.fixture
def demo_like(personas, openbao):
    """The demo's two OpenBao stores (as governance.demo_data names them) and a few credentials in them."""
    kv = SecretStoreFactory(name=KV_STORE, kind="openbao_kv", address=openbao.address, settings={"mount": "secret"},
                            credential_env_var="STEWARD_OPENBAO_TOKEN")
    pki = SecretStoreFactory(name=PKI_STORE, kind="openbao_pki", address=openbao.address,
                             settings={"mount": "pki-demo", "role": "internal-services"},
                             credential_env_var="STEWARD_OPENBAO_TOKEN")
    system = SystemFactory(name="payments-api", owner=personas.owner, team=personas.team,
                           hosts=["payments-ingress", "old-ingress"])  # as the demo declares its certificates' names
    now = timezone.now()

    def credential(name, store, **extra):
        return CredentialFactory(name=name, system=system, store=store, owner=personas.owner, team=personas.team,
                                 store_version="7", **extra)

    return {
        "api_key": credential("payments-api-key", kv, store_path="secret/data/payments/payments-api-key"),
        "password": credential("ledger-writer", kv, kind="password", identifier="ledger_writer",
                               store_path="secret/data/payments/ledger-writer"),
        "cert": credential("payments-ingress", pki, kind="certificate", identifier="0A:0B:0C",
                           store_path="pki-demo/cert/0a-0b-0c", expires_at=now + 40 * DAY),
        "expired": credential("old-ingress", pki, kind="certificate", identifier="0D:0E:0F",
                              store_path="pki-demo/cert/0d-0e-0f", expires_at=now - 3 * DAY),
    }


def test_demo_secrets_written_and_the_owner_rotates_one(personas, demo_like, openbao, monkeypatch, eager_celery,
                                                        django_capture_on_commit_callbacks):
    monkeypatch.setenv("STEWARD_OPENBAO_TOKEN", openbao.token)
    result = seed_demo_lifecycle(now=timezone.now())
    assert not result["skipped"], result
    assert (result["secrets_written"], result["certificates_issued"]) == (2, 1)
    assert result["observed"] == {"ok": 3, "broken": 1}  # an expired certificate cannot be issued: broken, honestly
    cert = Credential.objects.get(pk=demo_like["cert"].pk)
    assert cert.identifier != "0A:0B:0C" and abs(cert.expires_at - demo_like["cert"].expires_at) < DAY
    assert Credential.objects.get(pk=demo_like["api_key"].pk).store_version == "1"
    again = seed_demo_lifecycle(now=timezone.now())
    assert (again["secrets_written"], again["certificates_issued"]) == (0, 0)  # idempotent
    with django_capture_on_commit_callbacks(execute=True):
        job = rotation.rotation_request(actor=Actor.for_user(personas.owner), credential=demo_like["api_key"])
    job.refresh_from_db()
    assert job.status == RotationStatus.SUCCEEDED and job.new_version == "2"


def test_without_openbao_it_says_so_and_changes_nothing(demo_like, monkeypatch, openbao):
    monkeypatch.setenv("STEWARD_OPENBAO_TOKEN", openbao.token)
    demo_like["api_key"].store.__class__.objects.filter(name=KV_STORE).update(
        address=f"http://127.0.0.1:{free_port()}")
    result = seed_demo_lifecycle(now=timezone.now())
    assert result["skipped"] and "does not answer" in result["reason"]
    assert set(Credential.objects.values_list("store_version", flat=True)) == {"7"}
    assert not CredentialObservation.objects.exists()


def test_without_the_token_variable_it_says_so(demo_like, monkeypatch):
    monkeypatch.delenv("STEWARD_OPENBAO_TOKEN", raising=False)
    result = seed_demo_lifecycle(now=timezone.now())
    assert result["skipped"] and "STEWARD_OPENBAO_TOKEN" in result["reason"]
