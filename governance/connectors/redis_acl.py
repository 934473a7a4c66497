"""A Redis ACL user: rotate its password (ACL SETUSER), suspend ("off"), revoke (ACL DELUSER), with proof.

Target: ConnectorTarget(kind="redis_acl") on the credential's System, settings {"host", "port",
"tls", "socket_timeout", "admin_user_env_var", "admin_password_env_var", "persist"} (admin
user and password from the environment variables named there; both may be left unnamed for a
server without authentication). The ACL user is Credential.identifier; its password lives in
the credential's OpenBao KV store at Credential.store_path as {"username": ..., "password": ...}.

Passwords are sent as SHA-256 hashes ("#<hex>"), never in clear. ACL changes live in memory:
settings.persist = "acl_save" runs ACL SAVE after each change (a server with an aclfile).

Provisioning creates the user (reset, on, the new password's hash, then exactly the declared ACL
rules: governance.connectors.scopes) only when no user of that name exists, writes its password to
OpenBao, and proves AUTH works and the user's rules are the declared ones.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass

import redis
from redis.connection import Connection, SSLConnection

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
)
from governance.connectors.drift import (
    DeclaredPrivilege,
    DriftReport,
    beyond_baseline,
    declared_redis_rules,
    kv_version_change,
    redis_level_excess,
    redis_privileges,
)
from governance.connectors.openbao_kv import OpenBaoKV, is_store_step, undo_order
from governance.connectors.scopes import parse_scopes


@dataclass(frozen=True)
class RedisSettings:
    host: str
    port: int = 6379
    tls: bool = False
    socket_timeout: float = 5.0
    admin_user_env_var: str = ""
    admin_password_env_var: str = ""
    persist: str = "none"  # none, acl_save

    @classmethod
    def from_target(cls, settings: dict) -> RedisSettings:
        if not settings.get("host"):
            raise Misconfigured("The Redis target's settings must name a host.")
        persist = str(settings.get("persist", "none"))
        if persist not in ("none", "acl_save"):
            raise Misconfigured('Redis "persist" must be "none" or "acl_save".')
        try:
            return cls(host=str(settings["host"]), port=int(settings.get("port", 6379)),
                       tls=bool(settings.get("tls", False)),
                       socket_timeout=float(settings.get("socket_timeout", 5.0)),
                       admin_user_env_var=str(settings.get("admin_user_env_var", "")),
                       admin_password_env_var=str(settings.get("admin_password_env_var", "")), persist=persist)
        except (TypeError, ValueError) as error:
            raise Misconfigured(f"Invalid Redis target settings ({error}).") from error


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


class RedisACL(Connector):
    kind = "redis_acl"
    revokes_at_issuer = True

    def __init__(self, settings: RedisSettings, kv: OpenBaoKV):
        self.settings = settings
        self.kv = kv

    def _connection_kwargs(self, username: str | None, password: str | None) -> dict:
        s = self.settings
        return {"host": s.host, "port": s.port, "username": username, "password": password,
                "socket_timeout": s.socket_timeout, "socket_connect_timeout": s.socket_timeout}

    def admin(self) -> redis.Redis:
        user = env_value(self.settings.admin_user_env_var, what="the Redis admin user", required=False) or None
        password = env_value(self.settings.admin_password_env_var, what="the Redis admin password",
                             required=False) or None
        return redis.Redis(**self._connection_kwargs(user, password), ssl=self.settings.tls,
                           single_connection_client=True)

    def auth_works(self, username: str, password: str) -> bool:
        """True when AUTH succeeds; False when refused (wrong password or user off or absent)."""
        connection_class = SSLConnection if self.settings.tls else Connection
        connection = connection_class(**self._connection_kwargs(username, password))
        try:
            connection.connect()
            return True
        except redis.AuthenticationError:
            return False
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise Unreachable(f"Redis {self.settings.host}:{self.settings.port}: {type(error).__name__}.") from None
        finally:
            connection.disconnect()

    @contextlib.contextmanager
    def _errors(self, what: str):
        try:
            yield
        except ConnectorError:
            raise
        except redis.AuthenticationError:
            raise Misconfigured(f"{what}: the Redis admin cannot sign in.") from None
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise Unreachable(f"{what}: Redis {self.settings.host}:{self.settings.port} did not answer "
                              f"({type(error).__name__}).") from None
        except redis.ResponseError as error:
            if str(error).startswith("NOPERM") or "no permissions" in str(error).lower():
                raise PermissionRefused(f"{what}: the Redis admin may not do this.") from None
            raise ConnectorError(f"{what}: Redis refused ({str(error)[:200]}).") from None

    def _user(self, client: redis.Redis, username: str) -> dict:
        info = client.acl_getuser(username)
        if info is None:
            raise ReferenceBroken(f"Redis ACL user {username} does not exist on {self.settings.host}.")
        return info

    def _persist(self, client: redis.Redis) -> None:
        if self.settings.persist == "acl_save":
            client.execute_command("ACL", "SAVE")

    def stored_password(self, ref: CredentialRef) -> tuple[str, str | None]:
        path = self.kv.path_of(ref.store_path)
        return path, (self.kv.read_value(path) or {}).get("password")

    # Interface

    def observe(self, ref: CredentialRef) -> Observation:
        observation = self.kv.observe(ref)
        with self._errors(f"Looking up ACL user {ref.identifier}"), self.admin() as client:
            info = self._user(client, ref.identifier)
        state = observation.state if info.get("enabled") else "disabled"
        return Observation(observation.version, observation.created_at, state=state,
                           detail=f"{observation.detail}; ACL user {ref.identifier} "
                                  f"{'on' if info.get('enabled') else 'off'}")

    def rotate(self, ref: CredentialRef) -> RotationResult:
        return self._new_password(ref, switch_on=False)

    def reactivate_rotated(self, ref: CredentialRef) -> ActionResult:
        """on and a new password in one ACL SETUSER: the suspended password never authenticates again."""
        result = self._new_password(ref, switch_on=True)
        proof = (f"Redis ACL user {ref.identifier} is on again, with a new password (one ACL SETUSER).",
                 *result.proof)
        return ActionResult("reactivate", now(), proof, rotation=result)

    def _new_password(self, ref: CredentialRef, *, switch_on: bool) -> RotationResult:
        user = ref.identifier
        path, old_password = self.stored_password(ref)
        current = self.kv.current_version(path)
        new_password = new_secret_value()
        new_hash = password_hash(new_password)
        with self._errors(f"Rotating the password of {user}"), self.admin() as client:
            old_hashes = self._user(client, user).get("passwords") or []
            client.execute_command("ACL", "SETUSER", user, *(["on"] if switch_on else []), "resetpass",
                                   f"#{new_hash}")
            try:
                version, _ = self.kv.write_value(path, {"username": user, "password": new_password}, cas=current)
            except ConnectorError:
                # Back to the old passwords; a user that had none keeps none (never nopass: that would let
                # anyone sign in as it), so it cannot authenticate until a rotation succeeds.
                client.execute_command("ACL", "SETUSER", user, "resetpass", *(f"#{h}" for h in old_hashes))
                raise
            self._persist(client)
            hashes = self._user(client, user).get("passwords") or []
        proof = list(self.kv.verify_written(path, version, "password", new_password))
        if hashes != [new_hash]:
            raise VerificationFailed(f"ACL user {user} holds {len(hashes)} password(s), not only the new one.")
        proof.append(f"Redis ACL user {user}: the new password's hash is its only password.")
        if not self.auth_works(user, new_password):
            raise VerificationFailed(f"AUTH as {user} with the new password fails (stored as version {version}).")
        proof.append(f"Redis {self.settings.host}:{self.settings.port}: AUTH as {user} with the new password works.")
        if old_password is not None:
            if old_password == new_password or self.auth_works(user, old_password):
                raise VerificationFailed(f"AUTH as {user} with the previous password still works.")
            proof.append(f"AUTH as {user} with the previous password is refused.")
        else:
            proof.append("No previous password was stored; its hashes were removed from the ACL user.")
        return RotationResult(version=str(version), rotated_at=now(), proof=tuple(proof))

    def rotation_resume(self, ref: CredentialRef, *, since) -> RotationResult | None:
        """A lost attempt wrote the new password to OpenBao: make sure the ACL user has it (and only it),
        then prove it as rotate() does."""
        user, path = ref.identifier, self.kv.path_of(ref.store_path)
        found = self.kv.written_since(path, recorded=ref.store_version, since=since)
        if found is None or not found[1].get("password"):
            return None
        version, data, created = found
        password = data["password"]
        proof = [f"OpenBao {self.kv.label(path)}: version {version}, written {created:%Y-%m-%d %H:%M:%S} UTC by an "
                 "attempt whose worker was lost, is current: completed and recorded, not rotated again."]
        with self._errors(f"Completing the password change of {user}"), self.admin() as client:
            if (self._user(client, user).get("passwords") or []) != [password_hash(password)]:
                client.execute_command("ACL", "SETUSER", user, "resetpass", f"#{password_hash(password)}")
                self._persist(client)
                proof.append(f"Redis ACL user {user} was given version {version}'s password.")
            hashes = self._user(client, user).get("passwords") or []
        if hashes != [password_hash(password)]:
            raise VerificationFailed(f"ACL user {user} holds {len(hashes)} password(s), not only the new one.")
        if not self.auth_works(user, password):
            raise VerificationFailed(f"AUTH as {user} with the password of version {version} fails.")
        proof.append(f"Redis {self.settings.host}:{self.settings.port}: AUTH as {user} with the new password works.")
        return RotationResult(version=str(version), rotated_at=created, proof=tuple(proof))

    def _switch(self, ref: CredentialRef, *, on: bool) -> ActionResult:
        user = ref.identifier
        _, password = self.stored_password(ref)
        with self._errors(f"Turning {user} {'on' if on else 'off'}"), self.admin() as client:
            self._user(client, user)
            client.execute_command("ACL", "SETUSER", user, "on" if on else "off")
            killed = 0 if on else client.execute_command("CLIENT", "KILL", "USER", user)
            self._persist(client)
            enabled = bool(self._user(client, user).get("enabled"))
        if enabled != on:
            raise VerificationFailed(f"ACL user {user} is {'on' if enabled else 'off'} after the change.")
        proof = [f"Redis ACL user {user} is {'on' if on else 'off'}."]
        if not on:
            proof.append(f"{killed} open connection(s) of {user} closed.")
        proof.append(password_proof(lambda value: self.auth_works(user, value), password, should_work=on,
                                    attempt=f"AUTH as {user}"))
        return ActionResult("reactivate" if on else "suspend", now(), tuple(proof))

    def suspend(self, ref: CredentialRef) -> ActionResult:
        return self._switch(ref, on=False)

    def reactivate(self, ref: CredentialRef) -> ActionResult:
        return self._switch(ref, on=True)

    def revoke(self, ref: CredentialRef) -> ActionResult:
        user = ref.identifier
        _, password = self.stored_password(ref)
        with self._errors(f"Deleting ACL user {user}"), self.admin() as client:
            self._user(client, user)
            client.execute_command("ACL", "DELUSER", user)
            self._persist(client)
            gone = client.acl_getuser(user) is None
        if not gone:
            raise VerificationFailed(f"ACL user {user} still exists after ACL DELUSER.")
        proof = [f"Redis ACL user {user} deleted (ACL GETUSER finds nothing); its connections were closed."]
        proof.append(password_proof(lambda value: self.auth_works(user, value), password, should_work=False,
                                    attempt=f"AUTH as {user}"))
        proof.extend(destroy_stored_password(self.kv, ref))
        return ActionResult("revoke", now(), tuple(proof))

    def observe_privilege(self, ref: CredentialRef, declared: DeclaredPrivilege) -> DriftReport:
        """ACL GETUSER's commands, keys, channels and selectors against the declared rules, and the user's
        password hashes against the stored password's (a password set outside Steward, or a second one).

        Declared rules are compared as Redis itself normalises them: they are set on a scratch user
        (off, no password) whose GETUSER answer is read and the scratch user deleted again."""
        user = ref.identifier
        path = self.kv.path_of(ref.store_path)
        kv_version = str(self.kv.current_version(path))
        _, password = self.stored_password(ref)
        rules = declared_redis_rules(declared.scopes)
        with self._errors(f"Reading the ACL rules of {user}"), self.admin() as client:
            info = self._user(client, user)
            expected = None
            if rules is not None:
                scratch = f"steward-drift-{new_secret_value()[:12]}"
                try:
                    client.execute_command("ACL", "SETUSER", scratch, "reset", *rules)
                    expected = redis_privileges(self._user(client, scratch))
                finally:
                    client.execute_command("ACL", "DELUSER", scratch)
        privileges = redis_privileges(info)
        hashes = list(info.get("passwords") or [])
        changes = list(kv_version_change(kv_version, declared, f"OpenBao {self.kv.label(path)}"))
        if password is not None and password_hash(password) not in hashes:
            changes.append(f"ACL user {user} no longer holds the stored password's hash: its password was changed "
                           "outside Steward")
        elif len(hashes) > 1:
            changes.append(f"ACL user {user} holds {len(hashes)} passwords: one was added outside Steward")
        if expected is not None:
            excess = tuple(f"{line} (declared: {' '.join(rules)})" for line in privileges if line not in expected)
        else:
            flagged = redis_level_excess(privileges, declared.level)
            excess = (*flagged.values(), *beyond_baseline(privileges, declared.baseline, flagged=flagged))
        checked = (f"Redis {self.settings.host}:{self.settings.port}: ACL user {user} has " + "; ".join(privileges)
                   + f" and {len(hashes)} password(s).",
                   f"OpenBao {self.kv.label(path)}: current version {kv_version}.")
        return DriftReport(privileges=privileges, excess=tuple(excess), changes=tuple(changes),
                           checked=checked)

    def probe(self, ref: CredentialRef) -> ProbeResult:
        recorder = ProbeRecorder()
        user = ref.identifier

        def admin_rights():
            with self._errors("Checking the admin's rights"), self.admin() as client:
                whoami = client.execute_command("ACL", "WHOAMI")
                whoami = whoami.decode() if isinstance(whoami, bytes) else str(whoami)
                for command in (("ACL", "SETUSER", user), ("ACL", "DELUSER", user), ("CLIENT", "KILL", "USER", user)):
                    answer = client.execute_command("ACL", "DRYRUN", whoami, *command)
                    if answer not in (b"OK", "OK"):
                        raise PermissionRefused(f"{whoami} may not run {' '.join(command[:2])}")
                self._user(client, user)
            return f"reachable; {whoami} may change ACL user {user}"

        recorder.check("Redis reachable, admin rights, user exists", admin_rights)
        try:
            self.kv.probe_paths(recorder, self.kv.path_of(ref.store_path))
        except ConnectorError as error:
            recorder.fail("Reference", error.reason)
        return recorder.result()

    # Provisioning: a new ACL user with exactly the declared rules

    def acl_rules(self, client: redis.Redis, username: str) -> str:
        """The user's line in ACL LIST without its password hashes (what the user may do)."""
        for line in client.execute_command("ACL", "LIST"):
            text = line.decode() if isinstance(line, bytes) else str(line)
            words = text.split()
            if len(words) > 1 and words[0] == "user" and words[1] == username:
                return " ".join(w for w in words[2:] if not w.startswith(("#", ">")))
        raise ReferenceBroken(f"Redis ACL user {username} does not exist on {self.settings.host}.")

    def provision(self, ref: CredentialRef, spec: ProvisionSpec) -> ProvisionResult:
        """ACL SETUSER <user> reset on #<hash> <declared rules>, the password to OpenBao, then proof: AUTH
        works, the new hash is the only password, and the user's rules are the declared ones only."""
        user = ref.identifier
        rules = list(parse_scopes(self.kind, spec.scopes))
        plan = self.kv.store_plan(ref.store_path)
        password = new_secret_value()
        created: list[str] = []

        def record(step: str) -> None:
            spec.record(step)
            created.append(step)

        with self._errors(f"Creating ACL user {user}"), self.admin() as client:
            if client.acl_getuser(user) is not None:
                raise ConnectorError(f"Redis ACL user {user} exists already on {self.settings.host}: Steward "
                                     "provisions new users only (register an existing one instead).")
            record(f"redis_acl:{user}")
            client.execute_command("ACL", "SETUSER", user, "reset", "on", f"#{password_hash(password)}", *rules)
            self._persist(client)
            version, proof = self.kv.store_write(plan, {"username": user, "password": password}, key="password",
                                                 record=record)
            info = self._user(client, user)
            granted = self.acl_rules(client, user)
        proof = list(proof)
        if (info.get("passwords") or []) != [password_hash(password)] or not info.get("enabled"):
            raise VerificationFailed(f"ACL user {user} is not on with the new password as its only one.")
        if not self.auth_works(user, password):
            raise VerificationFailed(f"AUTH as {user} with the new password fails (stored as version {version}).")
        proof.append(f"Redis {self.settings.host}:{self.settings.port}: AUTH as {user} with the new password works; "
                     "it is the user's only password.")
        proof.append(f"Redis ACL user {user}: {granted} (reset first, then only the declared rules: "
                     f"{' '.join(rules) or 'none'}).")
        return ProvisionResult(version=str(version), provisioned_at=now(), proof=tuple(proof), created=tuple(created))

    def provision_undo(self, ref: CredentialRef, spec: ProvisionSpec, created) -> tuple[str, ...]:
        """Newest first: the stored password, then the ACL user (created by this run: it was absent before)."""
        proof = []
        for step in undo_order(created):
            if is_store_step(step):
                proof.append(self.kv.store_undo(step))
            elif step.startswith("redis_acl:"):
                user = step.partition(":")[2]
                with self._errors(f"Deleting ACL user {user}"), self.admin() as client:
                    if client.acl_getuser(user) is None:
                        proof.append(f"Redis ACL user {user} does not exist (nothing to remove).")
                        continue
                    client.execute_command("ACL", "DELUSER", user)
                    self._persist(client)
                    if client.acl_getuser(user) is not None:
                        raise VerificationFailed(f"ACL user {user} still exists after ACL DELUSER.")
                proof.append(f"Redis ACL user {user} deleted (ACL GETUSER finds nothing); its connections closed.")
        return tuple(proof)
