"""An AWS Secrets Manager secret: put a new version, describe it, verify it; suspend, restore, delete.

Store: SecretStore(kind="aws_secrets_manager"), address = the endpoint (empty: AWS itself), settings
as in governance.connectors.aws_common plus "value_key" (default "value") and
"recovery_window_days" (default 7). Credential.store_path is the secret's name or ARN;
Credential.store_version is the Secrets Manager version id in use.

Rotation puts a new version (a fresh random value in the JSON field value_key; a plain-string
secret is replaced whole), then proves it: describe_secret shows the new version as AWSCURRENT
and the one it replaced as AWSPREVIOUS, and get_secret_value returns the new value. Suspension
schedules the deletion (the recovery window): reads are refused. Reactivation restores the secret
and rotates it, so the value live during the incident is not the one in use afterwards.
Revocation deletes it without recovery.
"""

from __future__ import annotations

import hmac
import json
import uuid
from dataclasses import dataclass

import botocore.exceptions

from governance.connectors.aws_common import AWSSettings, aws_errors, error_code
from governance.connectors.base import (
    ActionResult,
    Connector,
    ConnectorError,
    CredentialRef,
    Misconfigured,
    Observation,
    ProbeRecorder,
    ProbeResult,
    ReferenceBroken,
    RotationResult,
    VerificationFailed,
    new_secret_value,
    now,
)


@dataclass(frozen=True)
class SecretsManagerSettings:
    aws: AWSSettings
    value_key: str = "value"
    recovery_window_days: int = 7

    @classmethod
    def from_store(cls, store) -> SecretsManagerSettings:
        raw = dict(store.settings or {})
        aws = AWSSettings.from_settings(raw, endpoint_url=store.address or "", what=f"Store {store.name}")
        try:
            window = int(raw.get("recovery_window_days", 7))
        except (TypeError, ValueError):
            raise Misconfigured(f"Store {store.name}: recovery_window_days must be a whole number.") from None
        if not 7 <= window <= 30:
            raise Misconfigured(f"Store {store.name}: recovery_window_days must be 7 to 30 (AWS's range).")
        return cls(aws=aws, value_key=str(raw.get("value_key") or "value"), recovery_window_days=window)


class AWSSecretsManager(Connector):
    kind = "aws_secrets_manager"

    def __init__(self, settings: SecretsManagerSettings):
        self.settings = settings

    @property
    def client(self):
        return self.settings.aws.client("secretsmanager")

    def label(self, ref: CredentialRef) -> str:
        return f"Secrets Manager {ref.store_path}"

    def secret_id(self, ref: CredentialRef) -> str:
        secret_id = ref.store_path.strip()
        if not secret_id:
            raise ReferenceBroken("The credential names no secret in its store.")
        return secret_id

    def describe(self, ref: CredentialRef) -> dict:
        with aws_errors(f"Describing {self.label(ref)}"):
            return self.client.describe_secret(SecretId=self.secret_id(ref))

    @staticmethod
    def stage_of(description: dict, stage: str) -> str | None:
        for version_id, stages in (description.get("VersionIdsToStages") or {}).items():
            if stage in stages:
                return version_id
        return None

    def read(self, ref: CredentialRef, version_id: str | None = None) -> tuple[str, str]:
        """(version id, SecretString) of the current version, or of the version given."""
        kwargs = {"VersionId": version_id} if version_id else {"VersionStage": "AWSCURRENT"}
        with aws_errors(f"Reading {self.label(ref)}"):
            response = self.client.get_secret_value(SecretId=self.secret_id(ref), **kwargs)
        return response["VersionId"], response.get("SecretString") or ""

    def readable(self, ref: CredentialRef) -> bool:
        """True when the current version can be read; False when Secrets Manager refuses (deleted)."""
        try:
            with aws_errors(f"Reading {self.label(ref)}"):
                try:
                    self.client.get_secret_value(SecretId=self.secret_id(ref))
                    return True
                except botocore.exceptions.ClientError as error:
                    if error_code(error) in ("InvalidRequestException", "ResourceNotFoundException"):
                        return False
                    raise
        except ReferenceBroken:
            return False

    def field_of(self, text: str) -> str | None:
        """The value inside a secret string: the value_key field of a JSON object, or the whole string."""
        try:
            data = json.loads(text)
        except ValueError:
            return text
        return str(data.get(self.settings.value_key, "")) if isinstance(data, dict) else text

    def _with_value(self, text: str, value: str) -> str:
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return value
        if not isinstance(data, dict):
            return value
        return json.dumps({**data, self.settings.value_key: value})

    def put_new(self, ref: CredentialRef) -> RotationResult:
        previous, text = self.read(ref)
        value = new_secret_value()
        token = str(uuid.uuid4())
        with aws_errors(f"Putting a new version of {self.label(ref)}", values=[value]):
            written = self.client.put_secret_value(SecretId=self.secret_id(ref), ClientRequestToken=token,
                                                   SecretString=self._with_value(text, value))
        version = written["VersionId"]
        description = self.describe(ref)
        if self.stage_of(description, "AWSCURRENT") != version:
            raise VerificationFailed(f"{self.label(ref)}: version {version} was put but is not AWSCURRENT.")
        read_version, read_text = self.read(ref)
        stored = self.field_of(read_text)
        if read_version != version or not hmac.compare_digest(stored or "", value):
            raise VerificationFailed(f"{self.label(ref)}: AWSCURRENT does not hold the value put.")
        proof = [f"{self.label(ref)}: version {version} is AWSCURRENT and get_secret_value returns the new value.",
                 f"{self.label(ref)}: the previous version {previous} is "
                 + ("AWSPREVIOUS." if self.stage_of(description, "AWSPREVIOUS") == previous else
                    "no longer current.")]
        return RotationResult(version=version, rotated_at=now(), proof=tuple(proof))

    # Interface

    def observe(self, ref: CredentialRef) -> Observation:
        description = self.describe(ref)
        version = self.stage_of(description, "AWSCURRENT") or ""
        deleted = description.get("DeletedDate")
        state = "deleted" if deleted else "active"
        changed = description.get("LastChangedDate") or description.get("CreatedDate")
        return Observation(version=version, created_at=changed, state=state,
                           detail=f"{self.label(ref)}: AWSCURRENT version {version or '(none)'} ({state})")

    def rotate(self, ref: CredentialRef) -> RotationResult:
        return self.put_new(ref)

    def rotation_resume(self, ref: CredentialRef, *, since) -> RotationResult | None:
        description = self.describe(ref)
        current = self.stage_of(description, "AWSCURRENT")
        if not current or current == ref.store_version or not ref.store_version:
            return None
        with aws_errors(f"Listing the versions of {self.label(ref)}"):
            versions = self.client.list_secret_version_ids(SecretId=self.secret_id(ref))["Versions"]
        created = next((v.get("CreatedDate") for v in versions if v["VersionId"] == current), None)
        if created is None or created < since:
            return None
        return RotationResult(version=current, rotated_at=created, proof=(
            f"{self.label(ref)}: version {current}, put {created:%Y-%m-%d %H:%M:%S} UTC by an attempt whose worker "
            "was lost, is AWSCURRENT: recorded as this rotation, not rotated again.",))

    def suspend(self, ref: CredentialRef) -> ActionResult:
        window = self.settings.recovery_window_days
        with aws_errors(f"Scheduling the deletion of {self.label(ref)}"):
            response = self.client.delete_secret(SecretId=self.secret_id(ref), RecoveryWindowInDays=window)
        if self.readable(ref):
            raise VerificationFailed(f"{self.label(ref)} can still be read after its deletion was scheduled.")
        return ActionResult("suspend", now(), (
            f"{self.label(ref)}: deletion scheduled for {response.get('DeletionDate')} ({window}-day recovery "
            "window); get_secret_value is refused.",))

    def reactivate(self, ref: CredentialRef) -> ActionResult:
        with aws_errors(f"Restoring {self.label(ref)}"):
            self.client.restore_secret(SecretId=self.secret_id(ref))
        if not self.readable(ref):
            raise VerificationFailed(f"{self.label(ref)} still cannot be read after its restore.")
        rotation = self.put_new(ref)
        return ActionResult("reactivate", now(), (
            f"{self.label(ref)}: restored, and given a new value (version {rotation.version}), not the one live "
            "during the incident.", *rotation.proof), rotation=rotation)

    def reactivate_rotated(self, ref: CredentialRef) -> ActionResult:
        """After a kill switch: reactivation here always gives a new secret, so it is the same move."""
        return self.reactivate(ref)

    def revoke(self, ref: CredentialRef) -> ActionResult:
        with aws_errors(f"Deleting {self.label(ref)}"):
            self.client.delete_secret(SecretId=self.secret_id(ref), ForceDeleteWithoutRecovery=True)
        try:
            self.describe(ref)
            gone = False
        except ReferenceBroken:
            gone = True
        if not gone and self.readable(ref):
            raise VerificationFailed(f"{self.label(ref)} can still be read after its deletion.")
        return ActionResult("revoke", now(), (
            f"{self.label(ref)}: deleted without recovery; "
            + ("describe_secret answers that it does not exist." if gone else "get_secret_value is refused."),))

    def probe(self, ref: CredentialRef) -> ProbeResult:
        recorder = ProbeRecorder()

        def admin():
            with aws_errors("sts:GetCallerIdentity with Steward's credential"):
                return f"Steward signs in to AWS as {self.settings.aws.client('sts').get_caller_identity()['Arn']}"

        if not recorder.check("AWS reachable and Steward's credential valid", admin):
            return recorder.result()

        def described():
            description = self.describe(ref)
            if description.get("DeletedDate"):
                raise ConnectorError(f"deletion scheduled for {description['DeletedDate']}")
            return f"AWSCURRENT version {self.stage_of(description, 'AWSCURRENT')}"

        recorder.check("Secret resolves", described)
        recorder.check("Current value readable", lambda: f"version {self.read(ref)[0]} readable")
        return recorder.result()
