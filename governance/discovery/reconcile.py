"""Reconciliation: each discovered item against the inventory, set-based, into matched / undeclared /
missing / hard-coded secret.

Match keys, per kind: KV paths by store + path (the store's address and mount, the credential's path in
any of its forms); certificates by serial; auth roles, token accessors, database roles, login roles and ACL
users by the credential's identifier (within the source's system when it has one); workflows by the link a
review made or by name; identities declared in code by identifier; hard-coded secrets by keyed fingerprint
(a secret linked to a credential once is linked wherever else it is found). A declared credential the
source should see and did not becomes a *missing* item linked to it. A link made by a review is kept.

Everything is read in a few queries (chunks of 5,000 keys), compared in memory and written back in bulk,
only where something changed: 100k items against a 1M inventory reconcile in seconds, not per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Q
from fast_update.fast import fast_update

from governance.audit import Actor, PendingEvent, audit_append_many
from governance.choices import CredentialKind, CredentialStatus, SecretStoreKind
from governance.models import Credential, Workflow
from governance.models.discovery import (
    DiscoveredItem,
    DiscoveredKind,
    DiscoverySource,
    DiscoverySourceKind,
    Reconciliation,
    ReviewState,
)

CHUNK = 5000
LIVE = (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED, CredentialStatus.REQUESTED)
BY_IDENTIFIER = (DiscoveredKind.AUTH_ROLE, DiscoveredKind.TOKEN, DiscoveredKind.DATABASE_ROLE,
                 DiscoveredKind.LOGIN_ROLE, DiscoveredKind.ACL_USER, DiscoveredKind.SERVICE_ACCOUNT,
                 DiscoveredKind.IAC_IDENTITY)
ACCOUNT_KINDS = (CredentialKind.SERVICE_ACCOUNT, CredentialKind.PASSWORD)


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def normal_serial(value: str) -> str:
    return value.strip().lower().replace(":", "-")


def kv_key(store_path: str, mount: str) -> str:
    """A credential's KV reference as discovery names it: '<mount>/<path>' (from any of the accepted forms)."""
    path = store_path.strip().strip("/")
    mount = (mount or "secret").strip("/")
    if path.startswith(f"{mount}/data/"):
        path = path[len(mount) + 6:]
    elif path.startswith(f"{mount}/"):
        path = path[len(mount) + 1:]
    return f"{mount}/{path}"


def identity_keys(kind: str, natural_key: str, facts: dict) -> list[str]:
    """The identifiers a declared credential could carry for this item."""
    if kind == DiscoveredKind.TOKEN:
        return [str(facts.get("accessor", "")), str(facts.get("display_name", ""))]
    if kind == DiscoveredKind.DATABASE_ROLE:
        return [str(facts.get("role", "")), natural_key]
    if kind == DiscoveredKind.AUTH_ROLE:
        return [str(facts.get("role", "")), natural_key]
    if kind in (DiscoveredKind.SERVICE_ACCOUNT, DiscoveredKind.IAC_IDENTITY):
        return [str(facts.get("identity", "")), natural_key]
    return [natural_key]


def _address(value: str) -> str:
    return value.strip().rstrip("/").lower()


def _covered_credentials(source: DiscoverySource) -> Q | None:
    """The declared credentials this source should see (for 'missing'); None: it covers none."""
    if source.kind == DiscoverySourceKind.OPENBAO:
        address = _address((source.settings or {}).get("address") or (source.store.address if source.store_id else ""))
        condition = Q(store__kind__in=(SecretStoreKind.OPENBAO_KV, SecretStoreKind.OPENBAO_PKI))
        by_store = Q(store_id=source.store_id) if source.store_id else Q(pk__in=[])
        return condition & (by_store | Q(store__address__iexact=address) | Q(store__address__iexact=address + "/"))
    if source.kind in (DiscoverySourceKind.POSTGRES, DiscoverySourceKind.REDIS) and source.system_id:
        return Q(system_id=source.system_id, kind__in=ACCOUNT_KINDS)
    return None


def reconcile_source(*, actor: Actor, source: DiscoverySource, now: dt.datetime) -> dict:
    """Bring every item of the source to its reconciliation state and link; returns counts by state."""
    rows = list(DiscoveredItem.objects.filter(source=source).values_list(
        "pk", "kind", "natural_key", "name", "facts", "present", "reconciliation", "linked_credential_id",
        "linked_workflow_id", "review", "fingerprint", "dismissed_until").iterator(chunk_size=CHUNK))
    desired: dict[int, tuple[str, int | None, int | None]] = {}
    covered = _covered_credentials(source)

    # Declared credentials the source should see: by KV key, by serial, by identifier.
    kv_by_key: dict[str, int] = {}
    serial_by_key: dict[str, int] = {}
    if covered is not None and source.kind == DiscoverySourceKind.OPENBAO:
        declared = Credential.objects.filter(covered, status__in=LIVE).values_list(
            "pk", "store_path", "identifier", "store__kind", "store__settings")
        for pk, path, identifier, store_kind, settings in declared.iterator(chunk_size=CHUNK):
            mount = str((settings or {}).get("mount") or ("pki" if store_kind == SecretStoreKind.OPENBAO_PKI
                                                          else "secret"))
            if store_kind == SecretStoreKind.OPENBAO_PKI:
                serial_by_key[f"{mount}:{normal_serial(identifier)}"] = pk
            else:
                kv_by_key[kv_key(path, mount)] = pk

    identifiers: set[str] = set()
    workflow_names: set[str] = set()
    for _pk, kind, key, name, facts, *_rest in rows:
        if kind in BY_IDENTIFIER:
            identifiers.update(k for k in identity_keys(kind, key, facts or {}) if k)
        elif kind == DiscoveredKind.WORKFLOW:
            workflow_names.add(name)
    by_identifier: dict[str, int] = {}
    scope = Q(system_id=source.system_id) if source.system_id else Q()
    for chunk in _chunks(sorted(identifiers)):
        for pk, identifier in Credential.objects.filter(scope, identifier__in=chunk, status__in=LIVE).values_list(
                "pk", "identifier"):
            by_identifier.setdefault(identifier, pk)
    workflows: dict[str, int] = {}
    for chunk in _chunks(sorted(workflow_names)):
        workflows.update(Workflow.objects.filter(name__in=chunk).values_list("name", "pk"))
    linked_secrets = _linked_secrets(rows)

    seen_kv, seen_serials, seen_ids = set(), set(), set()
    for pk, kind, key, name, facts, present, _state, cred_id, wf_id, review, fingerprint, _until in rows:
        facts = facts or {}
        if kind == DiscoveredKind.HARD_CODED_SECRET:
            desired[pk] = (Reconciliation.HARD_CODED_SECRET, cred_id or linked_secrets.get(fingerprint), wf_id)
            continue
        if not present:
            continue  # absent now: a missing item is decided below, a vanished one keeps what it was
        reviewed = review in (ReviewState.LINKED, ReviewState.ADOPTED)
        if kind == DiscoveredKind.WORKFLOW:
            match = wf_id if reviewed and wf_id else workflows.get(name)
            desired[pk] = (Reconciliation.MATCHED if match else Reconciliation.UNDECLARED, cred_id, match)
            continue
        if kind == DiscoveredKind.KV_SECRET:
            match = kv_by_key.get(key)
            seen_kv.add(key)
        elif kind == DiscoveredKind.CERTIFICATE:
            match = serial_by_key.get(f"{facts.get('mount', 'pki')}:{normal_serial(str(facts.get('serial', '')))}")
            seen_serials.add(f"{facts.get('mount', 'pki')}:{normal_serial(str(facts.get('serial', '')))}")
        else:
            match = next((by_identifier[k] for k in identity_keys(kind, key, facts) if k in by_identifier), None)
            seen_ids.update(k for k in identity_keys(kind, key, facts) if k)
        if reviewed and cred_id:
            match = cred_id
        desired[pk] = (Reconciliation.MATCHED if match else Reconciliation.UNDECLARED, match, wf_id)

    # Missing: covered credentials nobody saw. Their items carry the key the source would have used.
    missing_wanted: dict[tuple[str, str], int] = {}
    if covered is not None:
        if source.kind == DiscoverySourceKind.OPENBAO:
            missing_wanted.update({(DiscoveredKind.KV_SECRET, k): pk for k, pk in kv_by_key.items()
                                   if k not in seen_kv})
            missing_wanted.update({(DiscoveredKind.CERTIFICATE, k): pk for k, pk in serial_by_key.items()
                                   if k not in seen_serials})
        else:
            kind = DiscoveredKind.LOGIN_ROLE if source.kind == DiscoverySourceKind.POSTGRES else DiscoveredKind.ACL_USER
            for pk, identifier in Credential.objects.filter(covered, status__in=LIVE).values_list("pk", "identifier"):
                if identifier not in seen_ids:
                    missing_wanted[(kind, identifier)] = pk
    by_key = {(kind, key): (pk, present, state) for pk, kind, key, _n, _f, present, state, *_r in rows}
    new_missing = []
    for (kind, key), cred_pk in missing_wanted.items():
        row = by_key.get((kind, key))
        if row is None:
            new_missing.append(DiscoveredItem(
                source=source, kind=kind, natural_key=key, name=f"{key} (declared, not found)"[:300], present=False,
                first_seen_at=now, last_seen_at=now, reconciliation=Reconciliation.MISSING,
                linked_credential_id=cred_pk, facts={"expected": key}, owner_id=source.system.owner_id
                if source.system_id else None, team_id=source.system.team_id if source.system_id else None))
        elif not row[1]:
            desired[row[0]] = (Reconciliation.MISSING, cred_pk, None)
    DiscoveredItem.objects.bulk_create(new_missing, batch_size=1000)
    # Missing items whose credential is no longer expected here (revoked, moved): nothing is missing any more.
    stale = [pk for pk, kind, key, _n, _f, present, state, *_r in rows
             if state == Reconciliation.MISSING and not present and (kind, key) not in missing_wanted]
    for chunk in _chunks(stale):
        DiscoveredItem.objects.filter(pk__in=chunk, present=False, reconciliation=Reconciliation.MISSING).delete()

    current = {pk: (state, cred_id, wf_id) for pk, _k, _key, _n, _f, _p, state, cred_id, wf_id, *_r in rows}
    updates = [DiscoveredItem(pk=pk, reconciliation=want[0], linked_credential_id=want[1], linked_workflow_id=want[2])
               for pk, want in desired.items() if current.get(pk) != want]
    if updates:
        fast_update(DiscoveredItem.objects.all(), updates, ["reconciliation", "linked_credential", "linked_workflow"],
                    batch_size=1000)
    expired = _expire_dismissals(actor=actor, rows=rows, now=now)
    counts: dict[str, int] = {state: 0 for state in Reconciliation.values}
    stale_set = set(stale)
    for pk, (state, *_rest) in current.items():
        if pk in stale_set:
            continue
        counts[desired.get(pk, (state,))[0]] += 1
    counts[Reconciliation.MISSING] += len(new_missing)
    return {f"reconciled_{state}": n for state, n in counts.items()} | {"reconciled_changes": len(updates),
                                                                          "dismissals_expired": expired}


def _linked_secrets(rows) -> dict[str, int]:
    """Fingerprint -> credential of the secrets linked anywhere (portable form of the DISTINCT ON query)."""
    fingerprints = {r[10] for r in rows if r[1] == DiscoveredKind.HARD_CODED_SECRET and r[10]}
    linked: dict[str, int] = {}
    for chunk in _chunks(sorted(fingerprints)):
        for fingerprint, cred in DiscoveredItem.objects.filter(
                fingerprint__in=chunk, linked_credential__isnull=False).order_by("pk").values_list(
                "fingerprint", "linked_credential_id"):
            linked.setdefault(fingerprint, cred)
    return linked


def _expire_dismissals(*, actor: Actor, rows, now: dt.datetime) -> int:
    expired = [(pk, name) for pk, _k, _key, name, _f, _p, _s, _c, _w, review, _fp, until in rows
               if review == ReviewState.DISMISSED and until is not None and until <= now]
    if not expired:
        return 0
    DiscoveredItem.objects.filter(pk__in=[pk for pk, _ in expired], review=ReviewState.DISMISSED).update(
        review=ReviewState.PENDING, dismissed_until=None, dismissed_digest="")
    audit_append_many(actor=actor, events=[
        PendingEvent(action="discovery.item_dismissal_expired", object_type="governance.discovereditem", object_id=pk,
                     object_repr=name[:300], summary=f"The dismissal of {name[:200]} expired: back in review",
                     changes={"review": {"before": ReviewState.DISMISSED, "after": ReviewState.PENDING}})
        for pk, name in expired])
    return len(expired)
