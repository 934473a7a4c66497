"""A system's declared host names, and whether a certificate's name is one of them.

System.hosts lists the names a system answers on: "orders.example.com", or "*.orders.example.com"
for exactly one label below it (as a certificate wildcard means). A certificate Steward issues for
the system's credentials may carry these names only; OpenBao enforces the same list through the
PKI role Steward configures for the system (allowed_domains, governance.connectors.openbao_pki).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
MAX_HOSTS = 100


def normalise_host(name: str) -> str:
    return str(name).strip().lower().rstrip(".")


def host_names_validator(value) -> None:
    """A list of DNS host names (wildcards "*.x.y" allowed), at most MAX_HOSTS, each said wrong by name."""
    if not isinstance(value, list):
        raise ValidationError("Give the host names as a list, e.g. [\"orders.example.com\"].")
    if len(value) > MAX_HOSTS:
        raise ValidationError(f"At most {MAX_HOSTS} host names.")
    wrong = [str(v) for v in value if not isinstance(v, str) or len(v) > 253 or not _HOST.match(normalise_host(v))]
    if wrong:
        raise ValidationError("Not a host name: " + ", ".join(repr(w)[:80] for w in wrong[:10])
                              + " (write e.g. orders.example.com or *.orders.example.com).")


def host_allowed(name: str, hosts: Iterable[str]) -> bool:
    """Is name one of the hosts, or exactly one label below a "*." host?"""
    name = normalise_host(name)
    for host in (normalise_host(h) for h in hosts):
        if host.startswith("*."):
            head, _, rest = name.partition(".")
            if head and head != "*" and rest == host[2:]:
                return True
            if name == host:
                return True
        elif name == host:
            return True
    return False


def names_outside(names: Iterable[str], hosts: Iterable[str]) -> list[str]:
    hosts = list(hosts)
    return [n for n in names if not host_allowed(n, hosts)]
