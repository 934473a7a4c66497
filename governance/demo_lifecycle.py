"""Demo secrets in a local OpenBao dev server, so a demo user can rotate a credential and see its new version.

`make run` starts `bao server -dev` (in memory: its secrets vanish when it stops), so this runs
after it answers, every time: for each live demo credential in the OpenBao KV store it writes a
random value where the credential points (when nothing is there), and for each unexpired demo
certificate it issues a certificate from a dev CA and points the credential at it (through the
inventory services, audited as the system task "seed_demo_lifecycle"). Then it reconciles them.

When OpenBao does not answer (or its token variable is not set) it says so and changes nothing:
the credentials stay as they are, and reconciliation will report them as broken, which is true.
"""

from __future__ import annotations

import datetime as dt
import os

import requests
from django.db import transaction

from governance.audit import Actor
from governance.choices import CredentialKind, CredentialStatus, SecretStoreKind
from governance.connectors import registry
from governance.connectors.base import ConnectorError, CredentialRef, ReferenceBroken, new_secret_value
from governance.models import Credential, SecretStore
from governance.services.inventory import secret_store_update
from governance.services.lifecycle import credential_record_change, credentials_reconcile

TASK_ID = "seed_demo_lifecycle"
KV_STORE, PKI_STORE = "openbao-prod", "openbao-pki"


def openbao_answers(address: str) -> bool:
    try:
        response = requests.get(f"{address.rstrip('/')}/v1/sys/health", timeout=2)
    except requests.RequestException:
        return False
    return response.status_code in (200, 429, 472, 473)


def _live(store: SecretStore):
    return Credential.objects.filter(store=store, status__in=(CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED)) \
        .select_related("store", "system").order_by("pk")


def _seed_kv(store: SecretStore, actor: Actor) -> int:
    kv = registry.kv_connector(store)
    written = 0
    for credential in _live(store):
        path = kv.path_of(credential.store_path)
        try:
            kv.read_current(path)
            version = kv.current_version(path)
        except ReferenceBroken:
            data = {"value": new_secret_value()}
            if credential.kind in (CredentialKind.PASSWORD, CredentialKind.SERVICE_ACCOUNT):
                data = {"username": credential.identifier, "password": new_secret_value()}
            version, _ = kv.write_value(path, data, cas=0)
            written += 1
        if credential.store_version != str(version):
            with transaction.atomic():
                credential_record_change(actor=actor, credential=credential, values={"store_version": str(version)},
                                         action="credential.seed",
                                         summary=f"{credential}: demo secret at version {version}")
    return written


def _ensure_pki(store: SecretStore) -> None:
    pki = registry.pki_connector(store)
    client, mount, role = pki.client, pki.settings.mount, pki.settings.role
    if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": "87600h"})
    if not (client.list(f"{mount}/issuers") or {}).get("data", {}).get("keys"):
        client.secrets.pki.generate_root(type="internal", common_name="Steward demo CA", mount_point=mount,
                                         extra_params={"ttl": "87600h"})
    client.secrets.pki.create_or_update_role(role, mount_point=mount, extra_params={
        "allow_any_name": True, "max_ttl": "87600h", "key_type": "ec", "key_bits": 256})


def _seed_pki(store: SecretStore, actor: Actor, now: dt.datetime) -> int:
    _ensure_pki(store)
    pki = registry.pki_connector(store)
    issued = 0
    for credential in _live(store).filter(kind=CredentialKind.CERTIFICATE, expires_at__gt=now + dt.timedelta(hours=1)):
        try:
            pki.observe(CredentialRef.from_credential(credential))
            continue
        except ReferenceBroken:
            pass
        hours_left = max(1, round((credential.expires_at - now).total_seconds() / 3600))
        result = pki.issue(CredentialRef.from_credential(credential), ttl_hours=hours_left)
        with transaction.atomic():
            credential_record_change(actor=actor, credential=credential, action="credential.seed",
                                     summary=f"{credential}: demo certificate issued by OpenBao PKI", values={
                "identifier": result.identifier, "store_path": result.store_path, "store_version": result.version,
                "fingerprint": result.fingerprint, "expires_at": result.expires_at, "issued_at": result.rotated_at})
        issued += 1
    return issued


def seed_demo_lifecycle(*, now: dt.datetime) -> dict:
    """Write the demo secrets and certificates into OpenBao when it answers; say why not otherwise."""
    kv_store = SecretStore.objects.filter(name=KV_STORE, kind=SecretStoreKind.OPENBAO_KV).first()
    pki_store = SecretStore.objects.filter(name=PKI_STORE, kind=SecretStoreKind.OPENBAO_PKI).first()
    if kv_store is None:
        return {"skipped": True, "reason": f"No OpenBao KV store named {KV_STORE}: seed the demo estate first."}
    if not openbao_answers(kv_store.address):
        return {"skipped": True, "reason": f"OpenBao does not answer at {kv_store.address}: demo secrets not "
                                           "written; reconciliation will report the demo credentials as broken."}
    if not os.environ.get(kv_store.credential_env_var):
        return {"skipped": True, "reason": f"OpenBao answers, but {kv_store.credential_env_var} (its token) is not "
                                           "set in this process: demo secrets not written."}
    actor = Actor.system(task_id=TASK_ID, label=TASK_ID)
    registry.clear_cache()
    try:
        written = _seed_kv(kv_store, actor)
        issued = _seed_pki(pki_store, actor, now) if pki_store is not None else 0
    except ConnectorError as error:
        return {"skipped": True, "reason": f"OpenBao refused the demo secrets: {error.reason}"}
    stores = [store for store in (kv_store, pki_store) if store is not None]
    ids = list(Credential.objects.filter(store__in=stores).values_list("pk", flat=True))
    observed = credentials_reconcile(credential_ids=ids, now=now)
    return {"skipped": False, "secrets_written": written, "certificates_issued": issued, "observed": observed,
            "address": kv_store.address}


def demo_openbao_stores_point_at(*, address: str) -> int:
    """Point the demo's OpenBao stores at the dev server `make run` started (or at nothing: address "").

    The demo estate is seeded with a placeholder address; `make run` starts its own OpenBao on a free
    port each time, so the stores are pointed at it before anything rotates. Without one (no `bao`
    binary, or STEWARD_DEMO_OPENBAO=0) they point nowhere, and a rotation fails saying the store has no
    address, instead of writing into whatever OpenBao another program runs on 127.0.0.1:8200.
    Audited as the system task; returns how many stores changed.
    """
    actor = Actor.system(task_id=TASK_ID, label=TASK_ID)
    changed = 0
    for store in SecretStore.objects.filter(name__in=(KV_STORE, PKI_STORE)).order_by("pk"):
        if store.address != address:
            secret_store_update(actor=actor, store=store, data={"address": address})
            changed += 1
    registry.clear_cache()
    return changed
