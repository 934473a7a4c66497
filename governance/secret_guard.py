"""Refuse anything that looks like a secret value: Steward stores references, never secrets.

Used by every service and importer on the free-text fields of the inventory, so a pasted key
is rejected with a clear message instead of reaching the database or a log.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError

_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}"), "a GitHub token"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}"), "a GitHub token"),
    (re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"), "a GitLab token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"), "an API secret key"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{32,}"), "an API secret key"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), "a Google API key"),
    (re.compile(r"\b(?:hvs|s|hvb)\.[A-Za-z0-9_\-]{24,}"), "a Vault/OpenBao token"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), "a JSON web token"),
    (re.compile(r"[a-z][a-z0-9+.\-]*://[^/\s:@]+:[^/\s@]+@", re.I), "a URL with a password in it"),
    (
        re.compile(
            r"(?<![:/])\b(?:password|passwd|pwd|secret|api[_-]?key|token|private[_-]?key)\s?(?:=\s*|:)['\"]?[^\s'\"]{6,}",
            re.I,
        ),
        "a secret assignment",
    ),
]
# Identifiers that are long and random but are not secrets (fingerprints, hashes, serials).
_ALLOWED_RANDOM = re.compile(
    r"^(?:SHA256:[A-Za-z0-9+/=]+|MD5:[0-9a-f:]+|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+|[0-9a-fA-F\-]{8,}|AKIA[0-9A-Z]{16})$"
)
_FINGERPRINT = re.compile(r"\b(?:SHA256|SHA1|MD5):[A-Za-z0-9+/=:]+")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{32,}")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_kind(value: str) -> str | None:
    """What kind of secret value this text seems to hold, or None when it looks like a reference."""
    if not value:
        return None
    for pattern, kind in _PATTERNS:
        if pattern.search(value):
            return kind
    for word in _TOKEN.findall(_FINGERPRINT.sub(" ", value)):
        if _ALLOWED_RANDOM.match(word):
            continue
        classes = sum(bool(re.search(p, word)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if classes >= 3 and _entropy(word) >= 4.2:
            return "a high-entropy string (a key or token)"
    return None


def _texts(value) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _texts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)


def reject_secret_values(data: Mapping, fields: Iterable[str] | None = None) -> None:
    """Raise a ValidationError naming every field whose text looks like a secret value."""
    errors = {}
    for name in fields if fields is not None else data.keys():
        if name not in data:
            continue
        for text in _texts(data[name]):
            kind = secret_kind(text)
            if kind:
                errors[name] = (
                    f"This looks like {kind}. Steward never stores secret values: give a reference "
                    "(store and path, key id or fingerprint) instead."
                )
                break
    if errors:
        raise ValidationError(errors)
