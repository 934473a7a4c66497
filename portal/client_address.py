"""The address a request came from, seen through the proxies Steward is told to trust.

One rule for the sign-in lockout (django-axes calls it through AXES_CLIENT_IP_CALLABLE) and the
audit trail's source address, so both name the same person's machine. Behind a proxy every request
arrives from the proxy's address; X-Forwarded-For says who the proxy spoke for, but anyone can send
that header. So it is believed only when the connection comes from a trusted proxy
(STEWARD_TRUSTED_PROXIES: addresses or networks), and it is read from the right, skipping further
trusted proxies: the first address that is not a trusted proxy is the client. A malformed entry
stops the walk at the last hop that is known good.

Written here rather than through django-ipware: ipware trusts a proxy count or a list of proxy
prefixes, whereas a list of networks walked from the right is the rule that a spoofed left-most
entry cannot defeat, and it is a dozen lines.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"STEWARD_TRUSTED_PROXIES: {entry!r} is not an address or network.") from None
    return tuple(networks)


def trusted_proxy_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return _networks(tuple(settings.STEWARD_TRUSTED_PROXIES))


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address, networks) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_address(request) -> str | None:
    """The client's address as text: REMOTE_ADDR, or the forwarded address a trusted proxy vouched for."""
    remote = _parse(request.META.get("REMOTE_ADDR", "") or "")
    if remote is None:
        return None
    networks = trusted_proxy_networks()
    if not networks or not _trusted(remote, networks):
        return str(remote)
    client = remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        client = address
        if not _trusted(address, networks):
            break
    return str(client)
