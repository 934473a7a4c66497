"""OpenBao PKI: issue, renew (re-issue before expiry), revoke by serial, verify revocation.

Reference: SecretStore.settings {"mount": "pki", "role": "<PKI role>", "domain": "", "key_mount":
""}; the token as for KV (SecretStore.credential_env_var); the certificate in use is named by
Credential.store_path "<mount>/cert/<serial>" (":" or "-" between the serial's bytes), or by
Credential.identifier (the serial).

A renewal issues a new certificate with the current certificate's common name and a lifetime
from the credential's rotation policy (CredentialRef.max_age_days: its own maximum age, else
STEWARD_CERT_LIFETIME_DAYS). The name must be one of the hosts its system declares
(CredentialRef.allowed_names, governance.hosts): a certificate for any other name is refused, not
issued. The issued private key exists only in memory, unless settings.key_mount names a KV v2
mount: then the bundle is stored there at "certificates/<credential name>", where its consumers
read it. The certificate it replaced stays valid for an overlap and is then revoked by the
renewal sweep (services.renewal). OpenBao cannot put a certificate on hold, so suspend revokes
(proved by the certificate's revocation time and its presence in the CRL) and reactivation
issues a new certificate.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

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
    VerificationFailed,
    now,
    parse_time,
)
from governance.connectors.openbao_kv import OpenBaoKV, OpenBaoSettings, is_store_step, openbao_errors, undo_order
from governance.hosts import names_outside

_SERIAL = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2})+$", re.I)


@dataclass(frozen=True)
class PKISettings:
    openbao: OpenBaoSettings
    role: str
    domain: str = ""
    key_mount: str = ""

    @property
    def mount(self) -> str:
        return self.openbao.mount

    @classmethod
    def from_store(cls, store) -> PKISettings:
        raw = dict(store.settings or {})
        if not raw.get("role"):
            raise Misconfigured(f"Store {store.name}: settings must name the PKI role (\"role\").")
        return cls(
            openbao=OpenBaoSettings.from_store(store, default_mount="pki"),
            role=str(raw["role"]),
            domain=str(raw.get("domain", "")).strip("."),
            key_mount=str(raw.get("key_mount", "")).strip("/"),
        )


def normalise_serial(text: str) -> str:
    return text.strip().lower().replace("-", ":")


def serial_named_by(store_path: str, identifier: str) -> str | None:
    """The certificate serial a credential's store path (its last part) or identifier names; None if neither."""
    tail = store_path.strip("/").rsplit("/", 1)[-1] if store_path else ""
    for candidate in (tail, identifier or ""):
        if candidate and _SERIAL.match(candidate.strip()):
            return normalise_serial(candidate)
    return None


def fingerprint_of(certificate: x509.Certificate) -> str:
    digest = certificate.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def common_name_of(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


class OpenBaoPKI(Connector):
    kind = "openbao_pki"
    revokes_at_issuer = True

    def __init__(self, settings: PKISettings):
        self.settings = settings
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self.settings.openbao.client()
        return self._client

    def serial_of(self, ref: CredentialRef) -> str:
        serial = serial_named_by(ref.store_path, ref.identifier)
        if serial is None:
            raise ReferenceBroken(f"{ref.name}: neither the store path nor the identifier names a certificate serial.")
        return serial

    def certificate(self, serial: str) -> tuple[x509.Certificate, dict]:
        with openbao_errors(f"Reading certificate {serial}"):
            response = self.client.read(f"{self.settings.mount}/cert/{serial}")
        if not response or not (response.get("data") or {}).get("certificate"):
            raise ReferenceBroken(f"{self.settings.mount}/cert/{serial} does not exist.")
        data = response["data"]
        return x509.load_pem_x509_certificate(data["certificate"].encode()), data

    def common_name(self, ref: CredentialRef) -> str:
        try:
            cert, _ = self.certificate(self.serial_of(ref))
            name = common_name_of(cert)
            if name:
                return name
        except ReferenceBroken:
            pass
        name = re.sub(r"[^a-z0-9.-]+", "-", ref.name.lower()).strip("-.")
        if self.settings.domain and "." not in name:
            name = f"{name}.{self.settings.domain}"
        return name

    def crl_contains(self, serial: str) -> bool:
        with openbao_errors("Reading the CRL"):
            pem = self.client.secrets.pki.read_crl(mount_point=self.settings.mount)
        crl = x509.load_pem_x509_crl(pem.encode() if isinstance(pem, str) else pem)
        return crl.get_revoked_certificate_by_serial_number(int(serial.replace(":", ""), 16)) is not None

    # Interface

    def observe(self, ref: CredentialRef) -> Observation:
        serial = self.serial_of(ref)
        cert, data = self.certificate(serial)
        revoked = bool(data.get("revocation_time"))
        return Observation(version=serial, created_at=cert.not_valid_before_utc, expires_at=cert.not_valid_after_utc,
                           state="revoked" if revoked else "active",
                           detail=f"{self.settings.mount}/cert/{serial} CN={common_name_of(cert)}"
                                  + (" (revoked)" if revoked else ""))

    @staticmethod
    def names_refused(ref: CredentialRef, names: list[str]) -> None:
        """PermissionRefused unless every name is one of the hosts the credential's system declares.

        ref.allowed_names None means the caller states no policy (a reference built by hand)."""
        if ref.allowed_names is None:
            return
        if not ref.allowed_names:
            raise PermissionRefused(f"{ref.name}: its system declares no host names, so Steward issues it no "
                                    "certificate; a security admin declares the system's hosts first.")
        outside = names_outside(names, ref.allowed_names)
        if outside:
            raise PermissionRefused(f"{ref.name}: {', '.join(outside)} is not among the hosts its system declares "
                                    f"({', '.join(ref.allowed_names)}); a certificate for another name takes a "
                                    "change of the system's hosts by a security admin.")

    def key_store(self) -> OpenBaoKV:
        """The KV v2 mount (settings.key_mount) where issued key bundles are written, on this connector's client."""
        kv = OpenBaoKV(replace(self.settings.openbao, mount=self.settings.key_mount))
        kv._client = self.client
        return kv

    def issue(self, ref: CredentialRef, *, common_name: str | None = None, ttl_hours: int | None = None,
              issued: Callable[[str], None] | None = None,
              store_bundle: Callable[[dict], tuple[str, ...]] | None = None) -> RotationResult:
        """A new certificate for one of the system's names; its lifetime is the rotation policy's unless
        ttl_hours is given. issued(serial) is told the serial as soon as OpenBao answers (before any
        read-back); store_bundle(bundle), when given, writes the key bundle instead of the plain write."""
        common_name = common_name or self.common_name(ref)
        self.names_refused(ref, [common_name])
        if not (ttl_hours or ref.max_age_days):
            raise Misconfigured(f"{ref.name}: no lifetime to issue a certificate with (no rotation policy).")
        days = ref.max_age_days
        hours = ttl_hours or days * 24
        with openbao_errors(f"Issuing a certificate for {common_name}"):
            response = self.client.secrets.pki.generate_certificate(
                name=self.settings.role, common_name=common_name, mount_point=self.settings.mount,
                extra_params={"ttl": f"{hours}h"},
            )
        data = response["data"]
        serial = normalise_serial(data["serial_number"])
        if issued is not None:
            issued(serial)
        private_key = data.get("private_key")
        proof = []
        if self.settings.key_mount:
            bundle = {"certificate": data["certificate"], "private_key": private_key,
                      "ca_chain": "\n".join(data.get("ca_chain") or []), "serial": serial}
            if store_bundle is not None:
                proof.extend(store_bundle(bundle))
            else:
                path = f"certificates/{ref.name}"
                version, _ = self.key_store().write_value(path, bundle, cas=None)
                proof.append(f"Key bundle stored at {self.settings.key_mount}/{path} version {version}.")
            del bundle
        del private_key, data["private_key"]
        cert, stored = self.certificate(serial)
        if stored.get("revocation_time") or common_name_of(cert) != common_name:
            raise VerificationFailed(f"Certificate {serial} read back does not match what was issued.")
        expires = cert.not_valid_after_utc
        proof.insert(0, f"OpenBao {self.settings.mount}/cert/{serial} issued for CN={common_name}, valid until "
                        f"{expires:%Y-%m-%d %H:%M} UTC"
                        + (f" ({days} days, from the rotation policy)" if not ttl_hours else "") + "; read back.")
        return RotationResult(
            version=serial, rotated_at=now(), proof=tuple(proof), expires_at=expires, identifier=serial,
            store_path=f"{self.settings.mount}/cert/{serial.replace(':', '-')}", fingerprint=fingerprint_of(cert),
        )

    def issued_by_ca(self, serial: str) -> str:
        """Proof that the certificate chains to this mount's CA: its signature verified with the CA's key."""
        cert, _ = self.certificate(serial)
        with openbao_errors("Reading the CA certificate"):
            pem = self.client.secrets.pki.read_ca_certificate(mount_point=self.settings.mount)
        ca = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as error:
            raise VerificationFailed(f"Certificate {serial} does not verify against the {self.settings.mount} CA: "
                                     f"{error}") from None
        return f"Certificate {serial} verifies against the {self.settings.mount} CA ({common_name_of(ca)})."

    # Provisioning: a first certificate for a new credential

    def provision(self, ref: CredentialRef, spec: ProvisionSpec) -> ProvisionResult:
        """A certificate for one of the system's declared names (refused before anything is created
        otherwise), its key bundle written to a free path of the key mount, then proof: read back, not
        revoked, and its signature verified against the mount's CA. Each step is recorded first."""
        common_name = self.common_name(ref)
        self.names_refused(ref, [common_name])
        # The key bundle's path must be free before anything is issued (refused, nothing created, otherwise).
        plan = self.key_store().store_plan(f"certificates/{ref.name}") if self.settings.key_mount else None
        created: list[str] = []

        def record(step: str) -> None:
            spec.record(step)
            created.append(step)

        def store_bundle(bundle: dict) -> tuple[str, ...]:
            version, proof = self.key_store().store_write(plan, bundle, key="serial", record=record)
            return (f"Key bundle stored at {self.settings.key_mount}/certificates/{ref.name} version {version}.",
                    *proof)

        record(f"pki-issue:{common_name}")
        result = self.issue(ref, common_name=common_name, issued=lambda serial: record(f"pki-cert:{serial}"),
                            store_bundle=store_bundle if plan is not None else None)
        proof = (*result.proof, self.issued_by_ca(result.identifier))
        return ProvisionResult(version=result.version, provisioned_at=result.rotated_at, proof=proof,
                               created=tuple(created), identifier=result.identifier, store_path=result.store_path,
                               expires_at=result.expires_at, fingerprint=result.fingerprint)

    def provision_undo(self, ref: CredentialRef, spec: ProvisionSpec, created) -> tuple[str, ...]:
        """Newest first: the key bundle, then the certificate (revoked, with CRL proof). An issue whose serial
        was never recorded (the worker died while OpenBao answered) cannot be found: that is an error."""
        steps = list(created)
        proof = []
        for step in undo_order(steps):
            kind, _, value = step.partition(":")
            if is_store_step(step):
                proof.append(self.key_store().store_undo(step))
            elif kind == "pki-cert":
                proof.extend(self.revoke_serial(value))
            elif kind == "pki-issue" and not any(s.startswith("pki-cert:") for s in steps):
                raise ConnectorError(f"A certificate for CN={value} may have been issued without its serial being "
                                     f"recorded; find it under {self.settings.mount}/certs and revoke it by hand.")
        return tuple(proof)

    def rotate(self, ref: CredentialRef) -> RotationResult:
        """Renewal: a new certificate with the same common name, before the current one expires. The one it
        replaces stays valid until the overlap ends (services.renewal revokes it then)."""
        return self.issue(ref)

    def revoke_serial_at(self, serial: str) -> tuple[dt.datetime, tuple[str, ...]]:
        """Revoke a certificate (again, harmlessly, if it already is) and prove it: the revocation time
        OpenBao reports and the serial in the CRL. Returns (revocation time, proof)."""
        self.certificate(serial)
        with openbao_errors(f"Revoking certificate {serial}"):
            self.client.secrets.pki.revoke_certificate(serial_number=serial, mount_point=self.settings.mount)
        _, data = self.certificate(serial)
        revoked_at = parse_time(data.get("revocation_time"))
        if revoked_at is None:
            raise VerificationFailed(f"Certificate {serial} shows no revocation time after revocation.")
        if not self.crl_contains(serial):
            raise VerificationFailed(f"Certificate {serial} is revoked but missing from the CRL.")
        return revoked_at, (f"OpenBao {self.settings.mount}/cert/{serial}: revoked at "
                            f"{revoked_at:%Y-%m-%d %H:%M:%S} UTC and listed in the CRL.",)

    def revoke_serial(self, serial: str) -> tuple[str, ...]:
        return self.revoke_serial_at(serial)[1]

    def revoke(self, ref: CredentialRef) -> ActionResult:
        return ActionResult("revoke", now(), self.revoke_serial(self.serial_of(ref)))

    def suspend(self, ref: CredentialRef) -> ActionResult:
        proof = self.revoke_serial(self.serial_of(ref))
        return ActionResult("suspend", now(), (*proof, "Certificates cannot be put on hold: revoked; reactivation "
                                                       "issues a new certificate."))

    def reactivate(self, ref: CredentialRef) -> ActionResult:
        result = self.issue(ref)
        return ActionResult("reactivate", now(), result.proof, rotation=result)

    def reactivate_rotated(self, ref: CredentialRef) -> ActionResult:
        """A suspended certificate was revoked: a new one (new key, new serial) is the only way back."""
        result = self.reactivate(ref)
        return replace(result, proof=(*result.proof, f"The certificate revoked by the suspension "
                                                     f"({ref.identifier or 'unknown serial'}) stays revoked."))

    def probe(self, ref: CredentialRef) -> ProbeResult:
        recorder = ProbeRecorder()
        mount, role = self.settings.mount, self.settings.role

        def token():
            with openbao_errors("Looking up the token"):
                self.client.auth.token.lookup_self()
            return "token valid"

        if not recorder.check("OpenBao reachable and token valid", token):
            return recorder.result()

        def caps():
            kv = OpenBaoKV(self.settings.openbao)
            kv._client = self.client
            needed = {f"{mount}/issue/{role}": "update", f"{mount}/revoke": "update", f"{mount}/roles/{role}": "read"}
            granted = kv.capabilities(list(needed))
            missing = [f"{p} ({c})" for p, c in needed.items() if "root" not in granted[p] and c not in granted[p]]
            if missing:
                raise PermissionRefused("missing capabilities: " + "; ".join(missing))
            return "may issue and revoke"

        def role_exists():
            with openbao_errors(f"Reading PKI role {role}"):
                response = self.client.read(f"{mount}/roles/{role}")
            if not response:
                raise ReferenceBroken(f"PKI role {mount}/roles/{role} does not exist.")
            return f"role {role} exists"

        def current():
            serial = self.serial_of(ref)
            cert, data = self.certificate(serial)
            if data.get("revocation_time"):
                raise ConnectorError(f"certificate {serial} is already revoked")
            return f"certificate {serial} valid until {cert.not_valid_after_utc:%Y-%m-%d}"

        recorder.check("OpenBao permissions", caps)
        recorder.check("PKI role", role_exists)
        recorder.check("Reference resolves", current)
        return recorder.result()
