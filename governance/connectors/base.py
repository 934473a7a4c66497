"""The connector interface: typed references, results and errors every connector shares.

A connector acts on one external system (OpenBao KV, OpenBao PKI, a PostgreSQL server, a Redis
server) for one credential. It is deliberately small: observe (metadata only), rotate,
suspend, reactivate, revoke, and probe (verification mode: prove it could act, change nothing);
provision / provision_undo (create a new identity with its declared scope, or compensate it) where
the system allows it, Unsupported elsewhere.
Every state-changing call verifies its own effect before it returns; a connector that cannot
reach its system, or whose verification fails, raises a ConnectorError with the reason. Nothing
is reported done on hope.

Generated secret values live only in memory and in OpenBao: results carry versions, times and
human-readable proof lines, never values; error texts are scrubbed of any value they might echo.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from governance.connectors.drift import DeclaredPrivilege, DriftReport

REDACTED = "[redacted]"


# Errors ---------------------------------------------------------------------------------------

class ConnectorError(Exception):
    """A connector could not do what was asked. `reason` is safe to store and show."""

    transient = False
    code = "error"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Unreachable(ConnectorError):
    """Network trouble, timeouts, a server answering 5xx: worth retrying."""

    transient = True
    code = "unreachable"


class Misconfigured(ConnectorError):
    """Settings are missing or wrong, or the named environment variable is not set."""

    code = "misconfigured"


class PermissionRefused(ConnectorError):
    """The connector's own credential may not do this."""

    code = "permission"


class ReferenceBroken(ConnectorError):
    """The credential's reference (path, serial, role, user) does not resolve."""

    code = "broken"


class VerificationFailed(ConnectorError):
    """The action ran but its effect could not be proven."""

    code = "verification"


class Unsupported(ConnectorError):
    """No connector acts on this kind of store or credential."""

    code = "unsupported"


def scrub(text: str, values: Iterable[str | None]) -> str:
    """Remove secret values from a text (an error message that might echo a request)."""
    for value in values:
        if value:
            text = text.replace(value, REDACTED)
    return text[:1000]


# References and results ---------------------------------------------------------------------

@dataclass(frozen=True)
class CredentialRef:
    """What a connector needs to know about a credential: its reference, never its value."""

    pk: int | None
    name: str
    kind: str
    identifier: str
    store_path: str
    store_version: str = ""
    expires_at: dt.datetime | None = None
    max_age_days: int | None = None
    # Certificates: the hosts the credential's system declares (None: a reference built without a system).
    allowed_names: tuple[str, ...] | None = None

    @classmethod
    def from_credential(cls, credential, *, max_age_days: int | None = None) -> CredentialRef:
        system = credential.system if credential.system_id else None
        return cls(
            pk=credential.pk, name=credential.name, kind=credential.kind, identifier=credential.identifier,
            store_path=credential.store_path, store_version=credential.store_version or "",
            expires_at=credential.expires_at, max_age_days=max_age_days or credential.rotation_max_age_days,
            allowed_names=tuple(system.hosts or ()) if system is not None else None,
        )


@dataclass(frozen=True)
class Observation:
    """Metadata read from the store: the version in use, when it was made, when it expires."""

    version: str
    created_at: dt.datetime | None
    expires_at: dt.datetime | None = None
    state: str = "active"  # active, deleted, destroyed, revoked, disabled
    detail: str = ""


@dataclass(frozen=True)
class RotationResult:
    """A verified rotation: the new version reference and the proof that it works."""

    version: str
    rotated_at: dt.datetime
    proof: tuple[str, ...]
    expires_at: dt.datetime | None = None
    identifier: str | None = None  # a new serial (certificates)
    store_path: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """A verified suspension, reactivation or revocation, with its proof."""

    action: str  # suspend, reactivate, revoke
    performed_at: dt.datetime
    proof: tuple[str, ...]
    rotation: RotationResult | None = None  # when reactivating made a new secret (a new certificate)


@dataclass(frozen=True)
class ProbeCheck:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ProbeResult:
    """Verification mode: reachability and permissions checked, nothing changed."""

    checks: tuple[ProbeCheck, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def summary(self) -> str:
        failed = [c for c in self.checks if not c.ok]
        if not failed:
            return "; ".join(f"{c.name}: {c.detail}" for c in self.checks)
        return "; ".join(f"{c.name} FAILED: {c.detail}" for c in failed)


class ProbeRecorder:
    """Collects probe checks; a check that raises a ConnectorError is recorded as failed."""

    def __init__(self):
        self.checks: list[ProbeCheck] = []

    def check(self, name: str, call) -> bool:
        try:
            detail = call()
        except ConnectorError as error:
            self.checks.append(ProbeCheck(name, False, error.reason))
            return False
        self.checks.append(ProbeCheck(name, True, detail or "ok"))
        return True

    def fail(self, name: str, detail: str) -> None:
        self.checks.append(ProbeCheck(name, False, detail))

    def result(self) -> ProbeResult:
        return ProbeResult(tuple(self.checks))


def _no_record(step: str) -> None:
    """The default step recorder of a ProvisionSpec: nothing is kept (a caller that can resume passes one)."""


@dataclass(frozen=True)
class ProvisionSpec:
    """What to create for a credential that does not exist yet: its declared scope and the run's key.

    scopes are the credential's declared scopes (Credential.scopes), already checked by
    governance.connectors.scopes.parse_scopes for this connector's kind; a connector grants exactly
    these and nothing more. record(step) is called with a step's name *before* the step is tried, so
    that a run whose worker dies mid-way knows everything it may have created; provision_undo treats
    a recorded step whose object is absent as already undone. run_key names the run (the same key for
    a redelivered job). options carries connector-specific settings (AWS policy names, PKI alt names).
    """

    scopes: tuple[str, ...] = ()
    privilege_level: str = ""
    run_key: str = ""
    allowed_names: tuple[str, ...] = ()  # certificates: the hosts the system declares
    ttl: dt.timedelta | None = None  # certificates, tokens: the lifetime the policy allows
    options: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    record: Callable[[str], None] = field(default=_no_record, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class ProvisionResult:
    """A verified provisioning: what was created, where its secret went, and the proof that it works."""

    version: str  # the store's version of the new secret
    provisioned_at: dt.datetime
    proof: tuple[str, ...]
    created: tuple[str, ...]  # the steps done, in order (what provision_undo would remove)
    identifier: str | None = None  # when the system named the identity (a serial, an access key id)
    store_path: str | None = None
    expires_at: dt.datetime | None = None
    fingerprint: str | None = None


# The interface --------------------------------------------------------------------------------

class Connector(ABC):
    """One external system's lifecycle operations for a credential."""

    kind: str = ""
    # True when suspend/revoke act where the credential is accepted (the issuer: a database role, an ACL
    # user, a CA's revocation list, a cloud key), so a suspended credential is refused everywhere. A
    # connector that only hides Steward's stored copy (KV) leaves the kill switch a step done by hand.
    revokes_at_issuer: bool = False

    def batch_session(self):
        """A scope within which the connector may keep what it opens (an admin connection) for the next
        action, closing it at the end (the batch job path: many rotations on one target). None by default."""
        return contextlib.nullcontext()

    @abstractmethod
    def observe(self, ref: CredentialRef) -> Observation:
        """Read metadata (version, creation and expiry times) without reading the value where possible."""

    @abstractmethod
    def rotate(self, ref: CredentialRef) -> RotationResult:
        """Make a new secret, store it, and prove that the new one works (and the old one no longer does)."""

    def rotate_begin(self, ref: CredentialRef) -> Callable[[], RotationResult]:
        """rotate() in two steps: the change made now, its proof possibly still running; the returned
        function waits for the proof and returns the proven result, or raises. Nothing is recorded
        before it returns. By default the whole rotation runs now."""
        result = self.rotate(ref)
        return lambda: result

    @abstractmethod
    def suspend(self, ref: CredentialRef) -> ActionResult:
        """Make the credential unusable, reversibly, and prove it."""

    @abstractmethod
    def reactivate(self, ref: CredentialRef) -> ActionResult:
        """Undo a suspension, and prove the credential works again."""

    @abstractmethod
    def revoke(self, ref: CredentialRef) -> ActionResult:
        """Make the credential unusable for good, and prove it."""

    @abstractmethod
    def probe(self, ref: CredentialRef) -> ProbeResult:
        """Verification mode: check reachability and permissions for every action; change nothing."""

    def reactivate_rotated(self, ref: CredentialRef) -> ActionResult:
        """Bring a suspended credential back with a NEW secret, and prove the old one is still refused.

        Reactivation after a kill switch never restores the value that was live during the incident.
        The result carries the rotation (ActionResult.rotation). This default refuses: a connector that
        cannot do both in one proven move leaves it to a person (the kill switch makes it a manual step).
        """
        raise Unsupported(f"{type(self).__name__} cannot bring {ref.name} back with a new secret: do it by hand.")

    def rotation_resume(self, ref: CredentialRef, *, since: dt.datetime) -> RotationResult | None:
        """Before a rotation is tried again: the rotation an earlier attempt (whose worker was lost) made.

        The store's current version is read first: when it is newer than the recorded one
        (ref.store_version) and was written after since, that attempt's work is completed where
        needed and proven, and returned, so that it is recorded rather than overwritten by a second
        new version. None when there is nothing of it to find; then the rotation runs as usual. This
        default finds nothing: a connector whose new secret lived only in memory (a certificate's
        private key) has no earlier work to recover.
        """
        return None

    def observe_privilege(self, ref: CredentialRef, declared: DeclaredPrivilege) -> DriftReport:
        """Drift: read what the identity may do and whether its secret changed outside Steward, and judge it
        against declared (governance.connectors.drift). Reads only. Unsupported where the system has no
        privileges of its own to read."""
        raise Unsupported(f"The {self.kind or 'this'} connector reads no privileges.")

    def provision(self, ref: CredentialRef, spec: ProvisionSpec) -> ProvisionResult:
        """Create the identity ref names with exactly spec's scope, write its new secret to ref.store_path,
        and prove it works (sign-in, read-back) and that an undeclared privilege is refused. On any failure
        the connector raises a ConnectorError; the caller then runs provision_undo with the recorded steps."""
        raise Unsupported(f"Steward cannot provision {ref.kind} credentials through the {self.kind or 'this'} "
                          "connector: create it by hand and register it.")

    def provision_undo(self, ref: CredentialRef, spec: ProvisionSpec, created: Iterable[str]) -> tuple[str, ...]:
        """Compensate a failed or abandoned provisioning: remove what the recorded steps created, newest
        first, skipping what is already absent (so it may run twice). Returns the proof lines."""
        raise Unsupported(f"The {self.kind or 'this'} connector provisions nothing, so it has nothing to undo.")


# Small shared helpers -------------------------------------------------------------------------

def password_proof(works: Callable[[str], bool], password: str | None, *, should_work: bool, attempt: str) -> str:
    """Prove an account change with the stored password: a sign-in must work, or be refused, as the
    change says; otherwise the change is not proven (VerificationFailed). attempt names the try, for
    example "A sign-in of app_role" or "AUTH as app_user"."""
    if password is None:
        return f"No stored password to test with: {attempt} was not tried."
    if works(password) != should_work:
        raise VerificationFailed(f"{attempt} with the stored password {'fails' if should_work else 'still works'}.")
    return f"{attempt} with the stored password {'works' if should_work else 'is refused'}."


def destroy_stored_password(kv, ref: CredentialRef) -> list[str]:
    """Destroy a revoked account's password in the store; the account is gone either way, so a failure
    here is recorded in the proof rather than undoing the revocation."""
    try:
        return list(kv.revoke(ref).proof)
    except ConnectorError as error:
        return [f"The stored password was not destroyed: {error.reason}"]


def env_value(var_name: str, *, what: str, required: bool = True) -> str | None:
    """Read a connector credential from the environment variable the settings name."""
    if not var_name:
        if required:
            raise Misconfigured(f"No environment variable is named for {what}.")
        return None
    value = os.environ.get(var_name)
    if value is None and required:
        raise Misconfigured(f"The environment variable {var_name} ({what}) is not set.")
    return value


def new_secret_value() -> str:
    """A fresh random secret (256 bits), URL-safe so that every target accepts it."""
    return secrets.token_urlsafe(32)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_time(value: str | int | float | None) -> dt.datetime | None:
    """OpenBao's RFC 3339 times (nanoseconds allowed) or Unix seconds, as aware datetimes."""
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    text = value.rstrip("Z")
    if "." in text:
        head, fraction = text.split(".", 1)
        tz = ""
        for sign in ("+", "-"):
            if sign in fraction:
                fraction, tz = fraction.split(sign, 1)
                tz = sign + tz
                break
        text = f"{head}.{fraction[:6]}{tz}"
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
