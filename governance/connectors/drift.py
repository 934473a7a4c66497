"""Drift: what an identity may do, and when its secret changed, as its own system says, against what was declared.

A credential declares a privilege level (read, write, admin) and, once provisioning interprets them,
scopes (governance.connectors.scopes). Reconciliation asks the credential's connector for the
observed privilege (PostgreSQL role attributes, memberships and grants; Redis ACL rules; OpenBao
token policies; an AWS IAM user's policies and access keys) and for signs of a change Steward did
not make (the stored password no longer signs in, a KV version Steward did not write, an access
key Steward did not create). Anything above the declared level or scope, and any
such change, is drift: the reconciliation reports it, a finding opens (check no-privilege-drift) and
a drill of a workflow using the credential fails.

Pure data and comparisons: no network, no database. The connectors read; these functions judge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from governance.connectors.scopes import (
    PostgresGrant,
    ScopeError,
    parse_aws_policy_arn,
    parse_postgres_grant,
    parse_redis_rule,
)


@dataclass(frozen=True)
class DeclaredPrivilege:
    """What Steward knows the identity should be: its declared level and scopes, the version Steward
    last wrote or recorded in the store, and the privileges observed when Steward last accepted them."""

    level: str = ""  # governance.choices.PrivilegeLevel: read, write, admin
    scopes: tuple[str, ...] = ()
    store_version: str = ""
    baseline: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftReport:
    """The observed privileges (canonical lines), those above the declaration, and changes Steward did not make."""

    privileges: tuple[str, ...] = ()
    excess: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    checked: tuple[str, ...] = field(default_factory=tuple)  # what was read, for the proof

    @property
    def drifted(self) -> bool:
        return bool(self.excess or self.changes)

    @property
    def reasons(self) -> tuple[str, ...]:
        return (*self.excess, *self.changes)

    @property
    def summary(self) -> str:
        if not self.drifted:
            return "privileges as declared; no change outside Steward"
        return "drift: " + "; ".join(self.reasons)


def fingerprint(privileges: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(privileges)).encode()).hexdigest()[:16]


def beyond_baseline(privileges: Iterable[str], baseline: Iterable[str], *, flagged: Iterable[str] = ()
                    ) -> tuple[str, ...]:
    """Privileges observed now that were not there when Steward last accepted the identity's privileges
    (those already flagged against the declaration are not said twice). The baseline stands in for a
    declaration only where the scopes are free-form labels; declared scopes are compared directly."""
    accepted, flagged = set(baseline), set(flagged)
    if not accepted:
        return ()
    return tuple(f"{p}: added outside Steward" for p in sorted(privileges) if p not in accepted and p not in flagged)


def kv_version_change(observed: str, declared: DeclaredPrivilege, label: str) -> tuple[str, ...]:
    """A current KV version other than the one Steward wrote or recorded: someone else wrote the secret."""
    recorded = declared.store_version
    if not recorded or not str(recorded).isdigit() or not str(observed).isdigit():
        return ()
    if int(observed) != int(recorded):
        return (f"{label} is at version {observed}, but Steward wrote or recorded version {recorded}: the secret "
                "was changed outside Steward",)
    return ()


# PostgreSQL ------------------------------------------------------------------------------------

# Role attributes no read or write identity needs; an admin-level credential may hold them.
POSTGRES_ATTRIBUTES = ("SUPERUSER", "CREATEROLE", "CREATEDB", "BYPASSRLS", "REPLICATION")
# Predefined roles a read-level identity may belong to without writing anything.
POSTGRES_READ_ROLES = frozenset({"pg_read_all_data", "pg_read_all_settings", "pg_read_all_stats",
                                 "pg_stat_scan_tables", "pg_monitor"})
# Predefined roles that reach beyond the database's data (files, programs, other sessions).
POSTGRES_ADMIN_ROLES = frozenset({"pg_execute_server_program", "pg_read_server_files", "pg_write_server_files",
                                  "pg_signal_backend", "pg_checkpoint", "pg_create_subscription", "pg_maintain",
                                  "pg_use_reserved_connections"})
POSTGRES_READ_PRIVILEGES = frozenset({"SELECT", "USAGE", "CONNECT", "REFERENCES"})


@dataclass(frozen=True)
class PostgresPrivilege:
    """One observed privilege: (privilege, object type, name) as a grant, e.g. SELECT ON TABLE app.orders."""

    privilege: str
    object_type: str  # TABLE, SEQUENCE, SCHEMA, DATABASE
    name: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"GRANT {self.privilege} ON {self.object_type} {'.'.join(self.name)}"


def _declared_grants(scopes: Iterable[str]) -> list[PostgresGrant] | None:
    """The scopes as PostgreSQL grants, or None when they are not grants (free-form labels)."""
    scopes = [s for s in scopes if str(s).strip()]
    if not scopes:
        return None
    try:
        return [parse_postgres_grant(s) for s in scopes]
    except ScopeError:
        return None


def _covered(observed: PostgresPrivilege, grants: list[PostgresGrant]) -> bool:
    for grant in grants:
        if observed.privilege not in grant.privileges:
            continue
        if grant.object_type == "ALL TABLES IN SCHEMA":
            if observed.object_type == "TABLE" and observed.name[0] == grant.name[0]:
                return True
            continue
        if grant.object_type != observed.object_type:
            continue
        name = grant.name
        if observed.object_type in ("TABLE", "SEQUENCE") and len(name) == 1:
            name = ("public", *name)
        if name == observed.name:
            return True
    return False


def postgres_excess(*, attributes: Iterable[str], memberships: Iterable[str], grants: Iterable[PostgresPrivilege],
                    declared: DeclaredPrivilege) -> dict[str, str]:
    """What a PostgreSQL role holds above its declaration: {privilege line: reason}.

    Attributes (SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS, REPLICATION) are above any level but admin.
    With scopes declared as grants, every observed grant must be one of them and no membership is
    declared; without, a read-level role holds nothing but read privileges and read-only predefined
    roles, and only an admin-level role belongs to the predefined roles that reach the server itself;
    the baseline (beyond_baseline) then catches the rest.
    """
    level = declared.level or "read"
    excess: dict[str, str] = {}
    if level != "admin":
        for attribute in attributes:
            if attribute in POSTGRES_ATTRIBUTES:
                excess[f"ATTRIBUTE {attribute}"] = f"role attribute {attribute} (declared {level})"
    declared_grants = _declared_grants(declared.scopes)
    for role in sorted(memberships):
        line = f"MEMBER OF {role}"
        if declared_grants is not None and level != "admin":
            excess[line] = f"member of {role} (not a declared scope)"
        elif role in POSTGRES_ADMIN_ROLES and level != "admin":
            excess[line] = f"member of {role} (declared {level})"
        elif level == "read" and role not in POSTGRES_READ_ROLES:
            excess[line] = f"member of {role} (declared read)"
    for grant in sorted(grants, key=lambda g: g.text):
        if declared_grants is not None:
            if not _covered(grant, declared_grants):
                excess[grant.text] = f"{grant.text} (not a declared scope)"
        elif level == "read" and grant.privilege not in POSTGRES_READ_PRIVILEGES:
            excess[grant.text] = f"{grant.text} (declared read)"
    return excess


def postgres_scopes_declared(declared: DeclaredPrivilege) -> bool:
    return _declared_grants(declared.scopes) is not None


# Redis -----------------------------------------------------------------------------------------

REDIS_WRITE_CATEGORIES = ("+@all", "+@write", "+@dangerous", "+@admin", "allcommands")
REDIS_ADMIN_CATEGORIES = ("+@all", "+@dangerous", "+@admin", "allcommands")


def declared_redis_rules(scopes: Iterable[str]) -> list[str] | None:
    """The scopes as ACL rules, or None when they are not rules (free-form labels)."""
    scopes = [s for s in scopes if str(s).strip()]
    if not scopes:
        return None
    try:
        return [parse_redis_rule(s) for s in scopes]
    except ScopeError:
        return None


def redis_privileges(info: dict) -> tuple[str, ...]:
    """An ACL GETUSER answer as canonical lines (commands, keys, channels, selectors; not passwords or on/off)."""
    def words(name):
        value = info.get(name) or []
        return [str(v) for v in value] if isinstance(value, list | tuple) else str(value).split()

    # redis-py splits the command rules into categories and commands; Redis itself answers one string.
    lines = [f"commands {' '.join([*words('categories'), *words('commands')]) or '(none)'}"]
    lines += [f"{name} {' '.join(words(name)) or '(none)'}" for name in ("keys", "channels")]
    for selector in info.get("selectors") or []:
        lines.append(f"selector {selector}")
    flags = [f for f in (info.get("flags") or []) if f in ("nopass", "allkeys", "allchannels", "allcommands")]
    lines += [f"flag {f}" for f in flags]
    return tuple(lines)


def redis_level_excess(privileges: Iterable[str], level: str) -> dict[str, str]:
    """Without declared rules: commands above the declared level (write commands for read, admin ones for
    write), as {privilege line: reason}."""
    level = level or "read"
    if level == "admin":
        return {}
    forbidden = REDIS_WRITE_CATEGORIES if level == "read" else REDIS_ADMIN_CATEGORIES
    excess = {}
    for line in privileges:
        if line.startswith(("commands ", "flag ")):
            found = [w for w in forbidden if w in line.split()[1:]]
            if found:
                excess[line] = f"commands {' '.join(found)} (declared {level})"
    return excess


# OpenBao ----------------------------------------------------------------------------------------

def policy_excess(policies: Iterable[str], declared: DeclaredPrivilege) -> dict[str, str]:
    """Token or AppRole policies beyond the declared ones ("default" is every token's; root is never declared
    below admin), as {privilege line: reason}."""
    allowed = {s.strip() for s in declared.scopes if s.strip()} | {"default"}
    excess = {}
    for policy in sorted(set(policies)):
        if policy == "root" and declared.level != "admin":
            excess[f"policy {policy}"] = f"policy root (declared {declared.level or 'read'})"
        elif declared.scopes and policy not in allowed:
            excess[f"policy {policy}"] = f"policy {policy} (not a declared scope)"
    return excess


# AWS IAM: the user's policies and access keys -------------------------------------------------

AWS_ADMIN_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


def declared_aws_policies(scopes: Iterable[str]) -> tuple[str, ...] | None:
    """The declared scopes as IAM managed policy ARNs (what provisioning attached), or None when they are
    free-form labels (a credential registered by hand): then the level and the baseline judge instead."""
    scopes = [s for s in scopes if str(s).strip()]
    if not scopes:
        return None
    try:
        return tuple(parse_aws_policy_arn(s) for s in scopes)
    except ScopeError:
        return None


def aws_policy_excess(policies: Iterable[str], declared: DeclaredPrivilege) -> tuple[str, ...]:
    """Policies beyond the declaration. Declared as policy ARNs (provisioned): any other policy, inline ones
    included. Declared as labels (registered by hand): an administrative policy above the declared level,
    and any policy added since Steward last accepted the user's policies (the baseline)."""
    policies = list(policies)
    arns = declared_aws_policies(declared.scopes)
    if arns is not None:
        return tuple(f"{p} (declared: {', '.join(arns)})" for p in policies if p not in arns)
    flagged = {p: f"{p}: administers the account (declared {declared.level or 'read'})" for p in policies
               if declared.level != "admin" and p.rsplit("/", 1)[-1] in AWS_ADMIN_POLICIES}
    return (*flagged.values(), *beyond_baseline(policies, declared.baseline, flagged=flagged))


def aws_key_changes(user: str, keys: dict[str, dict], stored_key_id: str) -> tuple[str, ...]:
    """Access keys Steward did not make or no longer holds: a second key, or the stored one gone or disabled."""
    changes = [f"IAM user {user} has access key {key_id} that Steward did not create or store"
               for key_id in sorted(keys) if key_id != stored_key_id]
    if stored_key_id and stored_key_id not in keys:
        changes.append(f"the stored access key {stored_key_id} of IAM user {user} no longer exists: deleted "
                       "outside Steward")
    elif stored_key_id and keys[stored_key_id].get("Status") != "Active":
        changes.append(f"the stored access key {stored_key_id} of IAM user {user} was set "
                       f"{keys[stored_key_id].get('Status')} outside Steward")
    return tuple(changes)
