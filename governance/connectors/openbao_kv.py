"""OpenBao (Vault-compatible) KV version 2, through hvac.

Reference: SecretStore.address (URL), SecretStore.settings {"mount": "secret", "value_key":
"value", "namespace": "", "verify_tls": true, "timeout": 10}, SecretStore.credential_env_var
(the NAME of the environment variable holding the OpenBao token) and Credential.store_path,
given as "<mount>/data/<path>" (the API path), "<mount>/<path>" (the CLI form) or "<path>".

observe reads metadata only (never the value). rotate writes a new version with check-and-set
on the current one and reads it back; suspend soft-deletes the current version (reads fail,
undelete restores it); revoke destroys every version (permanent). provision writes a new random
value to a path that holds no live secret (check-and-set on its version) and reads it back; its
undo deletes the path it created (or destroys the version it wrote).
"""

from __future__ import annotations

import contextlib
import hmac
import os
from dataclasses import dataclass

import hvac
import hvac.exceptions
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
    ProvisionResult,
    ProvisionSpec,
    ReferenceBroken,
    RotationResult,
    Unreachable,
    VerificationFailed,
    env_value,
    new_secret_value,
    now,
    parse_time,
    scrub,
)
from governance.connectors.drift import (
    DeclaredPrivilege,
    DriftReport,
    beyond_baseline,
    kv_version_change,
    policy_excess,
)


class Conflict(ConnectorError):
    """The secret changed between read and write (check-and-set refused): retry."""

    transient = True
    code = "conflict"


@dataclass(frozen=True)
class StorePlan:
    """Where a new credential's first secret goes, and the version its write will create.

    Its step (recorded before the write) says how to take it back:
        kv-new:<path>@<version>   the path did not exist: undo deletes the path with its metadata
        kv:<path>@<version>       the path had only destroyed or deleted versions: undo destroys this one
    """

    path: str
    cas: int
    new_path: bool

    @property
    def step(self) -> str:
        return f"{'kv-new' if self.new_path else 'kv'}:{self.path}@{self.cas + 1}"


UNWRITTEN = "unwritten:"  # marks a store step whose write OpenBao refused: there is nothing of it to undo


def is_store_step(step: str) -> bool:
    return step.startswith(("kv-new:", "kv:"))


def undo_order(created) -> list[str]:
    """The recorded steps to take back, newest first, without the writes OpenBao refused."""
    created = list(created)
    refused = {step[len(UNWRITTEN):] for step in created if step.startswith(UNWRITTEN)}
    return [step for step in reversed(created) if not step.startswith(UNWRITTEN) and step not in refused]


@dataclass(frozen=True)
class OpenBaoSettings:
    address: str
    token_env_var: str
    mount: str = "secret"
    namespace: str = ""
    verify_tls: bool = True
    timeout: float = 10.0
    value_key: str = "value"

    @classmethod
    def from_store(cls, store, *, default_mount: str = "secret") -> OpenBaoSettings:
        raw = dict(store.settings or {})
        if not store.address.startswith(("http://", "https://")):
            raise Misconfigured(f"Store {store.name}: the address must be an http(s) URL.")
        try:
            return cls(
                address=store.address.rstrip("/"),
                token_env_var=store.credential_env_var,
                mount=str(raw.get("mount", default_mount)).strip("/"),
                namespace=str(raw.get("namespace", "")),
                verify_tls=bool(raw.get("verify_tls", True)),
                timeout=float(raw.get("timeout", 10.0)),
                value_key=str(raw.get("value_key", "value")),
            )
        except (TypeError, ValueError) as error:
            raise Misconfigured(f"Store {store.name}: invalid settings ({error}).") from error

    def client(self) -> hvac.Client:
        """An hvac client whose HTTP session reads the proxy and CA settings of the environment once.

        requests would otherwise re-read every environment variable on each request (a large share
        of a rotation's own time), so the session's trust_env is turned off after taking them.
        """
        token = env_value(self.token_env_var, what="the OpenBao token")
        session = requests.Session()
        verify = self.verify_tls
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.proxies.update(requests.utils.get_environ_proxies(self.address))
        session.trust_env = False
        return hvac.Client(url=self.address, token=token, namespace=self.namespace or None, verify=verify,
                           timeout=self.timeout, session=session)


@contextlib.contextmanager
def openbao_errors(what: str, *, values=()):
    """Map hvac/requests failures onto connector errors, with a reason free of secret values."""
    try:
        yield
    except ConnectorError:
        raise
    except (requests.ConnectionError, requests.Timeout) as error:
        raise Unreachable(f"{what}: OpenBao did not answer ({type(error).__name__}).") from None
    except hvac.exceptions.Forbidden as error:
        raise PermissionRefused(scrub(f"{what}: permission denied by OpenBao ({error}).", values)) from None
    except hvac.exceptions.InvalidPath as error:
        raise ReferenceBroken(scrub(f"{what}: no such path in OpenBao ({error}).", values)) from None
    except (hvac.exceptions.InternalServerError, hvac.exceptions.BadGateway, hvac.exceptions.VaultDown,
            hvac.exceptions.VaultNotInitialized, hvac.exceptions.RateLimitExceeded) as error:
        raise Unreachable(f"{what}: OpenBao is unavailable ({type(error).__name__}).") from None
    except hvac.exceptions.InvalidRequest as error:
        if "check-and-set" in str(error):
            raise Conflict(f"{what}: the secret changed concurrently (check-and-set refused).") from None
        raise ConnectorError(scrub(f"{what}: OpenBao refused the request ({error}).", values)) from None
    except hvac.exceptions.VaultError as error:
        reason = f"{what}: OpenBao error {type(error).__name__} ({error})."
        raise ConnectorError(scrub(reason, values)) from None


class OpenBaoKV(Connector):
    kind = "openbao_kv"

    def __init__(self, settings: OpenBaoSettings):
        self.settings = settings
        self._client: hvac.Client | None = None

    @property
    def client(self) -> hvac.Client:
        if self._client is None:
            self._client = self.settings.client()
        return self._client

    @property
    def kv(self):
        return self.client.secrets.kv.v2

    # Paths and low-level operations, shared with the PostgreSQL and Redis connectors

    def path_of(self, store_path: str) -> str:
        path = store_path.strip().strip("/")
        mount = self.settings.mount
        for prefix in (f"{mount}/data/", f"{mount}/"):
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        if not path:
            raise ReferenceBroken("The credential names no path in its store.")
        return path

    def label(self, path: str) -> str:
        return f"{self.settings.mount}/{path}"

    def metadata(self, path: str) -> dict:
        with openbao_errors(f"Reading the metadata of {self.label(path)}"):
            response = self.kv.read_secret_metadata(path=path, mount_point=self.settings.mount)
        return response["data"]

    def _read(self, path: str, version: int | None = None) -> dict | None:
        """The raw read response; a deleted or destroyed version answers 404 with its metadata."""
        with openbao_errors(f"Reading {self.label(path)}"):
            try:
                return self.kv.read_secret_version(path=path, version=version, mount_point=self.settings.mount,
                                                   raise_on_deleted_version=False)
            except hvac.exceptions.InvalidPath as error:
                body = error.json if isinstance(getattr(error, "json", None), dict) else {}
                if (body.get("data") or {}).get("metadata"):
                    return body
                raise

    def read_current(self, path: str) -> tuple[dict | None, int, dict]:
        """(data, version, version metadata) of the current version; data is None when deleted or destroyed."""
        response = self._read(path)
        if not response or not (response.get("data") or {}).get("metadata"):
            raise ReferenceBroken(f"{self.label(path)} has no versions.")
        data = response["data"]
        return data.get("data"), int(data["metadata"]["version"]), data["metadata"]

    def read_value(self, path: str, version: int | None = None) -> dict | None:
        """The data of a version (current by default), or None when it is deleted, destroyed or absent."""
        try:
            response = self._read(path, version)
        except ReferenceBroken:
            return None
        return ((response or {}).get("data") or {}).get("data")

    def write_value(self, path: str, data: dict, *, cas: int | None) -> tuple[int, object]:
        values = [str(v) for v in data.values()]
        with openbao_errors(f"Writing {self.label(path)}", values=values):
            response = self.kv.create_or_update_secret(path=path, secret=data, cas=cas,
                                                       mount_point=self.settings.mount)
        written = response["data"]
        return int(written["version"]), parse_time(written.get("created_time"))

    def current_version(self, path: str) -> int:
        return int(self.metadata(path).get("current_version") or 0)

    def written_since(self, path: str, *, recorded: str, since) -> tuple[int, dict, object] | None:
        """(version, data, created) of the current version when it is newer than the recorded one, was
        written at or after since and is readable; None otherwise (what a lost attempt may have written)."""
        meta = self.metadata(path)
        current = int(meta.get("current_version") or 0)
        if not current or (str(recorded).isdigit() and current <= int(recorded)):
            return None
        info = (meta.get("versions") or {}).get(str(current)) or {}
        created = parse_time(info.get("created_time"))
        if created is None or created < since or info.get("destroyed") or info.get("deletion_time"):
            return None
        data = self.read_value(path, current)
        return (current, data, created) if data else None

    def verify_written(self, path: str, version: int, key: str, value: str) -> tuple[str, ...]:
        """Read the current version back: it must be the one just written, holding the new value."""
        data, current, meta = self.read_current(path)
        if current != version:
            raise VerificationFailed(f"{self.label(path)}: version {version} was written but version {current} "
                                     "is current.")
        if data is None or not hmac.compare_digest(str(data.get(key, "")), value):
            raise VerificationFailed(f"{self.label(path)}: version {version} does not hold the value written.")
        created = parse_time(meta.get("created_time"))
        return (f"OpenBao {self.label(path)}: version {version} is current (created "
                f"{created:%Y-%m-%d %H:%M:%S} UTC) and holds the new value.",)

    # The connector interface

    def observe(self, ref: CredentialRef) -> Observation:
        path = self.path_of(ref.store_path)
        meta = self.metadata(path)
        version = int(meta.get("current_version") or 0)
        info = (meta.get("versions") or {}).get(str(version))
        if not version or info is None:
            raise ReferenceBroken(f"{self.label(path)} has no versions.")
        state = "destroyed" if info.get("destroyed") else "deleted" if info.get("deletion_time") else "active"
        return Observation(version=str(version), created_at=parse_time(info.get("created_time")), state=state,
                           detail=f"{self.label(path)} version {version} ({state})")

    def rotate(self, ref: CredentialRef) -> RotationResult:
        path = self.path_of(ref.store_path)
        data, current, _meta = self.read_current(path)
        value = new_secret_value()
        data = {**(data or {}), self.settings.value_key: value}
        version, _created = self.write_value(path, data, cas=current)
        proof = self.verify_written(path, version, self.settings.value_key, value)
        return RotationResult(version=str(version), rotated_at=now(),
                              proof=(*proof, f"Previous version {current} kept in the store's history."))

    def rotation_resume(self, ref: CredentialRef, *, since) -> RotationResult | None:
        path = self.path_of(ref.store_path)
        found = self.written_since(path, recorded=ref.store_version, since=since)
        if found is None or not str(found[1].get(self.settings.value_key) or ""):
            return None
        version, _data, created = found
        return RotationResult(version=str(version), rotated_at=created, proof=(
            f"OpenBao {self.label(path)}: version {version}, written {created:%Y-%m-%d %H:%M:%S} UTC by an attempt "
            "whose worker was lost, is current and holds a value: recorded as this rotation, not rotated again.",
            f"Previous version {ref.store_version or 'unknown'} kept in the store's history.",
        ))

    def suspend(self, ref: CredentialRef) -> ActionResult:
        path = self.path_of(ref.store_path)
        with openbao_errors(f"Deleting the current version of {self.label(path)}"):
            self.kv.delete_latest_version_of_secret(path=path, mount_point=self.settings.mount)
        data, version, meta = self.read_current(path)
        if data is not None or not meta.get("deletion_time"):
            raise VerificationFailed(f"{self.label(path)}: version {version} can still be read after deletion.")
        return ActionResult("suspend", now(), (
            f"OpenBao {self.label(path)}: version {version} deleted at {meta['deletion_time']}; a read returns "
            "no value.",
        ))

    def reactivate(self, ref: CredentialRef) -> ActionResult:
        path = self.path_of(ref.store_path)
        _, version, _ = self.read_current(path)
        with openbao_errors(f"Restoring the current version of {self.label(path)}"):
            self.kv.undelete_secret_versions(path=path, versions=[version], mount_point=self.settings.mount)
        if self.read_current(path)[0] is None:
            raise VerificationFailed(f"{self.label(path)}: version {version} still cannot be read after undelete.")
        return ActionResult("reactivate", now(), (f"OpenBao {self.label(path)}: version {version} readable again.",))

    def reactivate_rotated(self, ref: CredentialRef) -> ActionResult:
        """A new version with a new value; the version the suspension deleted stays deleted (never undeleted)."""
        path = self.path_of(ref.store_path)
        _, deleted, meta = self.read_current(path)
        value = new_secret_value()
        version, _created = self.write_value(path, {self.settings.value_key: value}, cas=deleted)
        proof = list(self.verify_written(path, version, self.settings.value_key, value))
        if deleted and self.read_value(path, deleted) is not None:
            raise VerificationFailed(f"{self.label(path)}: the suspended version {deleted} can be read again.")
        proof.append(f"OpenBao {self.label(path)}: the suspended version {deleted} stays deleted; a read of it "
                     "returns no value.")
        result = RotationResult(version=str(version), rotated_at=now(), proof=tuple(proof))
        return ActionResult("reactivate", now(), result.proof, rotation=result)

    def revoke(self, ref: CredentialRef) -> ActionResult:
        path = self.path_of(ref.store_path)
        versions = [int(v) for v, info in self.metadata(path)["versions"].items() if not info.get("destroyed")]
        if versions:
            with openbao_errors(f"Destroying the versions of {self.label(path)}"):
                self.kv.destroy_secret_versions(path=path, versions=versions, mount_point=self.settings.mount)
        after = self.metadata(path)["versions"]
        alive = sorted(int(v) for v, info in after.items() if not info.get("destroyed"))
        if alive or self.read_current(path)[0] is not None:
            raise VerificationFailed(f"{self.label(path)}: versions {alive} are not destroyed.")
        return ActionResult("revoke", now(), (
            f"OpenBao {self.label(path)}: every version destroyed ({len(after)} in total); a read returns "
            "no value.",
        ))

    def capabilities(self, paths: list[str]) -> dict[str, list[str]]:
        with openbao_errors("Checking the token's capabilities"):
            response = self.client.adapter.post("/v1/sys/capabilities-self", json={"paths": paths})
        data = response.get("data", response) if isinstance(response, dict) else response.json()["data"]
        return {path: data.get(path, []) for path in paths}

    def probe_paths(self, recorder: ProbeRecorder, path: str, *, write: bool = True) -> None:
        """Token valid, capabilities sufficient, reference resolves: nothing is changed."""
        mount = self.settings.mount

        def token():
            with openbao_errors("Looking up the token"):
                info = self.client.auth.token.lookup_self()["data"]
            return f"token valid, policies {', '.join(info.get('policies') or [])}"

        if not recorder.check("OpenBao reachable and token valid", token):
            return
        needed = {f"{mount}/metadata/{path}": {"read"}}
        if write:
            needed.update({
                # suspend deletes the current version with DELETE on the data path
                f"{mount}/data/{path}": {"read", "update", "delete"},
                f"{mount}/delete/{path}": {"update"},
                f"{mount}/undelete/{path}": {"update"},
                f"{mount}/destroy/{path}": {"update"},
            })

        def caps():
            granted = self.capabilities(list(needed))
            missing = [f"{p} ({', '.join(sorted(w - set(granted[p])))})" for p, w in needed.items()
                       if "root" not in granted[p] and not w <= set(granted[p])]
            if missing:
                raise PermissionRefused("missing capabilities: " + "; ".join(missing))
            return f"capabilities sufficient on {len(needed)} paths"

        recorder.check("OpenBao permissions", caps)
        recorder.check("Reference resolves", lambda: f"version {self.current_version(path)} is current")

    def probe(self, ref: CredentialRef) -> ProbeResult:
        recorder = ProbeRecorder()
        try:
            path = self.path_of(ref.store_path)
        except ConnectorError as error:
            recorder.fail("Reference", error.reason)
            return recorder.result()
        self.probe_paths(recorder, path)
        return recorder.result()

    # Provisioning: a new credential's first secret, written only to a free path (never overwriting)

    def store_plan(self, store_path: str) -> StorePlan:
        """Check that the path holds no live secret (ConnectorError otherwise) and plan the write."""
        path = self.path_of(store_path)
        try:
            meta = self.metadata(path)
        except ReferenceBroken:
            return StorePlan(path=path, cas=0, new_path=True)
        current = int(meta.get("current_version") or 0)
        info = (meta.get("versions") or {}).get(str(current)) or {}
        if current and not info.get("destroyed") and not info.get("deletion_time"):
            raise ConnectorError(f"OpenBao {self.label(path)} already holds a secret (version {current}): Steward "
                                 "writes a new credential's secret only to a free path. Choose another path.")
        return StorePlan(path=path, cas=current, new_path=not current)

    def store_write(self, plan: StorePlan, data: dict, *, key: str, record) -> tuple[int, tuple[str, ...]]:
        """Record the plan's step, write the new secret with check-and-set, read it back: (version, proof)."""
        record(plan.step)
        try:
            version, _created = self.write_value(plan.path, data, cas=plan.cas)
        except Unreachable:
            raise  # the write may have happened: the step stays, and its undo looks
        except ConnectorError:
            record(UNWRITTEN + plan.step)  # OpenBao answered and refused: the version is not ours
            raise
        if version != plan.cas + 1:
            raise VerificationFailed(f"OpenBao {self.label(plan.path)}: version {version} was written, not "
                                     f"{plan.cas + 1} as planned.")
        return version, self.verify_written(plan.path, version, key, str(data[key]))

    def store_undo(self, step: str) -> str:
        """Take back a recorded store step (idempotent: what is already gone is reported as such)."""
        prefix, _, rest = step.partition(":")
        path, _, version_text = rest.rpartition("@")
        version, label = int(version_text), self.label(path)
        try:
            meta = self.metadata(path)
        except ReferenceBroken:
            return f"OpenBao {label}: nothing there (already removed, or never written)."
        versions = meta.get("versions") or {}
        if str(version) not in versions:
            return f"OpenBao {label}: version {version} was never written."
        if prefix == "kv-new":
            if set(versions) - {str(version)}:
                raise ConnectorError(f"OpenBao {label}: other versions appeared beside version {version}; "
                                     "the path is not deleted.")
            with openbao_errors(f"Deleting {label}"):
                self.kv.delete_metadata_and_all_versions(path=path, mount_point=self.settings.mount)
            try:
                self.metadata(path)
            except ReferenceBroken:
                return f"OpenBao {label}: deleted with its metadata (the path was new); a read finds nothing."
            raise VerificationFailed(f"OpenBao {label}: the path still exists after its deletion.")
        if not versions[str(version)].get("destroyed"):
            with openbao_errors(f"Destroying version {version} of {label}"):
                self.kv.destroy_secret_versions(path=path, versions=[version], mount_point=self.settings.mount)
        if not ((self.metadata(path).get("versions") or {}).get(str(version)) or {}).get("destroyed"):
            raise VerificationFailed(f"OpenBao {label}: version {version} is not destroyed.")
        return f"OpenBao {label}: version {version} destroyed; a read of it returns no value."

    def provision(self, ref: CredentialRef, spec: ProvisionSpec) -> ProvisionResult:
        """A secret generated by Steward: a new random value written to the free path, then read back.

        Its scopes are not interpreted here: what the value may do is decided where it is used."""
        plan = self.store_plan(ref.store_path)
        created = []

        def record(step: str) -> None:
            spec.record(step)
            created.append(step)

        version, proof = self.store_write(plan, {self.settings.value_key: new_secret_value()},
                                          key=self.settings.value_key, record=record)
        return ProvisionResult(version=str(version), provisioned_at=now(), created=tuple(created), proof=(
            *proof, "The value was generated by Steward; only OpenBao holds it."))

    def provision_undo(self, ref: CredentialRef, spec: ProvisionSpec, created) -> tuple[str, ...]:
        return tuple(self.store_undo(step) for step in undo_order(created) if is_store_step(step))
    def token_policies(self, identifier: str) -> tuple[str, tuple[str, ...]] | None:
        """The policies of the OpenBao identity a credential names, or None when it names none:
        "approle/<role>" (the AppRole's token_policies) or "accessor/<accessor>" (a token, looked up by
        its accessor, so Steward never needs the token itself)."""
        kind, _, name = identifier.partition("/")
        if kind == "approle" and name:
            with openbao_errors(f"Reading AppRole {name}"):
                response = self.client.read(f"auth/approle/role/{name}")
            if not response:
                raise ReferenceBroken(f"AppRole {name} does not exist.")
            return f"AppRole {name}", tuple(response["data"].get("token_policies") or ())
        if kind == "accessor" and name:
            with openbao_errors("Looking up a token by its accessor"):
                response = self.client.auth.token.lookup_accessor(name)
            data = response["data"]
            return f"token {data.get('display_name') or name}", tuple(data.get("policies") or ())
        return None

    def observe_privilege(self, ref: CredentialRef, declared: DeclaredPrivilege) -> DriftReport:
        """A KV version Steward did not write; for an AppRole or token credential, its policies."""
        path = self.path_of(ref.store_path)
        version = str(self.current_version(path))
        changes = kv_version_change(version, declared, f"OpenBao {self.label(path)}")
        checked = [f"OpenBao {self.label(path)}: current version {version}."]
        privileges: tuple[str, ...] = ()
        excess: tuple[str, ...] = ()
        found = self.token_policies(ref.identifier)
        if found is not None:
            label, policies = found
            privileges = tuple(f"policy {p}" for p in sorted(policies))
            flagged = policy_excess(policies, declared)
            excess = (*flagged.values(),
                      *(() if declared.scopes else beyond_baseline(privileges, declared.baseline, flagged=flagged)))
            checked.append(f"OpenBao {label}: policies {', '.join(sorted(policies)) or '(none)'}.")
        return DriftReport(privileges=privileges, excess=tuple(excess), changes=changes,
                           checked=tuple(checked))
