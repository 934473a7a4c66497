"""An AWS IAM user's access key: rotate, suspend (deactivate), revoke (delete) at the issuer, with proof.

Target: ConnectorTarget(kind="aws_iam") on the credential's System (an AWS account), settings as
in governance.connectors.aws_common. The IAM user is Credential.identifier; its access key lives
in the credential's OpenBao KV store at Credential.store_path as {"access_key_id": ...,
"secret_access_key": ...}; Credential.fingerprint is the access key id in use (not secret).

Rotation: create a second key, write it to OpenBao (check-and-set), prove it with
sts:GetCallerIdentity signed by the new key (the caller must be this user), then deactivate and
delete the old key and prove that AWS refuses it. A new key that cannot be stored or proven is
deleted again and the store is left as it was. Suspension deactivates the key (AWS refuses it);
revocation deletes it and destroys the stored copy. Reactivation never brings the suspended key
back: it issues a new key (a rotation) and deletes the one that was live during the incident.

Provisioning creates a NEW IAM user only (an existing one is refused), tagged with the credential
and the provisioning run (steward:credential, steward:provisioning), attaches exactly the declared
managed policies (scopes: policy ARNs, governance.connectors.scopes), creates its access key and
writes it to a free OpenBao KV path; then proves sts:GetCallerIdentity signed by the new key answers
this user, and that the user's policies are exactly the declared ones (no inline policy). Each step
is recorded before it is tried; provision_undo takes them back newest first, and removes a user only
when its steward:provisioning tag names this run.
"""

from __future__ import annotations

import re
import time

import botocore.exceptions

from governance.connectors.aws_common import AWSSettings, aws_errors, error_code, key_refused
from governance.connectors.base import (
    ActionResult,
    Connector,
    ConnectorError,
    CredentialRef,
    Observation,
    ProbeRecorder,
    ProbeResult,
    ProvisionResult,
    ProvisionSpec,
    ReferenceBroken,
    RotationResult,
    Unreachable,
    VerificationFailed,
    destroy_stored_password,
    now,
    scrub,
)
from governance.connectors.drift import (
    DeclaredPrivilege,
    DriftReport,
    aws_key_changes,
    aws_policy_excess,
    kv_version_change,
)
from governance.connectors.openbao_kv import OpenBaoKV, is_store_step, undo_order
from governance.connectors.scopes import ScopeError, parse_scopes

KEY_ID, SECRET = "access_key_id", "secret_access_key"
CREDENTIAL_TAG, RUN_TAG = "steward:credential", "steward:provisioning"
# The provisioning steps (recorded before each is tried); user names hold no ":" (IAM allows [\w+=,.@-]).
USER_STEP, POLICY_STEP, KEY_STEP = "aws_iam_user:", "aws_iam_policy:", "aws_iam_key:"
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")


def tag_value(text: str) -> str:
    """A text as an IAM tag value (letters, digits, spaces and _.:/=+-@; at most 256 characters)."""
    return _TAG_UNSAFE.sub("_", text)[:256]


class AWSIAMAccessKey(Connector):
    kind = "aws_iam"
    revokes_at_issuer = True  # suspend sets the key Inactive in IAM, revoke deletes it there

    def __init__(self, settings: AWSSettings, kv: OpenBaoKV):
        self.settings = settings
        self.kv = kv

    # AWS calls

    @property
    def iam(self):
        return self.settings.client("iam")

    def caller_of(self, key_id: str, secret: str) -> str | None:
        """The ARN sts:GetCallerIdentity answers when signed by this key; None when AWS refuses the key."""
        sts = self.settings.client("sts", access_key_id=key_id, secret_access_key=secret)
        try:
            with aws_errors(f"sts:GetCallerIdentity with key {key_id}", values=[secret]):
                try:
                    return sts.get_caller_identity()["Arn"]
                except botocore.exceptions.ClientError as error:
                    if key_refused(error):
                        return None
                    raise
        except ConnectorError as error:
            if isinstance(error, Unreachable):
                raise
            raise VerificationFailed(error.reason) from None

    def _until(self, check, *, wanted: bool) -> bool:
        """IAM is eventually consistent: ask again until the answer is the one wanted, or the wait is over."""
        deadline = time.monotonic() + self.settings.propagation_seconds
        delay = 0.5
        while True:
            answer = check()
            if answer == wanted or time.monotonic() >= deadline:
                return answer
            time.sleep(delay)
            delay = min(delay * 2, 4.0)

    def prove_works(self, user: str, key_id: str, secret: str) -> str:
        arn = None

        def works():
            nonlocal arn
            arn = self.caller_of(key_id, secret)
            return arn is not None

        if not self._until(works, wanted=True):
            raise VerificationFailed(f"AWS refuses the new key {key_id} of {user} (sts:GetCallerIdentity).")
        if not str(arn).endswith(f":user/{user}") and not str(arn).endswith(f"/{user}"):
            raise VerificationFailed(f"Key {key_id} signs in as {arn}, not as the IAM user {user}.")
        return f"{self.settings.label}: sts:GetCallerIdentity signed by key {key_id} answers {arn}."

    def prove_refused(self, user: str, key_id: str, secret: str | None, *, what: str) -> str:
        if not secret:
            return f"No stored secret of key {key_id}: a sign-in with it was not tried."
        if self._until(lambda: self.caller_of(key_id, secret) is not None, wanted=False):
            raise VerificationFailed(f"AWS still accepts the {what} key {key_id} of {user}.")
        return f"{self.settings.label}: sts:GetCallerIdentity signed by the {what} key {key_id} is refused."

    def keys_of(self, user: str) -> dict[str, dict]:
        with aws_errors(f"Listing the access keys of IAM user {user}"):
            keys = self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        return {key["AccessKeyId"]: key for key in keys}

    def policies_of(self, user: str) -> list[str]:
        with aws_errors(f"Reading the policies of IAM user {user}"):
            iam = self.iam
            attached = iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]
            inline = iam.list_user_policies(UserName=user)["PolicyNames"]
        return [p["PolicyArn"] for p in attached] + [f"inline:{name}" for name in inline]

    def _set_status(self, user: str, key_id: str, status: str) -> None:
        with aws_errors(f"Setting key {key_id} of {user} {status}"):
            self.iam.update_access_key(UserName=user, AccessKeyId=key_id, Status=status)

    def _delete(self, user: str, key_id: str) -> None:
        with aws_errors(f"Deleting key {key_id} of {user}"):
            try:
                self.iam.delete_access_key(UserName=user, AccessKeyId=key_id)
            except botocore.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") != "NoSuchEntity":
                    raise

    # The stored key

    def stored(self, ref: CredentialRef) -> tuple[str, dict, int]:
        """(path, data, version) of the stored key; data is {} when the current version is unreadable."""
        path = self.kv.path_of(ref.store_path)
        data, version, _ = self.kv.read_current(path)
        return path, dict(data or {}), version

    # Interface

    def observe(self, ref: CredentialRef) -> Observation:
        user = ref.identifier
        observation = self.kv.observe(ref)
        _, data, _ = self.stored(ref)
        keys = self.keys_of(user)
        key_id = data.get(KEY_ID, "")
        key = keys.get(key_id)
        policies = self.policies_of(user)
        state = "revoked" if key is None else "active" if key["Status"] == "Active" else "disabled"
        others = len([k for k in keys if k != key_id])
        detail = (f"{observation.detail}; IAM user {user}: key {key_id or '(none stored)'} "
                  f"{key['Status'] if key else 'absent'}; {others} other key(s); policies: "
                  f"{', '.join(policies) or 'none'}")
        return Observation(observation.version, key["CreateDate"] if key else observation.created_at, state=state,
                           detail=detail[:1000])

    def observe_privilege(self, ref: CredentialRef, declared: DeclaredPrivilege) -> DriftReport:
        """The user's attached and inline policies against the declared ones (or level), its access keys
        against the stored one (a key made outside Steward, the stored one deleted or disabled), and the
        stored version against the one Steward wrote. Reads only."""
        user = ref.identifier
        path, data, version = self.stored(ref)
        keys = self.keys_of(user)
        policies = tuple(sorted(self.policies_of(user)))
        stored_key_id = data.get(KEY_ID, "")
        changes = (*kv_version_change(str(version), declared, f"OpenBao {self.kv.label(path)}"),
                   *aws_key_changes(user, keys, stored_key_id))
        listed = ", ".join(f"{key_id} ({key.get('Status')})" for key_id, key in sorted(keys.items())) or "none"
        checked = (f"{self.settings.label}: IAM user {user} has policies {', '.join(policies) or 'none'} and access "
                   f"keys {listed}.", f"OpenBao {self.kv.label(path)}: current version {version}.")
        return DriftReport(privileges=policies, excess=aws_policy_excess(policies, declared), changes=changes,
                           checked=checked)

    def _make_room(self, user: str, keep: str, keys: dict[str, dict]) -> list[str]:
        """IAM allows two keys per user: an inactive key that is not the stored one is removed first."""
        proof = []
        if len(keys) < 2:
            return proof
        for key_id, key in keys.items():
            if key_id != keep and key["Status"] != "Active":
                self._delete(user, key_id)
                proof.append(f"Inactive key {key_id} of {user} (not the stored one) deleted to make room.")
                return proof
        raise ConnectorError(f"IAM user {user} already has two active access keys; IAM allows two. Delete the one "
                             "that is not in the store before rotating.")

    def issue(self, ref: CredentialRef) -> tuple[RotationResult, str | None, str | None]:
        """A new key, stored and proven: (result, previous key id, previous secret). The old key is untouched."""
        user = ref.identifier
        path, old, current = self.stored(ref)
        old_id, old_secret = old.get(KEY_ID), old.get(SECRET)
        proof = self._make_room(user, old_id or "", self.keys_of(user))
        with aws_errors(f"Creating an access key for IAM user {user}"):
            created = self.iam.create_access_key(UserName=user)["AccessKey"]
        new_id, new_secret = created["AccessKeyId"], created["SecretAccessKey"]
        try:
            version, _ = self.kv.write_value(path, {**old, KEY_ID: new_id, SECRET: new_secret}, cas=current)
        except ConnectorError as error:
            self._delete(user, new_id)
            raise ConnectorError(scrub(f"{error.reason} The new key {new_id} was deleted again.", [new_secret])
                                 ) from None
        try:
            proof += list(self.kv.verify_written(path, version, SECRET, new_secret))
            proof.append(self.prove_works(user, new_id, new_secret))
        except ConnectorError as error:
            self._delete(user, new_id)
            if old:
                self.kv.write_value(path, old, cas=version)
            raise type(error)(f"{error.reason} The new key {new_id} was deleted and the previous value written "
                              "back.") from None
        result = RotationResult(version=str(version), rotated_at=now(), proof=tuple(proof), identifier=user,
                                store_path=ref.store_path, fingerprint=new_id)
        return result, old_id, old_secret

    def retire(self, user: str, key_id: str | None, secret: str | None, *, what: str) -> list[str]:
        """Deactivate and delete a previous key, then prove AWS refuses it."""
        if not key_id:
            return ["No previous key was stored, so there was none to retire."]
        if key_id in self.keys_of(user):
            self._set_status(user, key_id, "Inactive")
            self._delete(user, key_id)
        if key_id in self.keys_of(user):
            raise VerificationFailed(f"Key {key_id} of {user} is still listed after its deletion.")
        return [f"IAM: the {what} key {key_id} of {user} deactivated and deleted (no longer listed).",
                self.prove_refused(user, key_id, secret, what=what)]

    def rotate(self, ref: CredentialRef) -> RotationResult:
        result, old_id, old_secret = self.issue(ref)
        proof = [*result.proof, *self.retire(ref.identifier, old_id, old_secret, what="previous")]
        return RotationResult(version=result.version, rotated_at=result.rotated_at, proof=tuple(proof),
                              identifier=result.identifier, store_path=result.store_path,
                              fingerprint=result.fingerprint)

    def rotation_resume(self, ref: CredentialRef, *, since) -> RotationResult | None:
        """A lost attempt stored a new key: prove it and retire the key it replaced, instead of a third key."""
        user, path = ref.identifier, self.kv.path_of(ref.store_path)
        found = self.kv.written_since(path, recorded=ref.store_version, since=since)
        if found is None or not found[1].get(SECRET):
            return None
        version, data, created = found
        proof = [f"OpenBao {self.kv.label(path)}: version {version}, written {created:%Y-%m-%d %H:%M:%S} UTC by an "
                 "attempt whose worker was lost, holds key "
                 f"{data[KEY_ID]}: completed and recorded, not rotated again.",
                 self.prove_works(user, data[KEY_ID], data[SECRET])]
        previous = self.kv.read_value(path, int(ref.store_version)) if ref.store_version.isdigit() else None
        previous = previous or {}
        if previous.get(KEY_ID) and previous[KEY_ID] != data[KEY_ID]:
            proof += self.retire(user, previous[KEY_ID], previous.get(SECRET), what="previous")
        return RotationResult(version=str(version), rotated_at=created, proof=tuple(proof), identifier=user,
                              store_path=ref.store_path, fingerprint=data[KEY_ID])

    def suspend(self, ref: CredentialRef) -> ActionResult:
        user = ref.identifier
        _, data, _ = self.stored(ref)
        key_id = data.get(KEY_ID)
        if not key_id or key_id not in self.keys_of(user):
            raise ReferenceBroken(f"The stored key {key_id or '(none)'} of {user} is not one of its access keys.")
        self._set_status(user, key_id, "Inactive")
        status = self.keys_of(user)[key_id]["Status"]
        if status != "Inactive":
            raise VerificationFailed(f"Key {key_id} of {user} is {status} after its deactivation.")
        return ActionResult("suspend", now(), (
            f"IAM: key {key_id} of {user} is Inactive at the issuer (revoked at AWS, not only in Steward).",
            self.prove_refused(user, key_id, data.get(SECRET), what="deactivated"),
        ))

    def reactivate(self, ref: CredentialRef) -> ActionResult:
        """A new key, never the one that was live during the incident; the suspended one is deleted."""
        result, old_id, old_secret = self.issue(ref)
        proof = [*result.proof, *self.retire(ref.identifier, old_id, old_secret, what="suspended")]
        rotation = RotationResult(version=result.version, rotated_at=result.rotated_at, proof=tuple(proof),
                                  identifier=result.identifier, store_path=result.store_path,
                                  fingerprint=result.fingerprint)
        return ActionResult("reactivate", now(), (f"IAM: {ref.identifier} works again with a new key "
                                                  f"{result.fingerprint}.", *proof), rotation=rotation)

    def reactivate_rotated(self, ref: CredentialRef) -> ActionResult:
        """After a kill switch: reactivation here always gives a new secret, so it is the same move."""
        return self.reactivate(ref)

    def revoke(self, ref: CredentialRef) -> ActionResult:
        user = ref.identifier
        _, data, _ = self.stored(ref)
        key_id, secret = data.get(KEY_ID), data.get(SECRET)
        if not key_id:
            raise ReferenceBroken(f"No access key of {user} is stored at {ref.store_path}.")
        proof = self.retire(user, key_id, secret, what="revoked")
        proof.extend(destroy_stored_password(self.kv, ref))
        return ActionResult("revoke", now(), tuple(proof))

    def probe(self, ref: CredentialRef) -> ProbeResult:
        recorder = ProbeRecorder()
        user = ref.identifier

        def admin():
            with aws_errors("sts:GetCallerIdentity with Steward's credential"):
                return f"Steward signs in to AWS as {self.settings.client('sts').get_caller_identity()['Arn']}"

        if not recorder.check("AWS reachable and Steward's credential valid", admin):
            return recorder.result()

        def user_and_key():
            _, data, _ = self.stored(ref)
            keys = self.keys_of(user)
            key = keys.get(data.get(KEY_ID, ""))
            if key is None:
                raise ReferenceBroken(f"the stored key {data.get(KEY_ID) or '(none)'} is not an access key of {user}")
            return f"IAM user {user}: stored key {key['AccessKeyId']} is {key['Status']}; {len(keys)} key(s)"

        recorder.check("IAM user and stored key", user_and_key)
        recorder.check("Policies readable", lambda: ", ".join(self.policies_of(user)) or "no policies")
        try:
            path = self.kv.path_of(ref.store_path)
        except ConnectorError as error:
            recorder.fail("Reference", error.reason)
            return recorder.result()
        self.kv.probe_paths(recorder, path)
        return recorder.result()


    # Provisioning: a new IAM user with exactly the declared managed policies and one access key

    def user_tags(self, user: str) -> dict[str, str] | None:
        """The IAM user's tags, or None when no user of that name exists."""
        with aws_errors(f"Looking up IAM user {user}"):
            try:
                found = self.iam.get_user(UserName=user)["User"]
            except botocore.exceptions.ClientError as error:
                if error_code(error) == "NoSuchEntity":
                    return None
                raise
        return {tag["Key"]: tag["Value"] for tag in found.get("Tags") or []}

    def prove_policies(self, user: str, declared: list[str]) -> str:
        """The user's attached policies are exactly the declared ones, and it has no inline policy."""
        policies: list[str] = []

        def exact():
            nonlocal policies
            policies = self.policies_of(user)
            return sorted(policies) == sorted(declared)

        if not self._until(exact, wanted=True):
            raise VerificationFailed(f"IAM user {user} has the policies {', '.join(policies) or 'none'}, not exactly "
                                     f"the declared {', '.join(declared) or 'none'}.")
        return (f"IAM user {user}: attached policies are exactly the declared ones "
                f"({', '.join(declared) or 'none'}); no inline policy.")

    def provision(self, ref: CredentialRef, spec: ProvisionSpec) -> ProvisionResult:
        """CreateUser (tagged), AttachUserPolicy per declared ARN, CreateAccessKey, the key to OpenBao, then
        proof: the new key signs in as this user (sts:GetCallerIdentity) and the policies are exactly declared."""
        user = ref.identifier
        try:
            arns = list(dict.fromkeys(parse_scopes(self.kind, spec.scopes)))
        except ScopeError as error:
            raise ConnectorError(f"Nothing was created: the declared scopes are not IAM policy ARNs ({error}).") \
                from None
        if self.user_tags(user) is not None:
            raise ConnectorError(f"IAM user {user} exists already in {self.settings.label}: Steward provisions new "
                                 "users only (register an existing one instead).")
        plan = self.kv.store_plan(ref.store_path)
        created: list[str] = []

        def record(step: str) -> None:
            spec.record(step)
            created.append(step)

        iam = self.iam
        record(f"{USER_STEP}{user}")
        with aws_errors(f"Creating IAM user {user}"):
            iam.create_user(UserName=user, Tags=[{"Key": CREDENTIAL_TAG, "Value": tag_value(ref.name)},
                                                 {"Key": RUN_TAG, "Value": tag_value(spec.run_key)}])
        for arn in arns:
            record(f"{POLICY_STEP}{user}:{arn}")
            with aws_errors(f"Attaching {arn} to IAM user {user}"):
                iam.attach_user_policy(UserName=user, PolicyArn=arn)
        record(f"{KEY_STEP}{user}")
        with aws_errors(f"Creating an access key for IAM user {user}"):
            key = iam.create_access_key(UserName=user)["AccessKey"]
        key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
        try:
            version, proof = self.kv.store_write(plan, {KEY_ID: key_id, SECRET: secret}, key=SECRET, record=record)
            proof = [*proof, self.prove_works(user, key_id, secret), self.prove_policies(user, arns)]
            keys = self.keys_of(user)
        except ConnectorError as error:
            raise type(error)(scrub(error.reason, [secret])) from None
        if list(keys) != [key_id]:
            raise VerificationFailed(f"IAM user {user} has the access keys {', '.join(keys) or 'none'}, not only "
                                     f"the new key {key_id}.")
        proof.append(f"IAM user {user} created by Steward ({RUN_TAG}={tag_value(spec.run_key)}); its only access "
                     f"key is {key_id}, stored in OpenBao.")
        return ProvisionResult(version=str(version), provisioned_at=now(), proof=tuple(proof), created=tuple(created),
                               identifier=user, fingerprint=key_id)

    def _own_user(self, user: str, spec: ProvisionSpec) -> bool:
        """True when the user exists and this run created it; False when it is absent. A user this run did not
        create is never touched (ConnectorError)."""
        tags = self.user_tags(user)
        if tags is None:
            return False
        if tags.get(RUN_TAG) != tag_value(spec.run_key):
            raise ConnectorError(f"IAM user {user} was not created by this provisioning ({RUN_TAG} is "
                                 f"{tags.get(RUN_TAG, 'not set')!r}): left alone.")
        return True

    def _delete_keys(self, user: str) -> list[str]:
        deleted = list(self.keys_of(user))
        for key_id in deleted:
            self._delete(user, key_id)
        if self.keys_of(user):
            raise VerificationFailed(f"IAM user {user} still has access keys after their deletion.")
        return deleted

    def _detach(self, user: str, arn: str) -> None:
        with aws_errors(f"Detaching {arn} from IAM user {user}"):
            try:
                self.iam.detach_user_policy(UserName=user, PolicyArn=arn)
            except botocore.exceptions.ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise

    def _undo_user(self, user: str) -> str:
        """Delete a user this run created: what is still on it first (IAM refuses to delete it otherwise)."""
        keys = self._delete_keys(user)
        attached = [p for p in self.policies_of(user) if not p.startswith("inline:")]
        for arn in attached:
            self._detach(user, arn)
        with aws_errors(f"Deleting IAM user {user}"):
            iam = self.iam
            for name in iam.list_user_policies(UserName=user)["PolicyNames"]:
                iam.delete_user_policy(UserName=user, PolicyName=name)
            try:
                iam.delete_user(UserName=user)
            except botocore.exceptions.ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise
        if self._until(lambda: self.user_tags(user) is not None, wanted=False):
            raise VerificationFailed(f"IAM user {user} still exists after its deletion.")
        left = [*(f"key {k}" for k in keys), *attached]
        return (f"IAM user {user} deleted" + (f" (with {', '.join(left)})" if left else "")
                + "; GetUser finds no such user.")

    def provision_undo(self, ref: CredentialRef, spec: ProvisionSpec, created) -> tuple[str, ...]:
        """Newest first: the stored key, the access key, the attached policies, then the IAM user (only one this
        run created: its steward:provisioning tag names the run). What is already absent is "nothing to remove"."""
        proof = []
        for step in undo_order(created):
            if is_store_step(step):
                proof.append(self.kv.store_undo(step))
            elif step.startswith(KEY_STEP):
                user = step[len(KEY_STEP):]
                if not self._own_user(user, spec):
                    proof.append(f"IAM user {user} does not exist, so it has no access key (nothing to remove).")
                    continue
                deleted = self._delete_keys(user)
                proof.append(f"IAM: access key {', '.join(deleted)} of {user} deleted (no key listed)." if deleted
                             else f"IAM user {user} has no access key (nothing to remove).")
            elif step.startswith(POLICY_STEP):
                user, _, arn = step[len(POLICY_STEP):].partition(":")
                if not self._own_user(user, spec) or arn not in self.policies_of(user):
                    proof.append(f"{arn} is not attached to IAM user {user} (nothing to remove).")
                    continue
                self._detach(user, arn)
                if arn in self.policies_of(user):
                    raise VerificationFailed(f"{arn} is still attached to IAM user {user} after its detachment.")
                proof.append(f"IAM: {arn} detached from {user} (no longer listed).")
            elif step.startswith(USER_STEP):
                user = step[len(USER_STEP):]
                if not self._own_user(user, spec):
                    proof.append(f"IAM user {user} does not exist (nothing to remove).")
                    continue
                proof.append(self._undo_user(user))
        return tuple(proof)
