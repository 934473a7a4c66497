"""OpenBao / Vault, read-only: KV v2 metadata, PKI certificates, auth roles, token accessors, database roles.

Settings (DiscoverySource.settings): {"address": "http://127.0.0.1:8200", "namespace": "", "verify_tls": true,
"timeout": 10, "kv_mounts": [] (empty: every KV v2 mount), "pki_mounts": [], "database_mounts": [],
"approle_mounts": [], "token_accessors": true, "privileged_policies": ["root"], "max_paths": 0 (no limit)};
the token is read from the environment variable named by DiscoverySource.credential_env_var.

What it reads: sys/mounts and sys/auth (which engines exist), KV v2 *metadata* (LIST .../metadata, GET
.../metadata/<path>: versions, created/updated times, custom metadata), PKI certificates (public: serial,
subject, expiry), AppRole and token roles (policies, TTLs), token accessors (lookup-accessor: display name,
policies, TTL; never the token), database engine roles (database name, TTLs). What it never reads: a KV
value (.../data/...), a secret id, a token, a database role's credentials or creation statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
from cryptography import x509

from governance.discovery.sources.base import (
    Observed,
    Progress,
    SourceError,
    SourceMisconfigured,
    credential_from_env,
    no_progress,
    setting,
)
from governance.models.discovery import DiscoveredKind


@dataclass(frozen=True)
class OpenBaoSourceSettings:
    address: str
    token_env_var: str
    namespace: str = ""
    verify_tls: bool = True
    timeout: float = 10.0
    kv_mounts: list[str] = field(default_factory=list)
    pki_mounts: list[str] = field(default_factory=list)
    database_mounts: list[str] = field(default_factory=list)
    approle_mounts: list[str] = field(default_factory=list)
    token_accessors: bool = True
    privileged_policies: list[str] = field(default_factory=lambda: ["root"])
    max_paths: int = 0

    @classmethod
    def from_source(cls, source) -> OpenBaoSourceSettings:
        raw = dict(source.settings or {})
        address = str(raw.get("address") or (source.store.address if source.store_id else "")).rstrip("/")
        if not address.startswith(("http://", "https://")):
            raise SourceMisconfigured(f"Source {source.name}: the address must be an http(s) URL.")
        return cls(
            address=address, token_env_var=source.credential_env_var,
            namespace=setting(raw, "namespace", str, ""), verify_tls=setting(raw, "verify_tls", bool, True),
            timeout=setting(raw, "timeout", float, 10.0), kv_mounts=setting(raw, "kv_mounts", list, []),
            pki_mounts=setting(raw, "pki_mounts", list, []), database_mounts=setting(raw, "database_mounts", list, []),
            approle_mounts=setting(raw, "approle_mounts", list, []),
            token_accessors=setting(raw, "token_accessors", bool, True),
            privileged_policies=setting(raw, "privileged_policies", list, ["root"]),
            max_paths=setting(raw, "max_paths", int, 0),
        )


class OpenBaoSource:
    def __init__(self, settings: OpenBaoSourceSettings):
        self.settings = settings
        token = credential_from_env(settings.token_env_var, what="the OpenBao token")
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["X-Vault-Token"] = token
        if settings.namespace:
            self.session.headers["X-Vault-Namespace"] = settings.namespace
        self.session.verify = settings.verify_tls

    # HTTP ---------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, json: dict | None = None, missing_ok: bool = False) -> dict | None:
        url = f"{self.settings.address}/v1/{path}"
        try:
            response = self.session.request(method, url, json=json, timeout=self.settings.timeout)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise SourceError(f"OpenBao at {self.settings.address} did not answer ({type(error).__name__}).") from None
        if response.status_code == 404:
            if missing_ok:
                return None
            raise SourceError(f"OpenBao: {path} does not exist (404).")
        if response.status_code == 403:
            raise SourceError(f"OpenBao refused {method} {path.split('/')[0]}/...: permission denied (403).")
        if response.status_code >= 400:
            raise SourceError(f"OpenBao answered {response.status_code} to {method} {path.split('/')[0]}/....")
        return response.json() if response.content else {}

    def _list(self, path: str) -> list[str]:
        body = self._call("LIST", path, missing_ok=True)
        return list(((body or {}).get("data") or {}).get("keys") or [])

    def _read(self, path: str) -> dict:
        body = self._call("GET", path, missing_ok=True)
        return dict((body or {}).get("data") or {})

    # Walks --------------------------------------------------------------------------------------------
    def observe(self, progress: Progress = no_progress) -> Iterator[Observed]:
        mounts = self._read("sys/mounts") or {}
        mounts = {k: v for k, v in mounts.items() if isinstance(v, dict)}  # older servers mix in request fields
        auth = {k: v for k, v in (self._read("sys/auth") or {}).items() if isinstance(v, dict)}

        def chosen(wanted: list[str], kind: str, source: dict, *, v2: bool = False) -> list[str]:
            found = [name.rstrip("/") for name, spec in source.items() if spec.get("type") == kind
                     and (not v2 or str((spec.get("options") or {}).get("version")) == "2")]
            return [m.strip("/") for m in wanted] if wanted else sorted(found)

        for mount in chosen(self.settings.kv_mounts, "kv", mounts, v2=True):
            yield from self._kv(mount, progress)
        for mount in chosen(self.settings.pki_mounts, "pki", mounts):
            yield from self._pki(mount, progress)
        for mount in chosen(self.settings.database_mounts, "database", mounts):
            yield from self._database(mount)
        for mount in chosen(self.settings.approle_mounts, "approle", auth):
            yield from self._approle(mount)
        yield from self._token_roles()
        if self.settings.token_accessors:
            yield from self._accessors(progress)

    def _privileged(self, policies) -> bool:
        return bool(set(policies or []) & set(self.settings.privileged_policies))

    def _kv(self, mount: str, progress: Progress) -> Iterator[Observed]:
        pending, seen = [""], 0
        while pending:
            folder = pending.pop()
            for key in self._list(f"{mount}/metadata/{quote(folder)}"):
                path = folder + key
                if key.endswith("/"):
                    pending.append(path)
                    continue
                meta = self._read(f"{mount}/metadata/{quote(path)}")
                versions = meta.get("versions") or {}
                current = str(meta.get("current_version") or "")
                state = versions.get(current) or {}
                yield Observed(
                    kind=DiscoveredKind.KV_SECRET, natural_key=f"{mount}/{path}", name=f"{mount}/{path}",
                    facts={"mount": mount, "path": path, "current_version": current,
                           "versions": len(versions), "created_time": meta.get("created_time") or "",
                           "updated_time": meta.get("updated_time") or "",
                           "custom_metadata": dict(meta.get("custom_metadata") or {}),
                           "deleted": bool(state.get("deletion_time")), "destroyed": bool(state.get("destroyed"))},
                )
                seen += 1
                if seen % 1000 == 0:
                    progress(f"KV {mount}: {seen} paths", kv_paths=seen)
                if self.settings.max_paths and seen >= self.settings.max_paths:
                    return

    def _pki(self, mount: str, progress: Progress) -> Iterator[Observed]:
        for serial in self._list(f"{mount}/certs"):
            data = self._read(f"{mount}/cert/{serial}")
            pem = data.get("certificate") or ""
            facts: dict = {"mount": mount, "serial": serial, "revoked": bool(data.get("revocation_time"))}
            name = serial
            try:
                cert = x509.load_pem_x509_certificate(pem.encode())
                subject = cert.subject.rfc4514_string()
                facts.update(subject=subject, not_after=cert.not_valid_after_utc.isoformat(),
                             not_before=cert.not_valid_before_utc.isoformat(),
                             is_ca=_is_ca(cert))
                name = subject or serial
            except ValueError:
                facts["parse_error"] = "not a PEM certificate"
            if facts.get("is_ca"):
                continue  # the issuing CA itself is the engine's, not an identity of a workload
            yield Observed(kind=DiscoveredKind.CERTIFICATE, natural_key=f"{mount}:{serial}", name=name[:300],
                           facts=facts)

    def _database(self, mount: str) -> Iterator[Observed]:
        for folder, static in (("roles", False), ("static-roles", True)):
            for role in self._list(f"{mount}/{folder}"):
                data = self._read(f"{mount}/{folder}/{quote(role)}")
                facts = {"mount": mount, "role": role, "static": static, "db_name": data.get("db_name", ""),
                         "default_ttl": data.get("default_ttl"), "max_ttl": data.get("max_ttl"),
                         "username": data.get("username", "") if static else "",
                         "rotation_period": data.get("rotation_period") if static else None}
                yield Observed(kind=DiscoveredKind.DATABASE_ROLE, natural_key=f"{mount}:{folder}:{role}",
                               name=f"{mount}/{folder}/{role}", facts=facts)

    def _approle(self, mount: str) -> Iterator[Observed]:
        for role in self._list(f"auth/{mount}/role"):
            data = self._read(f"auth/{mount}/role/{quote(role)}")
            policies = list(data.get("token_policies") or data.get("policies") or [])
            facts = {"auth_mount": mount, "role": role, "type": "approle", "policies": policies,
                     "token_ttl": data.get("token_ttl"), "token_max_ttl": data.get("token_max_ttl"),
                     "secret_id_ttl": data.get("secret_id_ttl"), "bind_secret_id": data.get("bind_secret_id")}
            yield Observed(kind=DiscoveredKind.AUTH_ROLE, natural_key=f"{mount}:{role}", name=f"{mount}/{role}",
                           facts=facts, privileged=self._privileged(policies))

    def _token_roles(self) -> Iterator[Observed]:
        for role in self._list("auth/token/roles"):
            data = self._read(f"auth/token/roles/{quote(role)}")
            policies = list(data.get("allowed_policies") or [])
            facts = {"role": role, "type": "token_role", "allowed_policies": policies,
                     "orphan": data.get("orphan"), "renewable": data.get("renewable"),
                     "token_explicit_max_ttl": data.get("token_explicit_max_ttl"), "period": data.get("token_period")}
            yield Observed(kind=DiscoveredKind.AUTH_ROLE, natural_key=f"token:{role}", name=f"token role {role}",
                           facts=facts, privileged=self._privileged(policies))

    def _accessors(self, progress: Progress) -> Iterator[Observed]:
        for accessor in self._list("auth/token/accessors"):
            body = self._call("POST", "auth/token/lookup-accessor", json={"accessor": accessor}, missing_ok=True)
            data = dict((body or {}).get("data") or {})
            if not data:
                continue  # expired between the list and the lookup
            data.pop("id", None)  # lookup-accessor never returns the token; make sure of it
            policies = list(data.get("policies") or [])
            facts = {"accessor": accessor, "display_name": data.get("display_name", ""), "policies": policies,
                     "ttl": data.get("ttl"), "expire_time": data.get("expire_time") or "",
                     "creation_time": data.get("creation_time"), "path": data.get("path", ""),
                     "orphan": data.get("orphan"), "meta": dict(data.get("meta") or {})}
            yield Observed(kind=DiscoveredKind.TOKEN, natural_key=f"accessor:{accessor}",
                           name=f"token {data.get('display_name') or accessor}"[:300], facts=facts,
                           privileged=self._privileged(policies))


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def expires(facts: dict) -> dt.datetime | None:
    value = facts.get("not_after") or facts.get("expire_time")
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
