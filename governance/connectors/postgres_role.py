"""A PostgreSQL login role: rotate its password, suspend (NOLOGIN), retire (DROP ROLE), with proof.

Target: ConnectorTarget(kind="postgres_role") on the credential's System, settings {"host",
"port", "dbname", "sslmode", "connect_timeout", "admin_user_env_var", "admin_password_env_var"}
(the admin's user name and password come from the environment variables named there). The
role is Credential.identifier; its password lives in the credential's OpenBao KV store at
Credential.store_path as {"username": role, "password": ...}.

Rotation runs ALTER ROLE with a SCRAM-SHA-256 verifier computed here (the plain password never
reaches the server's statement log), writes the new password to OpenBao inside the same open
transaction (a failed write rolls the ALTER back), commits, then proves it: a login with the new
password succeeds and a login with the previous one is refused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
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
from governance.connectors.openbao_kv import OpenBaoKV

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


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677), so the password is never sent."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _refused(error: psycopg.Error) -> bool:
    text = str(error).lower()
    return getattr(error, "sqlstate", None) in AUTH_REFUSED_STATES or any(w in text for w in AUTH_REFUSED_WORDS)


class PostgresRole(Connector):
    kind = "postgres_role"

    def __init__(self, settings: PostgresSettings, kv: OpenBaoKV):
        self.settings = settings
        self.kv = kv

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

    def login_works(self, role: str, password: str) -> bool:
        """True when the role signs in with this password; False when refused; Unreachable otherwise."""
        try:
            with psycopg.connect(**self._params(role, password)):
                return True
        except psycopg.OperationalError as error:
            if _refused(error):
                return False
            raise Unreachable(scrub(f"PostgreSQL login check for {role} failed: {error}", [password])) from None

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
        with self._errors(f"Looking up role {ref.identifier}"), self.admin() as conn:
            row = self._require_role(conn, ref.identifier)
        state = observation.state if row[0] else "disabled"
        return Observation(observation.version, observation.created_at, state=state,
                           detail=f"{observation.detail}; role {ref.identifier} {'can' if row[0] else 'cannot'} log in")

    def rotate(self, ref: CredentialRef) -> RotationResult:
        role = ref.identifier
        path, old_password = self.stored_password(ref)
        current = self.kv.current_version(path)
        new_password = new_secret_value()
        with self._errors(f"Rotating the password of {role}"), self.admin() as conn:
            self._require_role(conn, role)
            conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(scram_verifier(new_password))))
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
        proof = list(self.kv.verify_written(path, version, "password", new_password))
        if not self.login_works(role, new_password):
            raise VerificationFailed(f"{role} cannot sign in with the new password (stored as version {version}).")
        proof.append(f"PostgreSQL {self.settings.host}:{self.settings.port}: {role} signs in with the new password.")
        if old_password is None:
            proof.append("No previous password was stored, so there was none to refuse.")
        elif old_password == new_password or self.login_works(role, old_password):
            raise VerificationFailed(f"{role} still signs in with the previous password.")
        else:
            proof.append(f"PostgreSQL: a sign-in of {role} with the previous password is refused.")
        return RotationResult(version=str(version), rotated_at=now(), proof=tuple(proof))

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
            with self._errors(f"Completing the password change of {role}"), self.admin() as conn:
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
