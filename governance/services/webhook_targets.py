"""Webhook target URLs and signatures: the rules that keep Steward from being turned against itself.

Target URLs: https only in production (settings.PRODUCTION); no private, loopback, link-local,
multicast or reserved address, whether written literally or reached through DNS, unless
STEWARD_WEBHOOK_ALLOWED_HOSTS names the host (a name, an address or a network such as
"10.1.0.0/16"). Checked when an endpoint is saved and again before every attempt, because a
name can be re-pointed after it was checked. Redirects are never followed.

Signatures follow the Standard Webhooks specification: webhook-id, webhook-timestamp and
webhook-signature ("v1,<base64 HMAC-SHA256 of id.timestamp.body>", space-separated when a
rotation overlap sends two).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from governance.services.webhook_secrets import secret_bytes


def _allowed_entries() -> list[str]:
    return [str(h).strip().lower() for h in getattr(settings, "STEWARD_WEBHOOK_ALLOWED_HOSTS", []) if str(h).strip()]


def _allow_listed(host: str, addresses: list[ipaddress._BaseAddress]) -> bool:
    for entry in _allowed_entries():
        if entry == host:
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if addresses and all(address in network for address in addresses):
            return True
    return False


def _is_public(address: ipaddress._BaseAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


def _resolve(host: str, port: int) -> list[ipaddress._BaseAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise ValidationError({"url": f"The host {host!r} cannot be resolved."}) from exc
    return sorted({ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}, key=str)


def webhook_url_check(url: str) -> None:
    """Raise ValidationError({"url": ...}) unless url is an acceptable webhook target."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError({"url": "Enter a valid URL."}) from exc
    scheme = parts.scheme.lower()
    if settings.PRODUCTION and scheme != "https":
        raise ValidationError({"url": "Webhook targets must use https in production."})
    if scheme not in ("https", "http"):
        raise ValidationError({"url": "Webhook targets must be http(s) URLs."})
    if parts.username or parts.password:
        raise ValidationError({"url": "Do not put credentials in the URL: the signature authenticates Steward."})
    host = (parts.hostname or "").lower()
    if not host:
        raise ValidationError({"url": "The URL has no host."})
    addresses = _resolve(host, port or (443 if scheme == "https" else 80))
    if _allow_listed(host, addresses):
        return
    if not addresses or not all(_is_public(a) for a in addresses):
        raise ValidationError({"url": f"{host} is a private, loopback or link-local address; Steward only "
                                      "calls public hosts unless STEWARD_WEBHOOK_ALLOWED_HOSTS names it."})


def sign(*, message_id: str, timestamp: int, body: bytes, secrets_: list[str]) -> str:
    """The webhook-signature header value: one "v1,<sig>" per secret, space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets_:
        digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)
