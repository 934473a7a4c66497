"""What the AWS connectors share: settings, boto3 clients, and AWS errors mapped onto connector errors.

Settings (a ConnectorTarget's for IAM, a SecretStore's for Secrets Manager) are non-secret:
"region", "endpoint_url" (empty: AWS itself; a loopback URL for a stand-in), "timeout",
"access_key_id_env_var" and "secret_access_key_env_var" (optionally "session_token_env_var"):
the NAMES of the environment variables that hold Steward's own AWS credential, never the values.
Clients never fall back to boto3's default chain, so a connector acts only with the credential
it was given, and a missing variable is a Misconfigured error, not someone else's identity.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import boto3
import botocore.config
import botocore.exceptions

from governance.connectors.base import (
    ConnectorError,
    Misconfigured,
    PermissionRefused,
    ReferenceBroken,
    Unreachable,
    env_value,
    scrub,
)

ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]*$")
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                          "UnrecognizedClientException"})
SIGN_IN_CODES = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
                           "InvalidAccessKeyId", "AuthFailure", "IncompleteSignature"})
MISSING_CODES = frozenset({"NoSuchEntity", "ResourceNotFoundException", "NoSuchEntityException"})
BUSY_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable",
                        "ServiceFailure", "InternalFailure", "InternalServiceError", "InternalError"})
NETWORK_ERRORS = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                  botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError,
                  botocore.exceptions.HTTPClientError)


@dataclass(frozen=True)
class AWSSettings:
    region: str = "us-east-1"
    endpoint_url: str = ""
    access_key_id_env_var: str = ""
    secret_access_key_env_var: str = ""
    session_token_env_var: str = ""
    timeout: float = 10.0
    propagation_seconds: float = 20.0  # how long a new key may take to work, and a deleted one to stop

    @classmethod
    def from_settings(cls, settings: dict, *, endpoint_url: str = "", what: str = "AWS") -> AWSSettings:
        raw = dict(settings or {})
        for name in ("access_key_id_env_var", "secret_access_key_env_var"):
            if not raw.get(name):
                raise Misconfigured(f"{what}: the settings must name {name} (the environment variable of "
                                    "Steward's AWS credential).")
        for name in ("access_key_id_env_var", "secret_access_key_env_var", "session_token_env_var"):
            if raw.get(name) and not ENV_VAR.match(str(raw[name])):
                raise Misconfigured(f"{what}: {name} must name an environment variable (A-Z, 0-9, _).")
        endpoint = str(raw.get("endpoint_url") or endpoint_url or "")
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise Misconfigured(f"{what}: the endpoint must be an http(s) URL.")
        try:
            return cls(
                region=str(raw.get("region") or "us-east-1"), endpoint_url=endpoint.rstrip("/"),
                access_key_id_env_var=str(raw["access_key_id_env_var"]),
                secret_access_key_env_var=str(raw["secret_access_key_env_var"]),
                session_token_env_var=str(raw.get("session_token_env_var") or ""),
                timeout=float(raw.get("timeout", 10.0)),
                propagation_seconds=float(raw.get("propagation_seconds", 20.0)),
            )
        except (TypeError, ValueError) as error:
            raise Misconfigured(f"{what}: invalid settings ({error}).") from error

    @classmethod
    def from_target(cls, settings: dict) -> AWSSettings:
        """A ConnectorTarget's settings (the AWS IAM target of an AWS account)."""
        return cls.from_settings(settings, what="The AWS IAM target")

    @property
    def label(self) -> str:
        return f"AWS {self.region}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def _config(self) -> botocore.config.Config:
        timeout = max(1.0, self.timeout)
        return botocore.config.Config(region_name=self.region, connect_timeout=min(5.0, timeout),
                                      read_timeout=timeout, retries={"max_attempts": 2, "mode": "standard"})

    def client(self, service: str, *, access_key_id: str | None = None, secret_access_key: str | None = None):
        """A client with Steward's credential (from the named variables), or with the key given (a proof)."""
        token = None
        if access_key_id is None:
            access_key_id = env_value(self.access_key_id_env_var, what="the AWS access key id")
            secret_access_key = env_value(self.secret_access_key_env_var, what="the AWS secret access key")
            token = env_value(self.session_token_env_var, what="the AWS session token", required=False) or None
        session = boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                                        aws_session_token=token, region_name=self.region)
        return session.client(service, endpoint_url=self.endpoint_url or None, config=self._config())


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def key_refused(error: botocore.exceptions.ClientError) -> bool:
    """The request was refused because of the key that signed it (unknown, inactive, wrong secret)."""
    return error_code(error) in SIGN_IN_CODES


@contextlib.contextmanager
def aws_errors(what: str, *, values=()):
    """Map boto3 failures onto connector errors, with a reason free of secret values."""
    try:
        yield
    except ConnectorError:
        raise
    except NETWORK_ERRORS as error:
        raise Unreachable(f"{what}: AWS did not answer ({type(error).__name__}).") from None
    except botocore.exceptions.NoCredentialsError:
        raise Misconfigured(f"{what}: no AWS credential is configured.") from None
    except botocore.exceptions.ClientError as error:
        code = error_code(error)
        message = scrub(str(error.response.get("Error", {}).get("Message", "")), values)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in SIGN_IN_CODES:
            raise Misconfigured(f"{what}: AWS refused Steward's own credential ({code}).") from None
        if code in DENIED_CODES:
            raise PermissionRefused(f"{what}: AWS denied it ({code}: {message}).") from None
        if code in MISSING_CODES:
            raise ReferenceBroken(f"{what}: {message or code}.") from None
        if code in BUSY_CODES or status >= 500:
            raise Unreachable(f"{what}: AWS is unavailable ({code or status}).") from None
        raise ConnectorError(f"{what}: AWS refused ({code}: {message}).") from None
    except botocore.exceptions.BotoCoreError as error:
        raise ConnectorError(scrub(f"{what}: {type(error).__name__} ({error}).", values)) from None
