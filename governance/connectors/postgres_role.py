"""A PostgreSQL login role: rotate its password, suspend (NOLOGIN), retire (DROP ROLE), with proof.

Target: ConnectorTarget(kind="postgres_role") on the credential's System, settings {"host",
"port", "dbname", "sslmode", "connect_timeout", "admin_user_env_var", "admin_password_env_var"}
(the admin's user name and password come from the environment variables named there). The
role is Credential.identifier; its password lives in the credential's OpenBao KV store at
Credential.store_path as {"username": role, "password": ...}.

Rotation runs ALTER ROLE with a SCRAM-SHA-256 verifier computed here (the plain password never
reaches the server's statement log) while a thread reads the stored password and its version
(one KV read), writes the new password to OpenBao with check-and-set on that version inside the
same open transaction (a failed read or write rolls the ALTER back), commits, then proves it, the
three proofs at once (two threads and this one): the store's current version is the one written and holds the new
password, a login with the new password succeeds, and a login with the previous one is refused.

Within session() (the batch job path: up to 50 rotations per message) the admin connection is
opened once and reused; an action that fails rolls its transaction back, and a connection that
broke is dropped, so the next rotation opens a new one.

Provisioning creates the role (LOGIN, no attributes, a comment naming the run) with exactly the
grants its scopes declare (governance.connectors.scopes), in the transaction that writes its
password to OpenBao; it proves a sign-in and reads the role's privileges back from the catalogs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
from psycopg import sql

from governance.connectors.base import (
    ActionResult,
    Connector,
    ConnectorError,
    CredentialRef,
    Misconfigured,
    Observation,
    PermissionRefused,
    ProbeRecorder,
    ProbeResult,
    ProvisionResult,
    ProvisionSpec,
    ReferenceBroken,
    RotationResult,
    Unreachable,
    VerificationFailed,
    destroy_stored_password,
    env_value,
    new_secret_value,
    now,
    password_proof,
    scrub,
)
from governance.connectors.drift import (
    DeclaredPrivilege,
    DriftReport,
    PostgresPrivilege,
    beyond_baseline,
    kv_version_change,
    postgres_excess,
    postgres_scopes_declared,
)
from governance.connectors.openbao_kv import OpenBaoKV, is_store_step, undo_order
from governance.connectors.scopes import PostgresGrant, parse_scopes

POSTGRES_ATTRIBUTE_COLUMNS = ("SUPERUSER", "CREATEROLE", "CREATEDB", "BYPASSRLS", "REPLICATION")
# A role's privileges on tables and sequences (of the target's database), schemas and databases, from the ACLs.
PRIVILEGES_SQL = """
SELECT a.privilege_type, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
 WHERE a.grantee = %(oid)s AND c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')
UNION
SELECT a.privilege_type, 'SCHEMA', n.nspname, NULL FROM pg_namespace n, aclexplode(n.nspacl) a
 WHERE a.grantee = %(oid)s
UNION
SELECT a.privilege_type, 'DATABASE', d.datname, NULL FROM pg_database d, aclexplode(d.datacl) a
 WHERE a.grantee = %(oid)s
ORDER BY 2, 3, 4, 1
"""
AUTH_REFUSED_STATES = {"28P01", "28000"}
AUTH_REFUSED_WORDS = ("password authentication failed", "not permitted to log in", "does not exist",
                      "no pg_hba.conf entry")


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int = 5432
    dbname: str = "postgres"
    sslmode: str = "prefer"
    connect_timeout: int = 5
    admin_user_env_var: str = ""
    admin_password_env_var: str = ""

    @classmethod
    def from_target(cls, settings: dict) -> PostgresSettings:
        if not settings.get("host"):
            raise Misconfigured("The PostgreSQL target's settings must name a host.")
        try:
            return cls(
                host=str(settings["host"]), port=int(settings.get("port", 5432)),
                dbname=str(settings.get("dbname", "postgres")), sslmode=str(settings.get("sslmode", "prefer")),
                connect_timeout=int(settings.get("connect_timeout", 5)),
                admin_user_env_var=str(settings.get("admin_user_env_var", "")),
                admin_password_env_var=str(settings.get("admin_password_env_var", "")),
            )
        except (TypeError, ValueError) as error:
            raise Misconfigured(f"Invalid PostgreSQL target settings ({error}).") from error


SCRAM_ITERATIONS = 4096
PROOF_THREADS = 3  # a rotation's proofs: the two sign-ins and the read-back (the KV read before runs in one)
# libpq 18 can take a sign-in's SCRAM keys (scram_client_key, scram_server_key) instead of deriving them.
LIBPQ_TAKES_SCRAM_KEYS = psycopg.pq.version() >= 180000


def scram_keys(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> tuple[bytes, bytes]:
    """(ClientKey, ServerKey) of a password for a salt (RFC 5802): what a client derives to sign in."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return (hmac.new(salted, b"Client Key", hashlib.sha256).digest(),
            hmac.new(salted, b"Server Key", hashlib.sha256).digest())


def new_scram_secret() -> tuple[str, bytes, tuple[bytes, bytes]]:
    """(password, salt, the password's SCRAM keys for that salt) for a rotation."""
    password, salt = new_secret_value(), os.urandom(16)
    return password, salt, scram_keys(password, salt)


def scram_verifier(password: str, *, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677), so the password is never sent."""
    salt = os.urandom(16)
    return scram_verifier_of(salt, scram_keys(password, salt, iterations), iterations)


def scram_verifier_of(salt: bytes, keys: tuple[bytes, bytes], iterations: int = SCRAM_ITERATIONS) -> str:
    """The verifier of a password whose keys (scram_keys) for this salt are known."""
    client_key, server_key = keys
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"


def _refused(error: psycopg.Error) -> bool:
    text = str(error).lower()
    return getattr(error, "sqlstate", None) in AUTH_REFUSED_STATES or any(w in text for w in AUTH_REFUSED_WORDS)


class PostgresRole(Connector):
    kind = "postgres_role"
    revokes_at_issuer = True

    def __init__(self, settings: PostgresSettings, kv: OpenBaoKV):
        self.settings = settings
        self.kv = kv
        self._session = threading.local()  # per thread: a worker's batch never shares its connection

    # Connections

    def _params(self, user: str, password: str | None) -> dict:
        s = self.settings
        params = {"host": s.host, "port": s.port, "dbname": s.dbname, "user": user, "sslmode": s.sslmode,
                  "connect_timeout": s.connect_timeout, "application_name": "steward-connector"}
        if password is not None:
            params["password"] = password
        return params

    def admin(self) -> psycopg.Connection:
        user = env_value(self.settings.admin_user_env_var, what="the PostgreSQL admin user")
        password = env_value(self.settings.admin_password_env_var, what="the PostgreSQL admin password",
                             required=False)
        try:
            return psycopg.connect(**self._params(user, password))
        except psycopg.OperationalError as error:
            if _refused(error):
                raise Misconfigured(f"The PostgreSQL admin {user} cannot sign in to "
                                    f"{self.settings.host}:{self.settings.port}.") from None
            raise Unreachable(f"PostgreSQL {self.settings.host}:{self.settings.port} did not answer.") from None

    @contextlib.contextmanager
    def batch_session(self):
        """Reuse one admin connection, and the threads the proofs run in, for every rotation until the end
        (opened on first use; the threads are waited for and the connection closed here)."""
        if getattr(self._session, "active", False):
            yield
            return
        self._session.active, self._session.conn, self._session.pool = True, None, None
        self._session.store = self._session.spare = None
        try:
            yield
        finally:
            conn, pool = self._session.conn, self._session.pool
            self._session.conn = self._session.pool = self._session.store = self._session.spare = None
            self._session.active = False
            if pool is not None:
                pool.shutdown(wait=True)
            if conn is not None:
                conn.close()

    def _threads(self) -> tuple[ThreadPoolExecutor, bool]:
        """(pool, owned): the session's threads, or new ones the caller shuts down."""
        if not getattr(self._session, "active", False):
            return ThreadPoolExecutor(max_workers=PROOF_THREADS, thread_name_prefix="pg-rotate"), True
        if self._session.pool is None:
            # two rotations' proofs may run at once, while the next one reads the store
            self._session.pool = ThreadPoolExecutor(max_workers=2 * PROOF_THREADS + 1,
                                                    thread_name_prefix="pg-rotate")
        return self._session.pool, False

    def _new_secret(self, pool: ThreadPoolExecutor) -> tuple[str, bytes, tuple[bytes, bytes]]:
        """A new password, a salt and the password's SCRAM keys for it. In a session the next rotation's
        is made ahead, in one of its threads, while this one's ALTER ROLE runs (used once, in memory only;
        dropped with the session)."""
        if not getattr(self._session, "active", False):
            return new_scram_secret()
        made = self._session.spare.result() if self._session.spare is not None else new_scram_secret()
        self._session.spare = pool.submit(new_scram_secret)
        return made

    def _proof_store(self) -> tuple[OpenBaoKV, threading.Lock]:
        """Where the proofs read the store back, and the lock its HTTP session is used under: in a session,
        a client of its own (the next rotation uses the connector's meanwhile); else the connector's."""
        if not getattr(self._session, "active", False):
            return self.kv, threading.Lock()
        if self._session.store is None:
            self._session.store = (OpenBaoKV(self.kv.settings), threading.Lock())
        return self._session.store

    @contextlib.contextmanager
    def connection(self):
        """An admin connection for one action: a new one, closed after it; or, in a session, the session's,
        committed after it, rolled back on failure, and dropped if it broke."""
        if not getattr(self._session, "active", False):
            with self.admin() as conn:
                yield conn
            return
        conn = self._session.conn
        if conn is None or conn.closed or conn.broken:
            conn = self._session.conn = self.admin()
        try:
            yield conn
            conn.commit()
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            if conn.closed or conn.broken:
                self._session.conn = None
                conn.close()
            raise

    def login_works(self, role: str, password: str, *, keys: tuple[bytes, bytes] | None = None) -> bool:
        """True when the role signs in with this password; False when refused; Unreachable otherwise.

        keys: the password's SCRAM keys (scram_keys) for the salt of the verifier the server holds,
        when known; libpq (18 and later) then uses them instead of deriving them itself, with its
        slower PBKDF2, from the salt the server sends: the same keys, so the same answer.
        """
        params, values = self._params(role, password), [password]
        if keys is not None and LIBPQ_TAKES_SCRAM_KEYS:
            client_key, server_key = (base64.b64encode(key).decode() for key in keys)
            params.update(scram_client_key=client_key, scram_server_key=server_key)
            values += [client_key, server_key]
        try:
            with psycopg.connect(**params):
                return True
        except psycopg.OperationalError as error:
            if _refused(error):
                return False
            raise Unreachable(scrub(f"PostgreSQL login check for {role} failed: {error}", values)) from None

    @contextlib.contextmanager
    def _errors(self, what: str):
        try:
            yield
        except ConnectorError:
            raise
        except psycopg.errors.InsufficientPrivilege as error:
            raise PermissionRefused(f"{what}: the admin may not do this ({error.diag.message_primary}).") from None
        except psycopg.errors.UndefinedObject as error:
            raise ReferenceBroken(f"{what}: {error.diag.message_primary}.") from None
        except psycopg.OperationalError as error:
            raise Unreachable(f"{what}: PostgreSQL connection failed ({type(error).__name__}).") from None
        except psycopg.Error as error:
            raise ConnectorError(f"{what}: PostgreSQL refused ({error.diag.message_primary or type(error).__name__})."
                                 ) from None

    def _role_row(self, conn, role: str):
        return conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [role]).fetchone()

    def _require_role(self, conn, role: str):
        row = self._role_row(conn, role)
        if row is None:
            raise ReferenceBroken(f"PostgreSQL role {role} does not exist on {self.settings.host}.")
        return row

    def _terminate_sessions(self, conn, role: str) -> str:
        try:
            count = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = %s AND pid <> "
                "pg_backend_pid()", [role]).fetchone()[0]
            conn.commit()
            return f"{count} open session(s) of {role} terminated."
        except psycopg.Error as error:
            conn.rollback()
            return f"Open sessions of {role} not terminated ({error.diag.message_primary})."

    def stored_password(self, ref: CredentialRef) -> tuple[str, str | None]:
        path = self.kv.path_of(ref.store_path)
        data = self.kv.read_value(path) or {}
        return path, data.get("password")

    # Interface

    def observe(self, ref: CredentialRef) -> Observation:
        observation = self.kv.observe(ref)
        with self._errors(f"Looking up role {ref.identifier}"), self.connection() as conn:
            row = self._require_role(conn, ref.identifier)
        state = observation.state if row[0] else "disabled"
        return Observation(observation.version, observation.created_at, state=state,
                           detail=f"{observation.detail}; role {ref.identifier} {'can' if row[0] else 'cannot'} log in")

    def rotate(self, ref: CredentialRef) -> RotationResult:
        return self.rotate_begin(ref)()

    def rotate_begin(self, ref: CredentialRef):
        """The password changed and committed; its proofs started (the sign-ins, in threads). The returned
        function reads the stored version back, waits for the sign-ins and returns the proven result,
        or raises: the batch path starts the next rotation before calling it."""
        return self._new_password(ref, login=False)

    def reactivate_rotated(self, ref: CredentialRef) -> ActionResult:
        """LOGIN and a new password in one ALTER ROLE: the suspended password never signs in again."""
        result = self._new_password(ref, login=True)()
        proof = (f"PostgreSQL: role {ref.identifier} is LOGIN again, with a new password (one ALTER ROLE).",
                 *result.proof)
        return ActionResult("reactivate", now(), proof, rotation=result)

    def _new_password(self, ref: CredentialRef, *, login: bool):
        pool, owned = self._threads()
        try:
            finish = self._change_password(ref, login=login, pool=pool)
        except BaseException:
            if owned:
                pool.shutdown(wait=True)
            raise

        def proven() -> RotationResult:
            try:
                return finish()
            finally:
                if owned:
                    pool.shutdown(wait=True)

        return proven

    def _change_password(self, ref: CredentialRef, *, login: bool, pool: ThreadPoolExecutor):
        role = ref.identifier
        path = self.kv.path_of(ref.store_path)
        # The previous password and the version to check-and-set on (one KV read), read while the new
        # password is made and the ALTER ROLE runs, uncommitted: a missing role fails it (UndefinedObject:
        # ReferenceBroken). Nothing is written before the read's answer is in.
        stored = pool.submit(self.kv.read_current, path)
        new_password, salt, keys = self._new_secret(pool)
        statement = "ALTER ROLE {} WITH LOGIN PASSWORD {}" if login else "ALTER ROLE {} WITH PASSWORD {}"
        with self._errors(f"Rotating the password of {role}"), self.connection() as conn:
            try:
                conn.execute(sql.SQL(statement).format(
                    sql.Identifier(role), sql.Literal(scram_verifier_of(salt, keys))))
            finally:
                read_failed = stored.exception()
            if read_failed is not None:
                raise read_failed  # the ALTER is rolled back with the connection's transaction
            data, current, _meta = stored.result()
            old_password = (data or {}).get("password")
            try:
                version, _ = self.kv.write_value(path, {"username": role, "password": new_password}, cas=current)
            except ConnectorError:
                conn.rollback()
                raise
            try:
                conn.commit()
            except psycopg.Error:
                if old_password is not None:
                    self.kv.write_value(path, {"username": role, "password": old_password}, cas=version)
                raise
        prove = self.prove_begin(role, path, version, new_password, old_password, pool=pool, salt=salt, keys=keys)
        return lambda: RotationResult(version=str(version), rotated_at=now(), proof=tuple(prove()))

    def prove_begin(self, role: str, path: str, version: int, new_password: str, old_password: str | None, *,
                    pool: ThreadPoolExecutor, salt: bytes | None = None, keys: tuple[bytes, bytes] | None = None):
        """The three proofs of a rotation start now, in the pool's threads: the store's read-back and the
        two sign-ins (each its own connection); the returned function waits for all three and returns
        the proof lines, or raises, in that order: store, new password, old one.

        salt, keys: the new verifier's salt and the new password's keys for it. Both sign-ins use keys
        for that salt (login_works). The new password's is accepted only if the server holds that
        verifier (its stored key must match); only then is the old password's refusal looked at, and
        for that verifier the old password's keys derived here with that salt are exactly the ones
        libpq would derive from the salt the server sends.
        """
        check_old = old_password is not None and old_password != new_password
        store, store_lock = self._proof_store()

        def old_login_works() -> bool:
            return self.login_works(role, old_password, keys=scram_keys(old_password, salt) if salt else None)

        def read_back() -> list[str]:
            with store_lock:
                return list(store.verify_written(path, version, "password", new_password))

        stored = pool.submit(read_back)
        new_login = pool.submit(self.login_works, role, new_password, keys=keys if salt else None)
        old_login = pool.submit(old_login_works) if check_old else None

        def finish() -> list[str]:
            for future in (stored, new_login, old_login):  # all three end before anything is reported
                if future is not None:
                    future.exception()
            proof = stored.result()
            new_works = new_login.exception() is None and new_login.result()
            old_works = old_login is not None and old_login.exception() is None and old_login.result()
            if new_login.exception() is not None:
                raise new_login.exception()
            if not new_works:
                raise VerificationFailed(f"{role} cannot sign in with the new password (stored as version "
                                         f"{version}).")
            proof.append(f"PostgreSQL {self.settings.host}:{self.settings.port}: {role} signs in with the new "
                         "password.")
            if old_password is None:
                proof.append("No previous password was stored, so there was none to refuse.")
                return proof
            if old_login is not None and old_login.exception() is not None:
                raise old_login.exception()
            if not check_old or old_works:
                raise VerificationFailed(f"{role} still signs in with the previous password.")
            proof.append(f"PostgreSQL: a sign-in of {role} with the previous password is refused.")
            return proof

        return finish

    def rotation_resume(self, ref: CredentialRef, *, since) -> RotationResult | None:
        """A lost attempt wrote the new password to OpenBao: make sure the role has it (its ALTER ROLE may
        have died uncommitted), then prove it as rotate() does."""
        role, path = ref.identifier, self.kv.path_of(ref.store_path)
        found = self.kv.written_since(path, recorded=ref.store_version, since=since)
        if found is None or not found[1].get("password"):
            return None
        version, data, created = found
        password = data["password"]
        proof = [f"OpenBao {self.kv.label(path)}: version {version}, written {created:%Y-%m-%d %H:%M:%S} UTC by an "
                 "attempt whose worker was lost, is current: completed and recorded, not rotated again."]
        if not self.login_works(role, password):
            with self._errors(f"Completing the password change of {role}"), self.connection() as conn:
                self._require_role(conn, role)
                conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(scram_verifier(password))))
                conn.commit()
            proof.append(f"PostgreSQL: {role} was given version {version}'s password (the lost attempt had not "
                         "committed it).")
            if not self.login_works(role, password):
                raise VerificationFailed(f"{role} cannot sign in with the password of version {version}.")
        proof.append(f"PostgreSQL {self.settings.host}:{self.settings.port}: {role} signs in with the new password.")
        previous = self.kv.read_value(path, int(ref.store_version)) if ref.store_version.isdigit() else None
        old_password = (previous or {}).get("password")
        if old_password and old_password != password:
            if self.login_works(role, old_password):
                raise VerificationFailed(f"{role} still signs in with the previous password.")
            proof.append(f"PostgreSQL: a sign-in of {role} with the previous password is refused.")
        return RotationResult(version=str(version), rotated_at=created, proof=tuple(proof))

    def _set_login(self, ref: CredentialRef, *, login: bool) -> ActionResult:
        role = ref.identifier
        _, password = self.stored_password(ref)
        keyword = "LOGIN" if login else "NOLOGIN"
        with self._errors(f"Setting {keyword} on {role}"), self.admin() as conn:
            self._require_role(conn, role)
            conn.execute(sql.SQL("ALTER ROLE {} " + keyword).format(sql.Identifier(role)))
            conn.commit()
            sessions = "" if login else self._terminate_sessions(conn, role)
            can_login = self._role_row(conn, role)[0]
        if can_login != login:
            raise VerificationFailed(f"{role}: rolcanlogin is {can_login} after ALTER ROLE {keyword}.")
        proof = [f"PostgreSQL: role {role} is {keyword} (pg_roles.rolcanlogin = {can_login})."]
        if sessions:
            proof.append(sessions)
        proof.append(password_proof(lambda value: self.login_works(role, value), password, should_work=login,
                                    attempt=f"A sign-in of {role}"))
        return ActionResult("reactivate" if login else "suspend", now(), tuple(proof))

    def suspend(self, ref: CredentialRef) -> ActionResult:
        return self._set_login(ref, login=False)

    def reactivate(self, ref: CredentialRef) -> ActionResult:
        return self._set_login(ref, login=True)

    def revoke(self, ref: CredentialRef) -> ActionResult:
        role = ref.identifier
        _, password = self.stored_password(ref)
        with self._errors(f"Dropping role {role}"), self.admin() as conn:
            self._require_role(conn, role)
            conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
            conn.commit()
            sessions = self._terminate_sessions(conn, role)
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            conn.commit()
            gone = self._role_row(conn, role) is None
        if not gone:
            raise VerificationFailed(f"Role {role} still exists after DROP ROLE.")
        proof = [f"PostgreSQL: role {role} dropped (absent from pg_roles).", sessions]
        proof.append(password_proof(lambda value: self.login_works(role, value), password, should_work=False,
                                    attempt=f"A sign-in of {role}"))
        proof.extend(destroy_stored_password(self.kv, ref))
        return ActionResult("revoke", now(), tuple(proof))

    def observe_privilege(self, ref: CredentialRef, declared: DeclaredPrivilege) -> DriftReport:
        """The role's attributes, memberships and grants (tables, sequences, schemas, databases, from the
        catalogs' ACLs, which every role may read), and whether the stored password still signs in (a
        password set outside Steward makes it fail; pg_authid is for superusers only, the proof is not)."""
        role = ref.identifier
        path = self.kv.path_of(ref.store_path)
        kv_version = str(self.kv.current_version(path))
        _, password = self.stored_password(ref)
        with self._errors(f"Reading the privileges of {role}"), self.admin() as conn:
            row = conn.execute(
                "SELECT oid, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
                "FROM pg_roles WHERE rolname = %s", [role]).fetchone()
            if row is None:
                raise ReferenceBroken(f"PostgreSQL role {role} does not exist on {self.settings.host}.")
            oid, can_login, *flags = row
            attributes = [name for name, on in zip(POSTGRES_ATTRIBUTE_COLUMNS, flags, strict=True) if on]
            memberships = [r[0] for r in conn.execute(
                "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                "WHERE m.member = %s ORDER BY 1", [oid])]
            grants = [PostgresPrivilege(r[0], r[1], tuple(n for n in r[2:] if n)) for r in conn.execute(
                PRIVILEGES_SQL, {"oid": oid})]
            database = conn.info.dbname
        privileges = (*(f"ATTRIBUTE {a}" for a in attributes), *(f"MEMBER OF {m}" for m in memberships),
                      *(g.text for g in grants))
        changes = list(kv_version_change(kv_version, declared, f"OpenBao {self.kv.label(path)}"))
        checked = [f"PostgreSQL {self.settings.host}:{self.settings.port}/{database}: role {role} holds "
                   + (", ".join(privileges) or "no attributes, memberships or grants") + ".",
                   f"OpenBao {self.kv.label(path)}: current version {kv_version}."]
        if can_login and password is not None:
            if self.login_works(role, password):
                checked.append(f"A sign-in of {role} with the stored password works.")
            else:
                changes.append(f"a sign-in of {role} with the stored password is refused: its password was changed "
                               "outside Steward")
        flagged = postgres_excess(attributes=attributes, memberships=memberships, grants=grants, declared=declared)
        excess = list(flagged.values())
        if not postgres_scopes_declared(declared):
            excess += beyond_baseline(privileges, declared.baseline, flagged=flagged)
        return DriftReport(privileges=tuple(privileges), excess=tuple(excess), changes=tuple(changes),
                           checked=tuple(checked))

    def probe(self, ref: CredentialRef) -> ProbeResult:
        recorder = ProbeRecorder()
        role = ref.identifier

        def admin_rights():
            with self._errors("Checking the admin's rights"), self.admin() as conn:
                row = conn.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
                                   ).fetchone()
                if not (row[0] or row[1]):
                    raise PermissionRefused("the admin has neither SUPERUSER nor CREATEROLE")
                self._require_role(conn, role)
                superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role]).fetchone()[0]
            if superuser and not row[0]:
                raise PermissionRefused(f"{role} is a superuser: only a superuser may alter it")
            return f"reachable; the admin may alter {role}"

        recorder.check("PostgreSQL reachable, admin rights, role exists", admin_rights)
        try:
            self.kv.probe_paths(recorder, self.kv.path_of(ref.store_path))
        except ConnectorError as error:
            recorder.fail("Reference", error.reason)
        return recorder.result()

    # Provisioning: a new login role with exactly the declared grants

    def _grant_statement(self, grant: PostgresGrant, role: str) -> sql.Composed:
        names = [name.lower() for name in grant.name]  # unquoted identifiers, as PostgreSQL folds them
        target = sql.SQL(".").join(sql.Identifier(n) for n in names)
        return sql.SQL("GRANT {} ON {} {} TO {}").format(
            sql.SQL(", ").join(sql.SQL(p) for p in grant.privileges), sql.SQL(grant.object_type), target,
            sql.Identifier(role))

    def _declared_privileges(self, conn, grants) -> set[tuple[str, str, str]]:
        """(object kind, qualified name, privilege) for each declared grant, resolved in the catalogs."""
        declared = set()
        for grant in grants:
            names = [name.lower() for name in grant.name]
            if grant.object_type in ("TABLE", "SEQUENCE"):
                row = conn.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                   "c.relnamespace WHERE c.oid = to_regclass(%s)",
                                   [".".join(sql.Identifier(n).as_string(conn) for n in names)]).fetchone()
                objects = [("relation", f"{row[0]}.{row[1]}")] if row else []
            elif grant.object_type == "ALL TABLES IN SCHEMA":
                rows = conn.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                    "c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r','p','v','m','f')",
                                    [names[0]]).fetchall()
                objects = [("relation", f"{r[0]}.{r[1]}") for r in rows]
            else:
                objects = [(grant.object_type.lower(), names[0])]
            declared |= {(kind, name, privilege) for kind, name in objects for privilege in grant.privileges}
        return declared

    def role_privileges(self, conn, role: str) -> set[tuple[str, str, str]]:
        """What the role holds itself (not through PUBLIC): relations, schemas and databases."""
        rows = conn.execute(
            """
            WITH r AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
            SELECT 'relation', n.nspname || '.' || c.relname, a.privilege_type
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a, r
             WHERE a.grantee = r.oid
            UNION ALL
            SELECT 'schema', n.nspname, a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a, r
             WHERE a.grantee = r.oid
            UNION ALL
            SELECT 'database', d.datname, a.privilege_type FROM pg_database d, aclexplode(d.datacl) a, r
             WHERE a.grantee = r.oid
            """, {"role": role}).fetchall()
        return {(kind, name, privilege) for kind, name, privilege in rows}

    def _role_attributes(self, conn, role: str) -> list[str]:
        row = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
                           "(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) FROM pg_roles r "
                           "WHERE rolname = %s", [role]).fetchone()
        names = ("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS")
        held = [name for name, flag in zip(names, row[:5], strict=True) if flag]
        return held + ([f"member of {row[5]} role(s)"] if row[5] else [])

    def _revoke_statement(self, kind: str, name: str, role: str) -> sql.Composed:
        """REVOKE ALL on one object the role holds privileges on (kind and name as role_privileges gives them)."""
        object_type = {"relation": "TABLE", "schema": "SCHEMA", "database": "DATABASE"}[kind]
        parts = name.split(".", 1) if kind == "relation" else [name]
        return sql.SQL("REVOKE ALL ON {} {} FROM {}").format(
            sql.SQL(object_type), sql.SQL(".").join(sql.Identifier(p) for p in parts), sql.Identifier(role))

    def _role_comment(self, run_key: str) -> str:
        return f"Provisioned by Steward ({run_key or 'no run key'})"

    def provision(self, ref: CredentialRef, spec: ProvisionSpec) -> ProvisionResult:
        """CREATE ROLE ... LOGIN with a SCRAM verifier and the declared grants, in one transaction that
        also writes the password to OpenBao (a refused grant or write creates nothing); then proof: a
        sign-in works, each declared grant is held, nothing else is, and no role attribute is."""
        role = ref.identifier
        grants = parse_scopes(self.kind, spec.scopes)
        plan = self.kv.store_plan(ref.store_path)
        password = new_secret_value()
        created: list[str] = []

        def record(step: str) -> None:
            spec.record(step)
            created.append(step)

        with self._errors(f"Creating role {role}"), self.admin() as conn:
            if self._role_row(conn, role) is not None:
                raise ConnectorError(f"PostgreSQL role {role} exists already on {self.settings.host}: Steward "
                                     "provisions new roles only (register an existing one instead).")
            record(f"postgres_role:{role}")
            conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                                 "NOBYPASSRLS PASSWORD {}").format(sql.Identifier(role),
                                                                   sql.Literal(scram_verifier(password))))
            conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(
                sql.Identifier(role), sql.Literal(self._role_comment(spec.run_key))))
            for grant in grants:
                conn.execute(self._grant_statement(grant, role))
            version, proof = self.kv.store_write(plan, {"username": role, "password": password}, key="password",
                                                 record=record)
            conn.commit()
            declared = self._declared_privileges(conn, grants)
            held = self.role_privileges(conn, role)
            attributes = self._role_attributes(conn, role)
        proof = list(proof)
        if not self.login_works(role, password):
            raise VerificationFailed(f"{role} cannot sign in with its new password (stored as version {version}).")
        proof.append(f"PostgreSQL {self.settings.host}:{self.settings.port}: {role} signs in with the new password.")
        if attributes:
            raise VerificationFailed(f"{role} holds {', '.join(attributes)}, which was not declared.")
        if held != declared:
            extra = sorted(f"{p} ON {k} {n}" for k, n, p in held - declared)
            missing = sorted(f"{p} ON {k} {n}" for k, n, p in declared - held)
            raise VerificationFailed(f"{role} does not hold exactly the declared grants (not declared: "
                                     f"{', '.join(extra) or 'none'}; missing: {', '.join(missing) or 'none'}).")
        listed = "; ".join(sorted(f"{p} ON {k} {n}" for k, n, p in held)) or "none beyond PUBLIC's"
        proof.append(f"PostgreSQL: {role} holds exactly the declared privileges ({listed}), no role attribute "
                     "(SUPERUSER, CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS) and no role membership.")
        return ProvisionResult(version=str(version), provisioned_at=now(), proof=tuple(proof), created=tuple(created))

    def provision_undo(self, ref: CredentialRef, spec: ProvisionSpec, created) -> tuple[str, ...]:
        """Newest first: the stored password, then the role (only one this run created: its comment says so)."""
        proof = []
        for step in undo_order(created):
            if is_store_step(step):
                proof.append(self.kv.store_undo(step))
            elif step.startswith("postgres_role:"):
                proof.append(self._drop_provisioned(step.partition(":")[2], spec.run_key))
        return tuple(proof)

    def _drop_provisioned(self, role: str, run_key: str) -> str:
        with self._errors(f"Removing role {role}"), self.admin() as conn:
            row = conn.execute("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
                               [role]).fetchone()
            if row is None:
                return f"PostgreSQL: role {role} does not exist (nothing to remove)."
            if row[0] != self._role_comment(run_key):
                raise ConnectorError(f"PostgreSQL role {role} was not created by this provisioning: left alone.")
            conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
            conn.commit()
            self._terminate_sessions(conn, role)
            for kind, name, _privilege in sorted(self.role_privileges(conn, role)):
                conn.execute(self._revoke_statement(kind, name, role))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            conn.commit()
            if self._role_row(conn, role) is not None:
                raise VerificationFailed(f"Role {role} still exists after DROP ROLE.")
        return f"PostgreSQL: role {role} and its grants dropped (absent from pg_roles)."
