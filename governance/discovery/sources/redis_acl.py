"""Redis ACL users, read-only (ACL LIST: rules, with password hashes removed before anything is kept).

Settings: {"host": "cache.internal", "port": 6379, "tls": false, "username": "discovery", "timeout": 10};
the password is read from the environment variable named by DiscoverySource.credential_env_var.

What it reads: each user's on/off flag, command rules, key and channel patterns. A user with +@all (or
allcommands) or ~* (allkeys) is privileged. What it never reads: a key's value; the password hashes ACL
LIST returns (#<sha256>) are dropped on arrival, and plain-text >password rules never leave the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import redis

from governance.discovery.sources.base import (
    Observed,
    Progress,
    SourceError,
    SourceMisconfigured,
    credential_from_env,
    no_progress,
    setting,
)
from governance.models.discovery import DiscoveredKind


@dataclass(frozen=True)
class RedisSourceSettings:
    host: str
    port: int
    username: str
    password_env_var: str
    tls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_source(cls, source) -> RedisSourceSettings:
        raw = dict(source.settings or {})
        if not raw.get("host"):
            raise SourceMisconfigured(f"Source {source.name}: settings need a host.")
        return cls(host=setting(raw, "host", str, ""), port=setting(raw, "port", int, 6379),
                   username=setting(raw, "username", str, ""), password_env_var=source.credential_env_var,
                   tls=setting(raw, "tls", bool, False), timeout=setting(raw, "timeout", float, 10.0))


def parse_acl_rule(line: str) -> Observed:
    """One line of ACL LIST ("user NAME on #hash ~* +@all") as an Observed item, without its passwords."""
    words = line.split()
    if len(words) < 2 or words[0] != "user":
        raise ValueError("not an ACL LIST line")
    name = words[1]
    rules = [w for w in words[2:] if not w.startswith(("#", ">", "<", "!"))]  # password hashes and values
    enabled = "on" in rules
    commands = [w for w in rules if w.startswith(("+", "-")) or w in ("allcommands", "nocommands")]
    keys = [w for w in rules if w.startswith(("~", "%")) or w in ("allkeys", "resetkeys")]
    channels = [w for w in rules if w.startswith("&") or w in ("allchannels", "resetchannels")]
    privileged = enabled and (("+@all" in commands or "allcommands" in commands)
                              or ("~*" in keys or "allkeys" in keys))
    return Observed(kind=DiscoveredKind.ACL_USER, natural_key=name, name=name,
                    facts={"user": name, "enabled": enabled, "nopass": "nopass" in rules, "commands": commands,
                           "keys": keys, "channels": channels},
                    privileged=privileged)


class RedisSource:
    def __init__(self, settings: RedisSourceSettings):
        self.settings = settings

    def observe(self, progress: Progress = no_progress) -> Iterator[Observed]:
        s = self.settings
        password = credential_from_env(s.password_env_var, what="the Redis password", required=False)
        client = redis.Redis(host=s.host, port=s.port, username=s.username or None, password=password, ssl=s.tls,
                             socket_timeout=s.timeout, socket_connect_timeout=s.timeout)
        try:
            lines = client.execute_command("ACL", "LIST")
        except redis.RedisError as error:
            raise SourceError(f"Redis at {s.host}:{s.port} could not be read ({type(error).__name__}).") from None
        finally:
            client.close()
        for raw in lines:
            line = raw.decode() if isinstance(raw, bytes) else str(raw)
            yield parse_acl_rule(line)
