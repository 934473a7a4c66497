"""Webhook target URLs and signatures: the rules that keep Steward from being turned against itself.

Target URLs: https only in production (settings.PRODUCTION); no private, loopback, link-local,
multicast or reserved address, whether written literally or reached through DNS, unless
STEWARD_WEBHOOK_ALLOWED_HOSTS names the host (a name, an address or a network such as
"10.1.0.0/16"). Checked when an endpoint is saved and again before every attempt, because a
name can be re-pointed after it was checked; the delivery then connects to the address it vetted,
never to the name (webhooks.py). IPv6 forms that embed an IPv4 address (6to4, NAT64, IPv4-mapped,
IPv4-compatible) are judged by the address inside; Teredo and local-use NAT64 are refused.
Redirects are never followed.

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
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError

from governance.services.webhook_secrets import secret_bytes

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that carry an IPv4 address inside them: a host reached through one of them is the IPv4
# host, so it is judged as that host (6to4 2002:AABB:CCDD::, NAT64 64:ff9b::AABB:CCDD, IPv4-mapped
# ::ffff:a.b.c.d, the deprecated IPv4-compatible ::a.b.c.d).
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
# The local-use NAT64 prefix and Teredo translate to addresses chosen by someone else's gateway:
# never a public target.
NEVER_PUBLIC = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("2001::/32"))


@dataclass(frozen=True)
class VettedTarget:
    """A webhook URL after its check: the addresses it may be reached at, resolved once.

    The delivery connects to one of these addresses, never to the name again, so a name re-pointed
    after the check (DNS rebinding) cannot send Steward somewhere else.
    """

    scheme: str
    host: str
    port: int
    addresses: tuple[Address, ...]


def _allowed_entries() -> list[str]:
    return [str(h).strip().lower() for h in settings.STEWARD_WEBHOOK_ALLOWED_HOSTS if str(h).strip()]


def _allow_listed(host: str, addresses: list[Address]) -> bool:
    for entry in _allowed_entries():
        if entry == host:
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if addresses and all(address.version == network.version and address in network for address in addresses):
            return True
    return False


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that embed one."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        return ipaddress.IPv4Address(int(address))
    return None


def is_public(address: Address) -> bool:
    """A global unicast address, and, for a form that embeds an IPv4 address, a global one there too."""
    if any(address.version == network.version and address in network for network in NEVER_PUBLIC):
        return False
    inner = embedded_ipv4(address)
    judged = address if inner is None else inner  # a wrapper (6to4, NAT64) is judged by the host inside
    return judged.is_global and not (judged.is_multicast or judged.is_reserved or judged.is_unspecified)


def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise ValidationError({"url": f"The host {host!r} cannot be resolved."}) from exc
    return sorted({ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}, key=str)


def webhook_url_check(url: str) -> VettedTarget:
    """The vetted target of url, or ValidationError({"url": ...}) when it is not acceptable."""
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
    port = port or (443 if scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not addresses:
        raise ValidationError({"url": f"The host {host!r} has no address."})
    if not _allow_listed(host, addresses) and not all(is_public(a) for a in addresses):
        raise ValidationError({"url": f"{host} is a private, loopback or link-local address (or an IPv6 form "
                                      "of one); Steward only calls public hosts unless "
                                      "STEWARD_WEBHOOK_ALLOWED_HOSTS names it."})
    return VettedTarget(scheme=scheme, host=host, port=port, addresses=tuple(addresses))


class DeliveryFailed(Exception):
    """The target could not be reached or did not answer in time; the text is stored on the attempt."""


def _host_header(target: VettedTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _pool(target: VettedTarget, address: Address, timeout: float) -> urllib3.HTTPConnectionPool:
    common = {"host": str(address), "port": target.port, "retries": False, "maxsize": 1,
              "timeout": urllib3.Timeout(connect=min(5.0, timeout), read=timeout)}
    if target.scheme == "https":
        # The connection goes to the vetted address; the certificate must still name the host.
        return urllib3.HTTPSConnectionPool(**common, server_hostname=target.host, assert_hostname=target.host,
                                           cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    return urllib3.HTTPConnectionPool(**common)


def post_to_vetted(target: VettedTarget, url: str, *, body: bytes, headers: dict[str, str], timeout: float,
                   read_limit: int) -> tuple[int, str]:
    """POST body to the target at the addresses it was vetted at (the first that answers), never by name.

    Returns (status, the start of the body). Redirects are not followed. Raises DeliveryFailed.
    """
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    errors = []
    for address in target.addresses:
        pool = _pool(target, address, timeout)
        try:
            response = pool.urlopen("POST", path, body=body, headers={**headers, "Host": _host_header(target)},
                                    redirect=False, preload_content=False, assert_same_host=False)
            try:
                text = response.read(read_limit, decode_content=True).decode("utf-8", "replace")
            finally:
                response.release_conn()
            return response.status, text
        except urllib3.exceptions.NewConnectionError as exc:  # before TimeoutError: it is a subclass
            errors.append(f"ConnectionError: {address}: {exc}")
        except urllib3.exceptions.TimeoutError as exc:
            errors.append(f"Timeout: {address}: {exc}")
        except urllib3.exceptions.HTTPError as exc:
            errors.append(f"ConnectionError: {address}: {exc}")
        finally:
            pool.close()
    raise DeliveryFailed("; ".join(errors)[:500])


def sign(*, message_id: str, timestamp: int, body: bytes, secrets_: list[str]) -> str:
    """The webhook-signature header value: one "v1,<sig>" per secret, space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets_:
        digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)
