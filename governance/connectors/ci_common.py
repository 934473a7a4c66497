"""What the CI connectors (GitHub Actions secrets, GitLab CI/CD variables) share.

A CI variable is named by a CILocation: the repository (GitHub "owner/repo", GitLab project path
or id), an environment (GitHub environment, GitLab environment scope; empty for repository-wide)
and the variable's name. A credential whose store is a CI store writes its store_path as
"<repository>/<NAME>" or "<repository>/environments/<environment>/<NAME>"; a CredentialDelivery
names the same three parts in its own fields.

CIVariableConnector implements the Connector interface over three primitives each API provides
(push a value, read its metadata, delete it). A CI variable cannot be disabled, so suspension
deletes it, and reactivation pushes a new value (never the one live during an incident). The
store's API token comes from the environment variable the store names (credential_env_var).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from abc import abstractmethod
from dataclasses import dataclass

import requests

from governance.connectors.base import (
    ActionResult,
    Connector,
    ConnectorError,
    CredentialRef,
    Misconfigured,
    Observation,
    PermissionRefused,
    ProbeRecorder,
    ProbeResult,
    ReferenceBroken,
    RotationResult,
    Unreachable,
    VerificationFailed,
    env_value,
    new_secret_value,
    now,
    scrub,
)

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


@dataclass(frozen=True)
class CILocation:
    repository: str
    environment: str
    name: str

    def __post_init__(self):
        if not self.repository.strip("/"):
            raise ReferenceBroken("The CI variable names no repository or project.")
        if not VARIABLE_NAME.match(self.name):
            raise ReferenceBroken(f"{self.name!r} is not a CI variable name (letters, digits and _).")

    @classmethod
    def from_path(cls, path: str) -> CILocation:
        parts = [p for p in path.strip().strip("/").split("/") if p]
        if len(parts) < 2:
            raise ReferenceBroken(f"{path!r} is not <repository>/<NAME> or <repository>/environments/<env>/<NAME>.")
        name, rest = parts[-1], parts[:-1]
        environment = ""
        if len(rest) >= 3 and rest[-2] == "environments":
            environment, rest = rest[-1], rest[:-2]
        return cls(repository="/".join(rest), environment=environment, name=name)

    @property
    def label(self) -> str:
        where = f"{self.repository} (environment {self.environment})" if self.environment else self.repository
        return f"{self.name} in {where}"


@dataclass(frozen=True)
class CISettings:
    address: str
    token_env_var: str
    timeout: float = 10.0
    verify_tls: bool = True

    @classmethod
    def from_store(cls, store, *, default_address: str) -> CISettings:
        raw = dict(store.settings or {})
        address = (store.address or default_address).rstrip("/")
        if not address.startswith(("http://", "https://")):
            raise Misconfigured(f"Store {store.name}: the address must be an http(s) URL.")
        if not store.credential_env_var:
            raise Misconfigured(f"Store {store.name}: name the environment variable of its API token.")
        try:
            return cls(address=address, token_env_var=store.credential_env_var,
                       timeout=float(raw.get("timeout", 10.0)), verify_tls=bool(raw.get("verify_tls", True)))
        except (TypeError, ValueError) as error:
            raise Misconfigured(f"Store {store.name}: invalid settings ({error}).") from error

    def session(self) -> requests.Session:
        """Proxies and CA bundle read from the environment once (see OpenBaoSettings.client for why)."""
        session = requests.Session()
        session.proxies.update(requests.utils.get_environ_proxies(self.address))
        verify = self.verify_tls
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.verify = verify
        session.trust_env = False
        return session

    def token(self) -> str:
        return env_value(self.token_env_var, what="the CI API token")


@contextlib.contextmanager
def http_errors(what: str, *, values=()):
    try:
        yield
    except ConnectorError:
        raise
    except (requests.ConnectionError, requests.Timeout) as error:
        raise Unreachable(f"{what}: the CI API did not answer ({type(error).__name__}).") from None
    except requests.RequestException as error:
        raise ConnectorError(scrub(f"{what}: {type(error).__name__} ({error}).", values)) from None


def check_status(response: requests.Response, what: str, *, values=(), missing_ok: bool = False) -> bool:
    """Map an answer onto connector errors; False for a 404 when missing_ok, True for any 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return True
    if status == 404 and missing_ok:
        return False
    body = scrub(response.text[:300], values)
    if status == 401:
        raise Misconfigured(f"{what}: the CI API refused Steward's token (401).")
    if status == 403:
        raise PermissionRefused(f"{what}: the token may not do this (403: {body}).")
    if status == 404:
        raise ReferenceBroken(f"{what}: not found (404).")
    if status == 429 or status >= 500:
        raise Unreachable(f"{what}: the CI API is unavailable ({status}).")
    raise ConnectorError(f"{what}: the CI API refused ({status}: {body}).")


@dataclass(frozen=True)
class VariableState:
    """What the CI API says about a variable: when it changed (where it says) and a version reference."""

    version: str
    updated_at: dt.datetime | None
    detail: str


class CIVariableConnector(Connector):
    """The Connector interface for a credential whose store is a CI variable store."""

    system_label = "CI"

    def __init__(self, settings: CISettings):
        self.settings = settings
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = self.settings.session()
        return self._session

    # Primitives (one API each)

    @abstractmethod
    def push(self, location: CILocation, value: str, *, masked: bool = True, protected: bool = True
             ) -> tuple[VariableState, tuple[str, ...]]:
        """Create or update the variable with this value and prove it was accepted: (state, proof)."""

    @abstractmethod
    def state(self, location: CILocation) -> VariableState | None:
        """The variable's metadata, or None when it does not exist (its repository must exist)."""

    @abstractmethod
    def delete(self, location: CILocation) -> None:
        """Delete the variable (absent already is fine)."""

    @abstractmethod
    def check_access(self, location: CILocation) -> str:
        """Verification mode: the token reaches the repository (or environment) and may manage its variables."""

    def withdraw(self, location: CILocation) -> tuple[str, ...]:
        """Delete the variable and prove it is gone."""
        self.delete(location)
        if self.state(location) is not None:
            raise VerificationFailed(f"{self.system_label}: {location.label} still exists after its deletion.")
        return (f"{self.system_label} {self.settings.address}: {location.label} deleted; the API answers 404 for it.",)

    # Interface

    def location(self, ref: CredentialRef) -> CILocation:
        return CILocation.from_path(ref.store_path)

    def observe(self, ref: CredentialRef) -> Observation:
        location = self.location(ref)
        state = self.state(location)
        if state is None:
            raise ReferenceBroken(f"{self.system_label}: {location.label} does not exist.")
        return Observation(version=state.version, created_at=state.updated_at, state="active",
                           detail=f"{self.system_label}: {location.label}: {state.detail}")

    def rotate(self, ref: CredentialRef) -> RotationResult:
        location = self.location(ref)
        if self.state(location) is None:
            raise ReferenceBroken(f"{self.system_label}: {location.label} does not exist: nothing to rotate.")
        state, proof = self.push(location, new_secret_value())
        return RotationResult(version=state.version, rotated_at=now(), proof=(
            *proof, f"{self.system_label}: the previous value was overwritten (a CI variable keeps one value)."))

    def suspend(self, ref: CredentialRef) -> ActionResult:
        location = self.location(ref)
        if self.state(location) is None:
            raise ReferenceBroken(f"{self.system_label}: {location.label} does not exist.")
        proof = self.withdraw(location)
        return ActionResult("suspend", now(), (
            *proof, f"{self.system_label} variables cannot be disabled: deleted; reactivation pushes a new value."))

    def reactivate(self, ref: CredentialRef) -> ActionResult:
        location = self.location(ref)
        state, proof = self.push(location, new_secret_value())
        rotation = RotationResult(version=state.version, rotated_at=now(), proof=proof)
        return ActionResult("reactivate", now(), (
            f"{self.system_label}: {location.label} created again with a new value, not the one live during the "
            "incident.", *proof), rotation=rotation)

    def reactivate_rotated(self, ref: CredentialRef) -> ActionResult:
        """After a kill switch: reactivation here always gives a new secret, so it is the same move."""
        return self.reactivate(ref)

    def revoke(self, ref: CredentialRef) -> ActionResult:
        return ActionResult("revoke", now(), self.withdraw(self.location(ref)))

    def probe(self, ref: CredentialRef) -> ProbeResult:
        recorder = ProbeRecorder()
        try:
            location = self.location(ref)
        except ConnectorError as error:
            recorder.fail("Reference", error.reason)
            return recorder.result()
        if not recorder.check(f"{self.system_label} reachable and token may manage variables",
                              lambda: self.check_access(location)):
            return recorder.result()

        def exists():
            state = self.state(location)
            if state is None:
                raise ReferenceBroken(f"{location.label} does not exist")
            return state.detail

        recorder.check("Variable exists", exists)
        return recorder.result()
