"""AWS IAM access keys against moto in server mode, authenticating like AWS: the old key really is refused."""

import json

import botocore.exceptions
import pytest
from django.core.exceptions import ValidationError

from governance.audit import Actor
from governance.choices import CredentialStatus
from governance.connectors.aws_common import AWSSettings
from governance.connectors.aws_iam import AWSIAMAccessKey
from governance.connectors.base import ConnectorError, ProvisionSpec, ReferenceBroken, Unreachable
from governance.connectors.drift import DeclaredPrivilege
from governance.connectors.openbao_kv import OpenBaoKV, OpenBaoSettings
from governance.models import AuditEvent, Credential
from governance.models.provisioning import CredentialProvisioning, ProvisioningStatus
from governance.services import provisioning
from tests.aws_stand_in import aws_settings, iam_user, signs_in
from tests.governance.connectors.conftest import kv_put, ref, target_system, unique
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


# Provisioning: a new IAM user with exactly the declared managed policies and a proven access key

GET_USER_ONLY = json.dumps({"Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]})


def recording_spec(scopes=(), run_key="test-run"):
    steps: list[str] = []
    return ProvisionSpec(scopes=tuple(scopes), run_key=run_key, record=steps.append), steps


@pytest.fixture
def policy(aws):
    """A customer managed policy that allows iam:GetUser only."""
    iam = aws.client("iam")
    arn = iam.create_policy(PolicyName=unique("get-user"), PolicyDocument=GET_USER_ONLY)["Policy"]["Arn"]
    yield arn
    for user in iam.list_entities_for_policy(PolicyArn=arn)["PolicyUsers"]:
        iam.detach_user_policy(UserName=user["UserName"], PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)


@pytest.fixture
def new_user(aws):
    """A name for a user the test provisions; whatever is left of it is removed afterwards."""
    name = unique("prov")
    yield name
    iam = aws.client("iam")
    try:
        iam.get_user(UserName=name)
    except iam.exceptions.NoSuchEntityException:
        return
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for attached in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
        iam.detach_user_policy(UserName=name, PolicyArn=attached["PolicyArn"])
    iam.delete_user(UserName=name)


def user_exists(aws, name: str) -> bool:
    iam = aws.client("iam")
    try:
        iam.get_user(UserName=name)
        return True
    except iam.exceptions.NoSuchEntityException:
        return False


def kv_gone(kv, path: str) -> bool:
    try:
        kv.metadata(path)
    except ConnectorError:
        return True
    return False


def test_provision_creates_the_user_with_exactly_the_declared_policy_and_a_working_key(aws, connector, kv, policy,
                                                                                         new_user):
    path = f"aws/{new_user}"
    spec, steps = recording_spec([policy])
    result = connector.provision(ref(kind="api_key", identifier=new_user, store_path=f"secret/data/{path}"), spec)
    stored = kv.read_value(path)
    assert set(stored) == {"access_key_id", "secret_access_key"}
    assert result.version == "1" and result.identifier == new_user and result.fingerprint == stored["access_key_id"]
    assert steps == list(result.created) == [f"aws_iam_user:{new_user}", f"aws_iam_policy:{new_user}:{policy}",
                                             f"aws_iam_key:{new_user}", f"kv-new:{path}@1"]
    assert signs_in(aws, stored)
    iam = aws.client("iam")
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=new_user)["AttachedPolicies"]] == [policy]
    assert iam.list_user_policies(UserName=new_user)["PolicyNames"] == []
    tags = {t["Key"]: t["Value"] for t in iam.get_user(UserName=new_user)["User"]["Tags"]}
    assert tags == {"steward:credential": "test-credential", "steward:provisioning": "test-run"}
    as_new = aws.client("iam", key_id=stored["access_key_id"], secret=stored["secret_access_key"])
    assert as_new.get_user(UserName=new_user)["User"]["UserName"] == new_user  # declared: allowed
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        as_new.list_users()  # not declared: refused
    text = " ".join(result.proof)
    assert f"sts:GetCallerIdentity signed by key {stored['access_key_id']} answers" in text
    assert f"user/{new_user}" in text and f"exactly the declared ones ({policy}); no inline policy" in text
    assert stored["secret_access_key"] not in repr(result)

    undo = connector.provision_undo(ref(identifier=new_user, store_path=path), spec, result.created)
    assert not user_exists(aws, new_user) and kv_gone(kv, path) and not signs_in(aws, stored)
    assert undo[0].endswith("deleted with its metadata (the path was new); a read finds nothing.")
    assert f"access key {stored['access_key_id']} of {new_user} deleted" in undo[1]
    assert "detached" in undo[2] and "GetUser finds no such user" in undo[3]
    again = connector.provision_undo(ref(identifier=new_user, store_path=path), spec, result.created)
    assert len(again) == 4 and "nothing there" in again[0]
    assert all("nothing to remove" in line for line in again[1:])  # twice: no harm


def test_provision_refuses_an_existing_user_and_undo_leaves_it_alone(aws, connector, iam_key, kv):
    spec, steps = recording_spec()
    with pytest.raises(ConnectorError, match="exists already"):
        connector.provision(ref(identifier=iam_key["user"], store_path=f"aws/{unique('x')}"), spec)
    assert steps == []
    with pytest.raises(ConnectorError, match="not created by this provisioning"):
        connector.provision_undo(ref(identifier=iam_key["user"], store_path="aws/x"), spec,
                                 [f"aws_iam_user:{iam_key['user']}"])
    assert signs_in(aws, iam_key["key"])


def test_provision_of_a_scope_that_is_not_a_policy_arn_creates_nothing(aws, connector, new_user):
    spec, steps = recording_spec(["s3:GetObject"])
    with pytest.raises(ConnectorError, match="Nothing was created.*is an IAM action, not a policy"):
        connector.provision(ref(identifier=new_user, store_path=f"aws/{new_user}"), spec)
    assert steps == [] and not user_exists(aws, new_user)


def test_a_missing_policy_arn_leaves_nothing_behind(aws, connector, kv, policy, new_user):
    path = f"aws/{new_user}"
    missing = "arn:aws:iam::123456789012:policy/no-such-policy"
    spec, steps = recording_spec([policy, missing])
    with pytest.raises(ReferenceBroken, match="no-such-policy does not exist"):
        connector.provision(ref(identifier=new_user, store_path=path), spec)
    assert steps == [f"aws_iam_user:{new_user}", f"aws_iam_policy:{new_user}:{policy}",
                     f"aws_iam_policy:{new_user}:{missing}"]
    assert user_exists(aws, new_user)  # created before the refused attachment ...
    undo = connector.provision_undo(ref(identifier=new_user, store_path=path), spec, steps)
    assert not user_exists(aws, new_user) and kv_gone(kv, path)  # ... and removed by the undo
    assert "no-such-policy is not attached" in undo[0] and "detached" in undo[1]
    assert aws.client("iam").get_policy(PolicyArn=policy)["Policy"]["AttachmentCount"] == 0  # the policy is kept
    assert all("nothing to remove" in line for line in connector.provision_undo(ref(identifier=new_user,
                                                                                    store_path=path), spec, steps))


def test_a_refused_kv_write_leaves_no_user_and_no_key(aws, openbao, policy, new_user, monkeypatch):
    client = openbao.client()
    client.sys.create_or_update_policy(name="read-only-aws", policy='path "secret/*" { capabilities = ["read"] }')
    token = client.auth.token.create(policies=["read-only-aws"], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("STEWARD_TEST_READONLY_TOKEN", token)
    readonly = OpenBaoKV(OpenBaoSettings(address=openbao.address, token_env_var="STEWARD_TEST_READONLY_TOKEN"))
    connector = AWSIAMAccessKey(AWSSettings.from_settings(aws_settings(aws)), readonly)
    path = f"aws/{new_user}"
    spec, steps = recording_spec([policy])
    with pytest.raises(ConnectorError) as refused:
        connector.provision(ref(identifier=new_user, store_path=path), spec)
    assert steps[:4] == [f"aws_iam_user:{new_user}", f"aws_iam_policy:{new_user}:{policy}",
                         f"aws_iam_key:{new_user}", f"kv-new:{path}@1"]
    assert steps[4:] == [f"unwritten:kv-new:{path}@1"]  # OpenBao refused: nothing of it to undo
    key_ids = [k["AccessKeyId"] for k in aws.client("iam").list_access_keys(UserName=new_user)["AccessKeyMetadata"]]
    assert len(key_ids) == 1 and "OpenBao" in refused.value.reason
    undo = connector.provision_undo(ref(identifier=new_user, store_path=path), spec, steps)
    assert not user_exists(aws, new_user) and kv_gone(readonly, path)
    assert f"access key {key_ids[0]} of {new_user} deleted" in undo[0]


def test_unreachable_aws_provisions_nothing(aws, kv, new_user):
    dead = AWSIAMAccessKey(AWSSettings.from_settings(aws_settings(aws, endpoint_url=f"http://127.0.0.1:{free_port()}",
                                                                  timeout=1)), kv)
    spec, steps = recording_spec()
    with pytest.raises(Unreachable):
        dead.provision(ref(identifier=new_user, store_path=f"aws/{new_user}"), spec)
    assert steps == [] and not user_exists(aws, new_user) and kv_gone(kv, f"aws/{new_user}")


# Provisioning end to end: the run, its proof, and the credential's state


@pytest.fixture
def aws_system(aws, personas):
    return target_system(personas, "aws_iam", aws_settings(aws), "aws-account")


def provisioning_credential(personas, system, store, user: str, scopes) -> Credential:
    return Credential.objects.create(name=unique("c"), kind="api_key", system=system, identifier=user, store=store,
                                     store_path=f"secret/data/prov/{user}", owner=personas.owner, team=personas.team,
                                     scopes=list(scopes), status=CredentialStatus.PROVISIONING)


@pytest.mark.django_db
def test_a_scope_that_is_not_a_policy_arn_is_refused_on_the_field(aws_system, kv_store):
    with pytest.raises(ValidationError) as refused:
        provisioning.provision_scopes_validate(system=aws_system, store=kv_store, kind="api_key",
                                               scopes=["s3:GetObject", "arn:aws:iam::123456789012:role/deploy",
                                                       "arn:aws:iam::aws:policy/ReadOnlyAccess"])
    messages = refused.value.message_dict["scopes"]
    assert len(messages) == 2 and "is an IAM action, not a policy" in messages[0]
    assert "is not an IAM managed policy ARN" in messages[1]
    assert provisioning.provision_scopes_validate(system=aws_system, store=kv_store, kind="api_key", scopes=[
        "arn:aws:iam::123456789012:policy/team/orders-reader", " "]) == [
        "arn:aws:iam::123456789012:policy/team/orders-reader"]


@pytest.mark.django_db
def test_the_run_makes_the_credential_active_only_after_proof(aws, personas, aws_system, kv_store, kv, policy,
                                                              new_user):
    credential = provisioning_credential(personas, aws_system, kv_store, new_user, [policy])
    run = provisioning.provisioning_start(actor=Actor.system(task_id="test"), credential=credential)
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.PROVISIONING and not user_exists(aws, new_user)
    assert provisioning.provisioning_execute(provisioning_id=run.pk) == "succeeded"
    run.refresh_from_db()
    credential.refresh_from_db()
    stored = kv.read_value(f"prov/{new_user}")
    assert run.status == ProvisioningStatus.SUCCEEDED and run.attempts == 1
    assert credential.status == CredentialStatus.ACTIVE and credential.store_version == "1"
    assert credential.fingerprint == stored["access_key_id"] and credential.identifier == new_user
    assert signs_in(aws, stored)
    assert any("sts:GetCallerIdentity signed by key" in line for line in run.proof)
    assert any("exactly the declared ones" in line for line in run.proof)
    assert run.steps[-1] == f"kv-new:prov/{new_user}@1"
    assert provisioning.provisioning_execute(provisioning_id=run.pk) == "skipped"  # redelivered: done once
    assert len(aws.client("iam").list_access_keys(UserName=new_user)["AccessKeyMetadata"]) == 1
    recorded = str(list(AuditEvent.objects.values_list("summary", "changes")))
    recorded += str(list(CredentialProvisioning.objects.values_list("proof", "steps", "reason")))
    assert stored["secret_access_key"] not in recorded


@pytest.mark.django_db
def test_a_failed_run_is_provisioning_failed_with_the_reason_and_leaves_nothing(aws, personas, aws_system, kv_store,
                                                                                kv, policy, new_user):
    missing = "arn:aws:iam::123456789012:policy/no-such-policy"
    credential = provisioning_credential(personas, aws_system, kv_store, new_user, [policy, missing])
    run = provisioning.provisioning_start(actor=Actor.system(task_id="test"), credential=credential)
    assert provisioning.provisioning_execute(provisioning_id=run.pk) == "failed"
    run.refresh_from_db()
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.PROVISIONING_FAILED
    assert run.status == ProvisioningStatus.FAILED and not run.cleanup_incomplete
    assert "no-such-policy does not exist or is not attachable" in run.reason
    assert not user_exists(aws, new_user) and kv_gone(kv, f"prov/{new_user}")
    assert run.steps == [] and any("GetUser finds no such user" in line for line in run.undo_proof)
    assert AuditEvent.objects.filter(action="credential.provision_fail", object_id=str(credential.pk)).exists()


# Drift: the user's policies and keys against what was declared and stored

def test_a_user_as_declared_has_no_drift(connector, iam_key):
    report = connector.observe_privilege(credential(iam_key), DeclaredPrivilege(level="read", store_version="1"))
    assert not report.drifted, report.summary
    assert "inline:read" in report.privileges and iam_key["key"]["access_key_id"] in report.checked[0]


def test_an_admin_policy_and_a_key_made_outside_steward_are_drift(aws, connector, iam_key):
    iam = aws.client("iam")
    admin = iam.create_policy(PolicyName="AdministratorAccess", PolicyDocument=json.dumps({  # moto has no AWS-managed
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=iam_key["user"], PolicyArn=admin)
    extra = iam.create_access_key(UserName=iam_key["user"])["AccessKey"]["AccessKeyId"]
    report = connector.observe_privilege(credential(iam_key), DeclaredPrivilege(level="write", store_version="1"))
    assert report.drifted
    assert any("AdministratorAccess: administers the account (declared write)" in line for line in report.excess)
    assert any(extra in line and "did not create" in line for line in report.changes)
    # Declared as admin, the policy is within the level; the extra key still is not Steward's.
    as_admin = connector.observe_privilege(credential(iam_key), DeclaredPrivilege(level="admin", store_version="1"))
    assert as_admin.excess == () and as_admin.changes


def test_declared_policy_arns_make_every_other_policy_drift(connector, iam_key):
    declared = DeclaredPrivilege(level="read", scopes=("arn:aws:iam::aws:policy/ReadOnlyAccess",), store_version="1")
    report = connector.observe_privilege(credential(iam_key), declared)
    assert report.excess == ("inline:read (declared: arn:aws:iam::aws:policy/ReadOnlyAccess)",)


def test_a_stored_key_deleted_or_disabled_outside_steward_is_drift(aws, connector, iam_key):
    iam = aws.client("iam")
    iam.update_access_key(UserName=iam_key["user"], AccessKeyId=iam_key["key"]["access_key_id"], Status="Inactive")
    report = connector.observe_privilege(credential(iam_key), DeclaredPrivilege(level="read", store_version="1"))
    assert any("set Inactive outside Steward" in line for line in report.changes)
    iam.delete_access_key(UserName=iam_key["user"], AccessKeyId=iam_key["key"]["access_key_id"])
    report = connector.observe_privilege(credential(iam_key), DeclaredPrivilege(level="read", store_version="2"))
    assert any("no longer exists" in line for line in report.changes)
    assert any("version 1, but Steward wrote or recorded version 2" in line for line in report.changes)
