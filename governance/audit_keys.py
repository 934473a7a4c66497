"""The two keys that anchor the audit trail, both kept outside the database.

The chain key (HMAC-SHA256) links every event to the one before it, so rewriting the chain needs
the key: it comes from STEWARD_AUDIT_CHAIN_KEY, or from OpenBao KV (STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH),
or, outside production only, is derived from SECRET_KEY. The signing key (Ed25519) signs the
checkpoints written outside the database: STEWARD_AUDIT_SIGNING_KEY (PEM or base64 of the 32-byte
seed) or the PEM file STEWARD_AUDIT_SIGNING_KEY_FILE, generated with 0600 permissions on first use
outside production. Production refuses to start without both (portal/settings.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from governance.connectors.base import ConnectorError
from governance.connectors.openbao_kv import OpenBaoKV, OpenBaoSettings

logger = logging.getLogger(__name__)

CHAIN_KEY_FIELD = "chain_key"
MIN_CHAIN_KEY_LENGTH = 32
_DERIVATION_LABEL = b"steward audit chain key/v1"
_KEY_ID_LABEL = b"steward audit chain key id"

_cache: dict[str, object] = {}


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs) -> None:
    if setting.startswith("STEWARD_AUDIT") or setting == "SECRET_KEY":
        _cache.clear()


def audit_openbao() -> OpenBaoKV:
    """The OpenBao KV client for the chain key and the checkpoint sink (the connectors' own client)."""
    address = settings.STEWARD_AUDIT_OPENBAO_ADDR
    if not address:
        raise ImproperlyConfigured("STEWARD_AUDIT_OPENBAO_ADDR (or STEWARD_OPENBAO_ADDR) is not set.")
    return OpenBaoKV(OpenBaoSettings(address=address.rstrip("/"), mount=settings.STEWARD_AUDIT_OPENBAO_MOUNT,
                                     token_env_var=settings.STEWARD_AUDIT_OPENBAO_TOKEN_ENV))


def _chain_key_from_openbao(path: str) -> bytes:
    kv = audit_openbao()
    try:
        data = kv.read_value(kv.path_of(path))
    except ConnectorError as error:
        raise ImproperlyConfigured(f"The audit chain key cannot be read from OpenBao: {error}") from None
    value = (data or {}).get(CHAIN_KEY_FIELD)
    if not isinstance(value, str) or len(value) < MIN_CHAIN_KEY_LENGTH:
        raise ImproperlyConfigured(
            f"OpenBao {kv.label(kv.path_of(path))} has no field {CHAIN_KEY_FIELD!r} of at least "
            f"{MIN_CHAIN_KEY_LENGTH} characters.")
    return value.encode()


def chain_key() -> bytes:
    """The HMAC key of the audit chain (read once per process)."""
    key = _cache.get("chain")
    if key is None:
        if settings.STEWARD_AUDIT_CHAIN_KEY:
            key = settings.STEWARD_AUDIT_CHAIN_KEY.encode()
        elif settings.STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH:
            key = _chain_key_from_openbao(settings.STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH)
        elif settings.PRODUCTION:
            raise ImproperlyConfigured("Set STEWARD_AUDIT_CHAIN_KEY or STEWARD_AUDIT_CHAIN_KEY_OPENBAO_PATH.")
        else:
            key = hmac.new(settings.SECRET_KEY.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()
        _cache["chain"] = key
    return key


def chain_key_id(key: bytes | None = None) -> str:
    """A fingerprint of the chain key that reveals nothing of it (written into each checkpoint)."""
    return hmac.new(key if key is not None else chain_key(), _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _parse_private_key(text: str, *, source: str) -> Ed25519PrivateKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as error:
        raise ImproperlyConfigured(f"{source} is not an Ed25519 private key (PEM, or base64 of 32 bytes): "
                                   f"{type(error).__name__}.") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{source} is a {type(key).__name__}, not an Ed25519 private key.")
    return key


def _generate_key_file(path: Path) -> None:
    """Create a new private key file, readable by its owner only; a concurrent creator wins the race."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    logger.warning("Generated a new audit checkpoint signing key in %s (development default).", path)


def signing_key() -> Ed25519PrivateKey:
    """The Ed25519 key that signs checkpoints (read once per process)."""
    key = _cache.get("signing")
    if key is None:
        if settings.STEWARD_AUDIT_SIGNING_KEY:
            key = _parse_private_key(settings.STEWARD_AUDIT_SIGNING_KEY, source="STEWARD_AUDIT_SIGNING_KEY")
        else:
            if not settings.STEWARD_AUDIT_SIGNING_KEY_FILE:
                raise ImproperlyConfigured("Set STEWARD_AUDIT_SIGNING_KEY or STEWARD_AUDIT_SIGNING_KEY_FILE.")
            path = Path(settings.STEWARD_AUDIT_SIGNING_KEY_FILE)
            if not path.exists():
                if settings.PRODUCTION:
                    raise ImproperlyConfigured(f"The audit signing key file {path} does not exist.")
                _generate_key_file(path)
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                logger.warning("The audit signing key file %s is readable by others: chmod 600 it.", path)
            key = _parse_private_key(path.read_text(), source=f"The audit signing key file {path}")
        _cache["signing"] = key
    return key


def public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


def public_key_pem(key: Ed25519PublicKey | None = None) -> str:
    key = key or public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_id(key: Ed25519PublicKey | None = None) -> str:
    """The signer's name in a checkpoint: SHA-256 of the raw public key, first 16 hex digits."""
    key = key or public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: bytes, *, source: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{source} is not a PEM public key ({type(error).__name__}).") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{source} is a {type(key).__name__}, not an Ed25519 public key.")
    return key
