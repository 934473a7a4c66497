"""OpenBao KV v2 against a real dev server: observe, rotate with proof, suspend, revoke, probe, failures."""

import pytest

from governance.connectors.base import Misconfigured, ReferenceBroken, Unreachable
from governance.connectors.openbao_kv import OpenBaoKV, OpenBaoSettings
from tests.governance.connectors.conftest import TOKEN_ENV, kv_put, ref, unique


def test_observe_reads_metadata_without_the_value(openbao, kv):
    path = f"app/{unique('observe')}"
    kv_put(openbao, path, {"value": "first"})
    kv_put(openbao, path, {"value": "second"})
    observation = kv.observe(ref(store_path=f"secret/data/{path}"))
    assert observation.version == "2"
    assert observation.state == "active"
    assert observation.created_at is not None
    assert "second" not in repr(observation)


@pytest.mark.parametrize("form", ["secret/data/{p}", "secret/{p}", "{p}", "/secret/data/{p}"])
def test_path_forms_resolve(openbao, kv, form):
    path = f"app/{unique('form')}"
    kv_put(openbao, path, {"value": "x"})
    assert kv.observe(ref(store_path=form.format(p=path))).version == "1"


def test_missing_path_is_a_broken_reference(kv):
    with pytest.raises(ReferenceBroken):
        kv.observe(ref(store_path="secret/data/app/does-not-exist"))


def test_rotation_writes_a_new_version_and_proves_it(openbao, kv):
    path = f"app/{unique('rotate')}"
    kv_put(openbao, path, {"value": "old-value", "username": "svc"})
    result = kv.rotate(ref(store_path=f"secret/data/{path}"))
    assert result.version == "2"
    stored = openbao.client().secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    assert stored["username"] == "svc"  # other keys kept
    assert stored["value"] not in ("old-value", "")
    assert stored["value"] not in " ".join(result.proof)
    assert any("version 2 is current" in line for line in result.proof)


def test_suspend_then_reactivate_then_revoke(openbao, kv):
    path = f"app/{unique('lifecycle')}"
    kv_put(openbao, path, {"value": "v"})
    credential = ref(store_path=path)
    suspended = kv.suspend(credential)
    assert "a read returns no value" in suspended.proof[0]
    assert kv.read_value(path) is None
    kv.reactivate(credential)
    assert kv.read_value(path) == {"value": "v"}
    revoked = kv.revoke(credential)
    assert "every version destroyed" in revoked.proof[0]
    assert kv.observe(credential).state == "destroyed"


def test_probe_changes_nothing_and_reports_each_check(openbao, kv):
    path = f"app/{unique('probe')}"
    kv_put(openbao, path, {"value": "v"})
    result = kv.probe(ref(store_path=path))
    assert result.ok, result.summary
    assert [c.name for c in result.checks] == ["OpenBao reachable and token valid", "OpenBao permissions",
                                               "Reference resolves"]
    assert kv.current_version(path) == 1


def test_probe_with_a_limited_token_reports_missing_capabilities(openbao):
    client = openbao.client()
    client.sys.create_or_update_policy("read-only-app", 'path "secret/*" { capabilities = ["read", "list"] }')
    token = client.auth.token.create(policies=["read-only-app"], ttl="10m")["auth"]["client_token"]
    import os

    os.environ["STEWARD_TEST_LIMITED_TOKEN"] = token
    try:
        path = f"app/{unique('limited')}"
        kv_put(openbao, path, {"value": "v"})
        limited = OpenBaoKV(OpenBaoSettings(address=openbao.address, token_env_var="STEWARD_TEST_LIMITED_TOKEN"))
        result = limited.probe(ref(store_path=path))
        assert not result.ok
        assert "missing capabilities" in result.summary
        assert "destroy" in result.summary
    finally:
        del os.environ["STEWARD_TEST_LIMITED_TOKEN"]


def test_unreachable_store_is_transient(openbao):
    from tests.lifecycle_servers import free_port

    dead = OpenBaoKV(OpenBaoSettings(address=f"http://127.0.0.1:{free_port()}", token_env_var=TOKEN_ENV, timeout=2))
    with pytest.raises(Unreachable) as caught:
        dead.rotate(ref(store_path="app/x"))
    assert caught.value.transient


def test_missing_token_variable_is_misconfigured(openbao):
    connector = OpenBaoKV(OpenBaoSettings(address=openbao.address, token_env_var="STEWARD_TEST_NOT_SET"))
    with pytest.raises(Misconfigured, match="STEWARD_TEST_NOT_SET"):
        connector.observe(ref(store_path="app/x"))
