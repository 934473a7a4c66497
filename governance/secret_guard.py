"""Refuse anything that looks like a secret value: Steward stores references, never secrets.

Used by every service and importer on the free-text fields of the inventory, so a pasted key
is rejected with a clear message instead of reaching the database, a log, the audit chain (which
keeps it for ever) or an evidence PDF.

Three layers, cheapest first: Steward's own patterns (key blocks, tokens, passwords in URLs and in
assignments such as DB_PASSWORD=... or api_key: ...), the vendor detectors of detect-secrets
(AWS, Azure, Twilio, SendGrid, npm, PyPI, Discord, Telegram and more: kept up to date by its
maintainers, so Steward need not), and an entropy test for random-looking words, hex included.
detect-secrets' own entropy and keyword plugins are left out: on free text they flag every long
word; its public-IP detector too: an address is a reference.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from django.core.exceptions import ValidationError

_KEYWORDS = (r"pass(?:word|wd|phrase)?|pwd|secret|api[_-]?key|apikey|access[_-]?key|auth[_-]?token|token"
             r"|private[_-]?key|client[_-]?secret|credentials?")
_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"), "a private key"),
    (re.compile(r"PuTTY-User-Key-File-\d+:"), "a private key"),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}"), "a GitHub token"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}"), "a GitHub token"),
    (re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"), "a GitLab token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"), "an API secret key"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{32,}"), "an API secret key"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), "a Google API key"),
    (re.compile(r"\b(?:hvs|s|hvb)\.[A-Za-z0-9_\-]{24,}"), "a Vault/OpenBao token"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), "a JSON web token"),
    # scheme://user:password@ and scheme://:password@ (redis, amqp, postgres ...)
    (re.compile(r"[a-z][a-z0-9+.\-]*://[^/\s:@]*:[^/\s@]+@", re.I), "a URL with a password in it"),
    # password=..., DB_PASSWORD=..., api_key: ..., "token": "..." (the value, not the keyword, decides)
    (re.compile(rf"""(?<![:/\w])[\w.-]*?(?:{_KEYWORDS})[\w.-]*?['"]?\s*(?:=|:)\s*['"]?"""
                r"""(?P<value>[^\s'",;]{6,})""", re.I), "a secret assignment"),
]
# What follows a keyword and is a reference, not a value: $VAR, ${VAR}, {{ var }}, <placeholder>,
# %VAR%, an environment variable's name, a store path (kv/app/db), a URL, or words of prose.
_REFERENCE_VALUE = re.compile(
    r"^(?:[$%<{\[(]|(?-i:[A-Z][A-Z0-9_]*$)|/?[\w.-]+(?:/[\w.-]+)+/?(?:#[\w.-]+)?$|[a-z][a-z0-9+.\-]*://|(?:see|in|from|the|stored"
    r"|kept|managed|rotated|none|null|unset|required|redacted|hidden|xxx+|\*+)\b)", re.I)
# Identifiers that are long and random but are not secrets (fingerprints, hashes, serials).
_ALLOWED_RANDOM = re.compile(
    r"^(?:SHA256:[A-Za-z0-9+/=]+|MD5:[0-9a-f:]+|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+|[0-9a-fA-F\-]{8,}|AKIA[0-9A-Z]{16})$"
)
_FINGERPRINT = re.compile(r"\b(?:SHA256|SHA1|SHA512|MD5):[A-Za-z0-9+/=:]+", re.I)
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{32,}")
# A run of 32+ hex digits is a 128-bit (or longer) value: a hex-encoded key unless it is named as a
# digest (sha256 ..., commit ..., fingerprint ...) or sits in a field that holds digests.
_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
_DIGEST_LABEL = re.compile(r"(?:sha-?\d*|md5|blake2\w*|digest|hash|checksum|commit|revision|rev|fingerprint|thumbprint"
                           r"|etag|version|build|sum|serial)\W{0,3}$", re.I)
DIGEST_FIELDS = frozenset({"fingerprint", "store_version", "checksum", "digest", "sha256"})
# detect-secrets' detectors that fit free text (see the module docstring for those left out).
_DETECTOR_EXCLUDED = {"Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword", "Public IP (ipv4)"}
_DETECTORS = [cls() for kind, cls in sorted(get_mapping_from_secret_type_to_class().items())
              if kind not in _DETECTOR_EXCLUDED]
_KEY_ID = re.compile(r"^(?:AKIA|ASIA)[0-9A-Z]{16}$")  # an AWS access key id names a key; it is not one


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _assignment_is_secret(match: re.Match) -> bool:
    value = match.group("value")
    return not _REFERENCE_VALUE.match(value) and len(set(value)) >= 4


def _hex_key(value: str) -> bool:
    for match in _HEX.finditer(value):
        digits = match.group()
        if len(set(digits.lower())) < 8 or _entropy(digits) < 3.0:
            continue  # 0000..., deadbeefdeadbeef...: a placeholder, not a key
        if not _DIGEST_LABEL.search(value[: match.start()].rstrip()[-24:]):
            return True
    return False


def _detected(value: str) -> str | None:
    for detector in _DETECTORS:
        for found in detector.analyze_string(value):
            if not _KEY_ID.match(found):
                return f"a secret ({detector.secret_type})"
    return None


def secret_kind(value: str, *, field: str = "") -> str | None:
    """What kind of secret value this text seems to hold, or None when it looks like a reference.

    field: the name of the field the text is for; a field that holds digests (fingerprint) may
    hold a bare hex digest.
    """
    if not value:
        return None
    for pattern, kind in _PATTERNS:
        for match in pattern.finditer(value):
            if "value" not in pattern.groupindex or _assignment_is_secret(match):
                return kind
    if field not in DIGEST_FIELDS and _hex_key(value):
        return "a hex-encoded key"
    for word in _TOKEN.findall(_FINGERPRINT.sub(" ", value)):
        if _ALLOWED_RANDOM.match(word):
            continue
        classes = sum(bool(re.search(p, word)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if classes >= 3 and _entropy(word) >= 4.2:
            return "a high-entropy string (a key or token)"
    return _detected(value)


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
            kind = secret_kind(text, field=name)
            if kind:
                errors[name] = (
                    f"This looks like {kind}. Steward never stores secret values: give a reference "
                    "(store and path, key id or fingerprint) instead."
                )
                break
    if errors:
        raise ValidationError(errors)


def secret_spans(line: str) -> list[tuple[str, str]]:
    """(kind, value) of each secret value found in one line of a file, for discovery to fingerprint.

    The same layers as secret_kind(), but returning what matched so that the caller can compute a keyed
    fingerprint of it and then drop it; the value is never to be stored or logged.
    """
    found: list[tuple[str, str]] = []
    for pattern, kind in _PATTERNS:
        for match in pattern.finditer(line):
            if "value" in pattern.groupindex:
                if _assignment_is_secret(match):
                    found.append((kind, match.group("value")))
            elif kind == "a URL with a password in it":
                found.append((kind, match.group().rsplit(":", 1)[-1].rstrip("@")))
            else:
                found.append((kind, match.group()))
    for detector in _DETECTORS:
        for value in detector.analyze_string(line):
            if not _KEY_ID.match(value) and all(value not in seen and seen not in value for _, seen in found):
                found.append((f"a secret ({detector.secret_type})", value))
    return found
