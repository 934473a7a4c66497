"""Keyed fingerprints of hard-coded secrets: the same secret found twice, or in two repositories, is one.

HMAC-SHA256 with STEWARD_DISCOVERY_FINGERPRINT_KEY, a key kept outside the database (derived from
SECRET_KEY outside production), so that whoever reads the database cannot test guessed values against
a fingerprint. The value is fingerprinted in memory and dropped; only the fingerprint is kept.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

_DERIVATION_LABEL = b"steward discovery fingerprint key/v1"


def fingerprint_key() -> bytes:
    configured = settings.STEWARD_DISCOVERY_FINGERPRINT_KEY
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()


def secret_fingerprint(value: str, *, key: bytes | None = None) -> str:
    """The keyed fingerprint (64 hex digits) of a secret value. Surrounding quotes and spaces do not count."""
    normalised = value.strip().strip("'\"").strip()
    return hmac.new(key or fingerprint_key(), normalised.encode(), hashlib.sha256).hexdigest()
