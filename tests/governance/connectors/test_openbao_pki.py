"""OpenBao PKI against a real dev server: issue, renew before expiry, revoke with CRL proof, probe."""

import datetime as dt

import pytest

from governance.connectors.base import ReferenceBroken
from governance.connectors.openbao_pki import OpenBaoPKI, PKISettings
from tests.governance.connectors.conftest import kv_settings, ref, unique


@pytest.fixture
def pki(openbao):
    return OpenBaoPKI(PKISettings(openbao=kv_settings(openbao, mount="pki"), role="services", domain="test.internal"))


def test_issue_uses_the_policy_ttl_and_renewal_keeps_the_common_name(pki):
    name = unique("svc").replace("_", "-")
    first = pki.issue(ref(name=name, kind="certificate", identifier="", max_age_days=10))
    assert abs(first.expires_at - dt.datetime.now(dt.UTC) - dt.timedelta(days=10)) < dt.timedelta(minutes=2)
    current = ref(name=name, kind="certificate", identifier=first.identifier, store_path=first.store_path,
                  max_age_days=30)
    observed = pki.observe(current)
    assert observed.version == first.version and f"CN={name}.test.internal" in observed.detail
    renewed = pki.rotate(current)
    assert renewed.identifier != first.identifier
    assert renewed.expires_at > first.expires_at
    assert f"CN={name}.test.internal" in renewed.proof[0]
    assert pki.observe(current).state == "active"  # the previous certificate is left to expire


def test_revocation_is_proved_by_the_crl(pki):
    issued = pki.issue(ref(name=unique("revoke"), kind="certificate", max_age_days=5))
    current = ref(kind="certificate", identifier=issued.identifier, store_path=issued.store_path)
    result = pki.revoke(current)
    assert "listed in the CRL" in result.proof[0]
    assert pki.observe(current).state == "revoked"
    assert pki.crl_contains(issued.identifier)


def test_suspend_revokes_and_reactivate_issues_a_new_certificate(pki):
    issued = pki.issue(ref(name=unique("ks"), kind="certificate", max_age_days=5))
    current = ref(name="ks", kind="certificate", identifier=issued.identifier, store_path=issued.store_path,
                  max_age_days=5)
    pki.suspend(current)
    again = pki.reactivate(current)
    assert again.rotation is not None and again.rotation.identifier != issued.identifier


def test_unknown_serial_is_a_broken_reference(pki):
    with pytest.raises(ReferenceBroken):
        pki.observe(ref(kind="certificate", identifier="AB:CD:EF:01", store_path="pki/cert/ab-cd-ef-01"))


def test_probe(pki):
    issued = pki.issue(ref(name=unique("probe"), kind="certificate", max_age_days=5))
    result = pki.probe(ref(kind="certificate", identifier=issued.identifier, store_path=issued.store_path))
    assert result.ok, result.summary
