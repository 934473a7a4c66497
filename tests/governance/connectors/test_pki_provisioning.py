"""Provisioning a certificate through OpenBao PKI (a real dev server): only for a name the system declares,
its key bundle to a free path of the key mount, proven against the CA; a failure mid-way is undone."""

from __future__ import annotations

import pytest

from governance.connectors.base import ConnectorError, PermissionRefused, ProvisionSpec
from governance.connectors.openbao_kv import OpenBaoKV
from governance.connectors.openbao_pki import OpenBaoPKI, PKISettings
from tests.governance.connectors.conftest import kv_put, kv_settings, ref, unique


@pytest.fixture
def pki(openbao):
    return OpenBaoPKI(PKISettings(openbao=kv_settings(openbao, mount="pki"), role="services", domain="test.internal",
                                  key_mount="secret"))


def recording_spec():
    steps: list[str] = []
    return ProvisionSpec(run_key="test-run", record=steps.append), steps


def new_certificate(name: str, hosts=None):
    hosts = (f"{name}.test.internal",) if hosts is None else tuple(hosts)
    return ref(name=name, kind="certificate", identifier="", store_path="pki", max_age_days=5, allowed_names=hosts)


def test_a_certificate_for_a_declared_name_is_issued_stored_and_proven(pki, openbao):
    name = unique("svc").replace("_", "-")
    spec, steps = recording_spec()
    result = pki.provision(new_certificate(name), spec)
    assert list(result.created) == steps and steps[0] == f"pki-issue:{name}.test.internal"
    assert f"pki-cert:{result.identifier}" in steps
    assert any("verifies against the pki CA" in line for line in result.proof)
    bundle = OpenBaoKV(kv_settings(openbao, mount="secret")).read_value(f"certificates/{name}")
    assert bundle["serial"] == result.identifier and "PRIVATE KEY" in bundle["private_key"]
    assert pki.observe(ref(kind="certificate", identifier=result.identifier, store_path=result.store_path)
                       ).state == "active"
    assert not any("PRIVATE KEY" in line for line in result.proof)

    proof = pki.provision_undo(new_certificate(name), spec, result.created)
    assert pki.crl_contains(result.identifier) and any("listed in the CRL" in line for line in proof)
    assert OpenBaoKV(kv_settings(openbao, mount="secret")).read_value(f"certificates/{name}") is None
    pki.provision_undo(new_certificate(name), spec, result.created)  # twice: nothing left, nothing fails


@pytest.mark.parametrize("hosts", [("other.test.internal",), ()])
def test_a_name_the_system_does_not_declare_creates_nothing(pki, hosts):
    name = unique("outside").replace("_", "-")
    spec, steps = recording_spec()
    with pytest.raises(PermissionRefused):
        pki.provision(new_certificate(name, hosts=hosts), spec)
    assert steps == []


def test_a_key_path_already_in_use_is_refused_before_anything_is_issued(pki, openbao):
    name = unique("taken").replace("_", "-")
    kv_put(openbao, f"certificates/{name}", {"serial": "someone else's"})
    spec, steps = recording_spec()
    with pytest.raises(ConnectorError, match="already holds a secret"):
        pki.provision(new_certificate(name), spec)
    assert steps == []  # no certificate was issued, nothing to undo
    kept = OpenBaoKV(kv_settings(openbao, mount="secret")).read_value(f"certificates/{name}")
    assert kept == {"serial": "someone else's"}  # what was there before is left alone


def test_a_key_path_taken_while_issuing_fails_and_the_issued_certificate_is_revoked_on_undo(pki, openbao):
    """Another writer takes the free path between the plan and the write: the check-and-set refuses it."""
    name = unique("raced").replace("_", "-")
    steps: list[str] = []

    def record(step: str) -> None:
        steps.append(step)
        if step.startswith("pki-cert:"):  # issued; the bundle is not written yet
            kv_put(openbao, f"certificates/{name}", {"serial": "someone else's"})

    spec = ProvisionSpec(run_key="test-run", record=record)
    with pytest.raises(ConnectorError):
        pki.provision(new_certificate(name), spec)
    serial = next(step.partition(":")[2] for step in steps if step.startswith("pki-cert:"))
    pki.provision_undo(new_certificate(name), spec, steps)
    assert pki.crl_contains(serial)
    kept = OpenBaoKV(kv_settings(openbao, mount="secret")).read_value(f"certificates/{name}")
    assert kept == {"serial": "someone else's"}  # the other writer's secret is left alone


def test_an_issue_whose_serial_was_never_recorded_is_reported_not_hidden(pki):
    with pytest.raises(ConnectorError, match="revoke it by hand"):
        pki.provision_undo(new_certificate("lost"), recording_spec()[0], ["pki-issue:lost.test.internal"])
