"""Where webhook signing secrets live: OpenBao when configured, else encrypted at rest.

Steward never stores secret values of the governed estate. A webhook signing secret is different:
it is Steward's own, generated here, and Standard Webhooks needs it at every delivery to sign the
message, so it cannot be reduced to a hash. It is kept
- in OpenBao (KV v2) when STEWARD_OPENBAO_ADDR is set: the endpoint row holds no secret at all;
- otherwise encrypted in the endpoint row with Fernet (AES-128-CBC + HMAC-SHA256), under a key
  derived with HKDF-SHA256 from settings.SECRET_KEY (SECRET_KEY_FALLBACKS still decrypt, so a
  rotated SECRET_KEY does not lose the secrets; re-save to re-encrypt).
Either way the secret is shown once, when it is generated, and never again.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
from dataclasses import dataclass

import hvac
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from governance.models.integrations import SecretBackend, WebhookEndpoint

SECRET_PREFIX = "whsec_"
HKDF_INFO = b"steward webhook signing secrets v1"


class SecretUnavailable(Exception):
    """The signing secret cannot be read (OpenBao down, key changed): a transient delivery error."""


@dataclass(frozen=True)
class SigningSecrets:
    current: str
    previous: str | None = None


def generate_secret() -> str:
    """A Standard Webhooks secret: whsec_ followed by base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _derive(key: str) -> Fernet:
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"steward", info=HKDF_INFO).derive(key.encode())
    return Fernet(base64.urlsafe_b64encode(material))


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_derive(k) for k in keys])


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("The signing secret cannot be decrypted with SECRET_KEY or its fallbacks.") from exc


def openbao_configured() -> bool:
    return bool(settings.STEWARD_OPENBAO_ADDR)


def _openbao():

    token = os.environ.get(settings.STEWARD_OPENBAO_TOKEN_ENV, "")
    client = hvac.Client(url=settings.STEWARD_OPENBAO_ADDR, token=token, timeout=5)
    mount = settings.STEWARD_OPENBAO_KV_MOUNT
    return client, mount


def _openbao_path(endpoint: WebhookEndpoint) -> str:
    prefix = settings.STEWARD_WEBHOOK_SECRET_PATH.strip("/")
    return f"{prefix}/{endpoint.pk}"


def backend_for_new_endpoint() -> str:
    return SecretBackend.OPENBAO if openbao_configured() else SecretBackend.LOCAL


def store(endpoint: WebhookEndpoint, *, current: str, previous: str | None,
          previous_expires_at: dt.datetime | None) -> list[str]:
    """Write the secrets to the endpoint's backend; returns the model fields it changed (to save)."""
    endpoint.previous_secret_expires_at = previous_expires_at if previous else None
    if endpoint.secret_backend == SecretBackend.OPENBAO:
        client, mount = _openbao()
        data = {"current": current, **({"previous": previous} if previous else {})}
        try:
            client.secrets.kv.v2.create_or_update_secret(path=_openbao_path(endpoint), secret=data,
                                                         mount_point=mount)
        except Exception as exc:  # hvac raises many kinds; the service turns this into a field error
            raise SecretUnavailable(f"OpenBao refused the secret: {exc.__class__.__name__}") from exc
        endpoint.secret_ciphertext = endpoint.previous_secret_ciphertext = ""
    else:
        endpoint.secret_ciphertext = encrypt(current)
        endpoint.previous_secret_ciphertext = encrypt(previous) if previous else ""
    return ["secret_ciphertext", "previous_secret_ciphertext", "previous_secret_expires_at"]


def load(endpoint: WebhookEndpoint, *, now: dt.datetime) -> SigningSecrets:
    """The secrets to sign with now: the current one, and the previous one during a rotation overlap."""
    in_overlap = endpoint.previous_secret_expires_at is not None and endpoint.previous_secret_expires_at > now
    if endpoint.secret_backend == SecretBackend.OPENBAO:
        client, mount = _openbao()
        try:
            data = client.secrets.kv.v2.read_secret_version(
                path=_openbao_path(endpoint), mount_point=mount, raise_on_deleted_version=True)["data"]["data"]
        except Exception as exc:
            raise SecretUnavailable(f"OpenBao did not return the secret: {exc.__class__.__name__}") from exc
        return SigningSecrets(data["current"], data.get("previous") if in_overlap else None)
    previous = decrypt(endpoint.previous_secret_ciphertext) if in_overlap and endpoint.previous_secret_ciphertext \
        else None
    return SigningSecrets(decrypt(endpoint.secret_ciphertext), previous)
