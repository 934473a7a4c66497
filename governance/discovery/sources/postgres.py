"""PostgreSQL login roles, read-only, from pg_roles (which shows '********' for passwords, never a hash).

Settings: {"host": "db.internal", "port": 5432, "dbname": "postgres", "sslmode": "prefer", "user_env_var":
"PG_DISCOVERY_USER", "connect_timeout": 10}; the password is read from the environment variable named by
DiscoverySource.credential_env_var (empty: no password, e.g. peer or certificate authentication).

What it reads: every role with rolcanlogin (name, valid-until, superuser, createrole, createdb,
replication, bypassrls, connection limit) and its memberships. What it never reads: pg_authid (password
hashes) or any table's data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

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

ROLES_SQL = """
SELECT r.rolname, r.rolvaliduntil, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
       r.rolconnlimit,
       COALESCE(ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                      WHERE m.member = r.oid ORDER BY g.rolname), '{}') AS member_of
FROM pg_roles r WHERE r.rolcanlogin ORDER BY r.rolname
"""
PRIVILEGED_GROUPS = {"pg_write_server_files", "pg_execute_server_program", "pg_read_server_files", "pg_signal_backend"}


@dataclass(frozen=True)
class PostgresSourceSettings:
    host: str
    port: int
    dbname: str
    sslmode: str
    user_env_var: str
    password_env_var: str
    connect_timeout: int = 10

    @classmethod
    def from_source(cls, source) -> PostgresSourceSettings:
        raw = dict(source.settings or {})
        if not raw.get("host"):
            raise SourceMisconfigured(f"Source {source.name}: settings need a host.")
        return cls(host=setting(raw, "host", str, ""), port=setting(raw, "port", int, 5432),
                   dbname=setting(raw, "dbname", str, "postgres"), sslmode=setting(raw, "sslmode", str, "prefer"),
                   user_env_var=setting(raw, "user_env_var", str, ""), password_env_var=source.credential_env_var,
                   connect_timeout=setting(raw, "connect_timeout", int, 10))


class PostgresSource:
    def __init__(self, settings: PostgresSourceSettings):
        self.settings = settings

    def observe(self, progress: Progress = no_progress) -> Iterator[Observed]:
        s = self.settings
        user = credential_from_env(s.user_env_var, what="the PostgreSQL user")
        password = credential_from_env(s.password_env_var, what="the PostgreSQL password", required=False)
        try:
            with psycopg.connect(host=s.host, port=s.port, dbname=s.dbname, user=user, password=password,
                                 sslmode=s.sslmode, connect_timeout=s.connect_timeout, autocommit=True) as conn:
                rows = conn.execute(ROLES_SQL).fetchall()
        except psycopg.OperationalError as error:
            reason = str(error).replace(password or "\0", "[redacted]").splitlines()[0][:300]
            raise SourceError(f"PostgreSQL at {s.host}:{s.port} could not be read: {reason}") from None
        for name, valid_until, superuser, createrole, createdb, replication, bypassrls, connlimit, member_of in rows:
            privileged = bool(superuser or createrole or bypassrls or replication
                              or set(member_of) & PRIVILEGED_GROUPS)
            yield Observed(
                kind=DiscoveredKind.LOGIN_ROLE, natural_key=name, name=f"{name}@{s.host}:{s.port}",
                facts={"role": name, "valid_until": valid_until.isoformat() if valid_until else None,
                       "superuser": superuser, "createrole": createrole, "createdb": createdb,
                       "replication": replication, "bypassrls": bypassrls, "connection_limit": connlimit,
                       "member_of": list(member_of), "server": f"{s.host}:{s.port}"},
                privileged=privileged)
