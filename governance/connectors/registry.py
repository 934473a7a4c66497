"""Which connector acts on a credential, and the typed reference it acts on.

The rule (docs/connectors.md):
- the credential's store is OpenBao PKI                   -> OpenBao PKI (certificates);
- the store is OpenBao KV v2 and the credential's System has a ConnectorTarget and the
  credential is a password or a service account           -> PostgreSQL role / Redis ACL user,
  with the password kept in that KV store;
- the store is OpenBao KV v2 and the System's ConnectorTarget is AWS IAM and the credential is an
  API key, access token or service account                 -> AWS IAM access key, kept in that KV store;
- the store is OpenBao KV v2 otherwise                    -> OpenBao KV (a new random version);
- the store is AWS Secrets Manager                         -> AWS Secrets Manager (a new version);
- the store is GitHub Actions secrets / GitLab CI/CD       -> GitHub Actions / GitLab CI (the variable itself);
- any other store                                          -> Unsupported (unmanaged, or no connector yet).

Connectors are cached per process by the content of their settings (and the token they read),
so an HTTP session to OpenBao is reused across rotations. Within sessions() (the batch job path)
each connector handed out is also inside its own session(): a PostgreSQL target keeps one admin
connection for the whole batch; all of them end when the batch does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading

from django.conf import settings as django_settings

from governance.choices import MANAGED_STORE_KINDS, CredentialKind, SecretStoreKind
from governance.connectors.aws_common import AWSSettings
from governance.connectors.aws_iam import AWSIAMAccessKey
from governance.connectors.aws_secrets_manager import AWSSecretsManager, SecretsManagerSettings
from governance.connectors.base import Connector, CredentialRef, Unsupported
from governance.connectors.ci_common import CIVariableConnector
from governance.connectors.github_actions import GitHubActions
from governance.connectors.gitlab_ci import GitLabCI
from governance.connectors.openbao_kv import OpenBaoKV, OpenBaoSettings
from governance.connectors.openbao_pki import OpenBaoPKI, PKISettings
from governance.connectors.postgres_role import PostgresRole, PostgresSettings
from governance.connectors.redis_acl import RedisACL, RedisSettings

TARGET_CREDENTIAL_KINDS = frozenset({CredentialKind.PASSWORD, CredentialKind.SERVICE_ACCOUNT})
CONNECTOR_STORE_KINDS = frozenset({SecretStoreKind.OPENBAO_KV, SecretStoreKind.OPENBAO_PKI,
                                   SecretStoreKind.AWS_SECRETS_MANAGER, SecretStoreKind.GITHUB_ACTIONS,
                                   SecretStoreKind.GITLAB_CI})
# Which credential kinds a target acts on (a target kind not listed: TARGET_CREDENTIAL_KINDS).
TARGET_KIND_CREDENTIALS = {
    "aws_iam": frozenset({CredentialKind.API_KEY, CredentialKind.ACCESS_TOKEN, CredentialKind.SERVICE_ACCOUNT}),
}
# Stores whose own connector acts on the credential (no target, no KV).
STORE_CONNECTORS = {
    SecretStoreKind.AWS_SECRETS_MANAGER: "aws_secrets_manager",
    SecretStoreKind.GITHUB_ACTIONS: "github_actions",
    SecretStoreKind.GITLAB_CI: "gitlab_ci",
}
_CACHE: dict[str, Connector] = {}
_CACHE_LIMIT = 64
_SESSIONS = threading.local()  # this thread's open sessions: an ExitStack and the connectors it holds


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


def _aws_env_names(settings: dict) -> tuple[str, ...]:
    return tuple(str(settings.get(name, "")) for name in
                 ("access_key_id_env_var", "secret_access_key_env_var", "session_token_env_var"))


def secrets_manager_connector(store) -> AWSSecretsManager:
    key = _key("asm", store.address, store.settings, _env_digest(*_aws_env_names(store.settings or {})))
    return _cached(key, lambda: AWSSecretsManager(SecretsManagerSettings.from_store(store)))


def ci_connector(store) -> CIVariableConnector:
    """The GitHub Actions or GitLab CI connector of a CI store (also used to push deliveries)."""
    key = _key(store.kind, store.address, store.settings, store.credential_env_var,
               _env_digest(store.credential_env_var))
    if store.kind == SecretStoreKind.GITHUB_ACTIONS:
        return _cached(key, lambda: GitHubActions.from_store(store))
    if store.kind == SecretStoreKind.GITLAB_CI:
        return _cached(key, lambda: GitLabCI.from_store(store))
    raise Unsupported(f"{store} is not a CI store Steward can push to.")


def target_connector(target, store) -> Connector:
    names = (target.settings.get("admin_user_env_var", ""), target.settings.get("admin_password_env_var", ""))
    if target.kind == "aws_iam":
        names = _aws_env_names(target.settings)
    kv = kv_connector(store)
    key = _key(target.kind, target.settings, _env_digest(*names), id(kv))
    if target.kind == "postgres_role":
        return _cached(key, lambda: PostgresRole(PostgresSettings.from_target(target.settings), kv))
    if target.kind == "redis_acl":
        return _cached(key, lambda: RedisACL(RedisSettings.from_target(target.settings), kv))
    if target.kind == "aws_iam":
        return _cached(key, lambda: AWSIAMAccessKey(AWSSettings.from_settings(
            target.settings, what=f"The AWS IAM target of {target.system_id}"), kv))
    raise Unsupported(f"No connector for targets of kind {target.kind}.")


def default_max_age_days(kind: str) -> int | None:
    return django_settings.STEWARD_THRESHOLDS["rotation_max_age_days"].get(kind)


def policy_max_age_days(credential, kind: str) -> int | None:
    """The credential's own rotation policy, else its kind's; a certificate Steward issues lives
    STEWARD_CERT_LIFETIME_DAYS unless its policy says otherwise (short, ready for 47-day certificates)."""
    if credential.rotation_max_age_days:
        return credential.rotation_max_age_days
    if kind == "openbao_pki":
        return int(django_settings.STEWARD_CERT_LIFETIME_DAYS)
    return default_max_age_days(credential.kind)


def connector_kind(credential) -> str:
    """The connector's name for a credential, or "" when none applies (no query beyond what is loaded)."""
    store = credential.store
    if store is None or store.kind not in CONNECTOR_STORE_KINDS:
        return ""
    if store.kind == SecretStoreKind.OPENBAO_PKI:
        return "openbao_pki"
    if store.kind in STORE_CONNECTORS:
        return STORE_CONNECTORS[store.kind]
    target = getattr(credential.system, "connector_target", None)
    if target is not None and credential.kind in TARGET_KIND_CREDENTIALS.get(target.kind, TARGET_CREDENTIAL_KINDS):
        return target.kind
    return "openbao_kv"


@contextlib.contextmanager
def sessions():
    """Until the end, each connector connector_for hands out stays in its session() (see the docstring)."""
    if getattr(_SESSIONS, "stack", None) is not None:
        yield
        return
    with contextlib.ExitStack() as stack:
        _SESSIONS.stack, _SESSIONS.held = stack, {}
        try:
            yield
        finally:
            _SESSIONS.stack = _SESSIONS.held = None


def _in_session(connector: Connector) -> Connector:
    stack = getattr(_SESSIONS, "stack", None)
    if stack is not None and id(connector) not in _SESSIONS.held:
        stack.enter_context(connector.batch_session())
        _SESSIONS.held[id(connector)] = connector  # kept alive, so its id is not reused meanwhile
    return connector


def connector_for(credential) -> tuple[Connector, CredentialRef]:
    """The connector that acts on this credential and the reference it acts on; Unsupported otherwise."""
    connector, ref = _connector_for(credential)
    return _in_session(connector), ref


def _connector_for(credential) -> tuple[Connector, CredentialRef]:
    store = credential.store
    if store is None:
        raise Unsupported(f"{credential} names no store: there is nothing a connector can act on.")
    if store.kind not in MANAGED_STORE_KINDS:
        raise Unsupported(f"{store} is a {store.get_kind_display()}, not a managed store: act on it by hand.")
    if store.kind not in CONNECTOR_STORE_KINDS:
        raise Unsupported(f"Steward has no connector for {store.get_kind_display()} yet: act on it by hand.")
    kind = connector_kind(credential)
    ref = CredentialRef.from_credential(credential, max_age_days=policy_max_age_days(credential, kind))
    if kind == "openbao_pki":
        return pki_connector(store), ref
    if kind == "openbao_kv":
        return kv_connector(store), ref
    if kind == "aws_secrets_manager":
        return secrets_manager_connector(store), ref
    if kind in ("github_actions", "gitlab_ci"):
        return ci_connector(store), ref
    return target_connector(credential.system.connector_target, store), ref
