"""Which connector acts on a credential, and the typed reference it acts on.

The rule (docs/connectors.md):
- the credential's store is OpenBao PKI                   -> OpenBao PKI (certificates);
- the store is OpenBao KV v2 and the credential's System has a ConnectorTarget and the
  credential is a password or a service account           -> PostgreSQL role / Redis ACL user,
  with the password kept in that KV store;
- the store is OpenBao KV v2 otherwise                    -> OpenBao KV (a new random version);
- any other store                                          -> Unsupported (unmanaged, or no connector yet).

Connectors are cached per process by the content of their settings (and the token they read),
so an HTTP session to OpenBao is reused across rotations.
"""

from __future__ import annotations

import hashlib
import json
import os

from django.conf import settings as django_settings

from governance.choices import MANAGED_STORE_KINDS, CredentialKind, SecretStoreKind
from governance.connectors.base import Connector, CredentialRef, Unsupported
from governance.connectors.openbao_kv import OpenBaoKV, OpenBaoSettings
from governance.connectors.openbao_pki import OpenBaoPKI, PKISettings
from governance.connectors.postgres_role import PostgresRole, PostgresSettings
from governance.connectors.redis_acl import RedisACL, RedisSettings

TARGET_CREDENTIAL_KINDS = frozenset({CredentialKind.PASSWORD, CredentialKind.SERVICE_ACCOUNT})
CONNECTOR_STORE_KINDS = frozenset({SecretStoreKind.OPENBAO_KV, SecretStoreKind.OPENBAO_PKI})
_CACHE: dict[str, Connector] = {}
_CACHE_LIMIT = 64


def clear_cache() -> None:
    _CACHE.clear()


def _env_digest(*names: str) -> str:
    joined = "\0".join(os.environ.get(name, "") for name in names if name)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _key(*parts) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def _cached(key: str, build) -> Connector:
    connector = _CACHE.get(key)
    if connector is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        connector = _CACHE[key] = build()
    return connector


def kv_connector(store) -> OpenBaoKV:
    key = _key("kv", store.address, store.settings, store.credential_env_var, _env_digest(store.credential_env_var))
    return _cached(key, lambda: OpenBaoKV(OpenBaoSettings.from_store(store)))


def pki_connector(store) -> OpenBaoPKI:
    key = _key("pki", store.address, store.settings, store.credential_env_var, _env_digest(store.credential_env_var))
    return _cached(key, lambda: OpenBaoPKI(PKISettings.from_store(store)))


def target_connector(target, store) -> Connector:
    names = (target.settings.get("admin_user_env_var", ""), target.settings.get("admin_password_env_var", ""))
    kv = kv_connector(store)
    key = _key(target.kind, target.settings, _env_digest(*names), id(kv))
    if target.kind == "postgres_role":
        return _cached(key, lambda: PostgresRole(PostgresSettings.from_target(target.settings), kv))
    if target.kind == "redis_acl":
        return _cached(key, lambda: RedisACL(RedisSettings.from_target(target.settings), kv))
    raise Unsupported(f"No connector for targets of kind {target.kind}.")


def default_max_age_days(kind: str) -> int | None:
    return django_settings.STEWARD_THRESHOLDS["rotation_max_age_days"].get(kind)


def connector_kind(credential) -> str:
    """The connector's name for a credential, or "" when none applies (no query beyond what is loaded)."""
    store = credential.store
    if store is None or store.kind not in CONNECTOR_STORE_KINDS:
        return ""
    if store.kind == SecretStoreKind.OPENBAO_PKI:
        return "openbao_pki"
    target = getattr(credential.system, "connector_target", None)
    if target is not None and credential.kind in TARGET_CREDENTIAL_KINDS:
        return target.kind
    return "openbao_kv"


def connector_for(credential) -> tuple[Connector, CredentialRef]:
    """The connector that acts on this credential and the reference it acts on; Unsupported otherwise."""
    store = credential.store
    if store is None:
        raise Unsupported(f"{credential} names no store: there is nothing a connector can act on.")
    if store.kind not in MANAGED_STORE_KINDS:
        raise Unsupported(f"{store} is a {store.get_kind_display()}, not a managed store: act on it by hand.")
    if store.kind not in CONNECTOR_STORE_KINDS:
        raise Unsupported(f"Steward has no connector for {store.get_kind_display()} yet: act on it by hand.")
    ref = CredentialRef.from_credential(
        credential, max_age_days=credential.rotation_max_age_days or default_max_age_days(credential.kind))
    kind = connector_kind(credential)
    if kind == "openbao_pki":
        return pki_connector(store), ref
    if kind == "openbao_kv":
        return kv_connector(store), ref
    return target_connector(credential.system.connector_target, store), ref
