"""Writes about API integrations: registration, tokens (issue, rotate with overlap, revoke), disabling.

An integration is a non-human identity in Steward's own inventory. Each one has a mirror
Credential (kind access_token, system "Steward API", identifier = its current token prefix) kept
in step by these services, so the checks (owner active, rotated within policy, attested) see it.
Tokens are shown once and stored only as a SHA-256 hash with a visible prefix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import permissions
from governance.audit import Actor
from governance.choices import CredentialKind, CredentialStatus, Criticality, PrivilegeLevel
from governance.models import Credential, Person, SecretStore, System, Team
from governance.models.integrations import (
    IdempotencyRecord,
    Integration,
    IntegrationScope,
    IntegrationStatus,
    IntegrationToken,
)
from governance.secret_guard import reject_secret_values
from governance.services import delegations, people
from governance.services.common import ensure_can_change, ensure_security_admin, record, snapshot
from governance.services.states import StateChangeRefused, state_transition

TOKEN_PREFIX = "stw_"
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
STEWARD_API_SYSTEM = "Steward API"
INTEGRATION_FIELDS = ("name", "description", "owner", "team", "scopes", "expires_at", "status")
# Changing these widens or moves an integration's power. Whom it acts for is not among them: only the
# people themselves delegate to it (services.delegations).
ADMIN_ONLY_FIELDS = frozenset({"owner", "team", "scopes", "expires_at"})
LAST_USED_PRECISION = dt.timedelta(minutes=5)



def default_lifetime() -> dt.timedelta:
    return dt.timedelta(days=settings.STEWARD_INTEGRATION_DEFAULT_LIFETIME_DAYS)


def max_lifetime() -> dt.timedelta:
    return dt.timedelta(days=settings.STEWARD_INTEGRATION_MAX_LIFETIME_DAYS)


def default_overlap() -> dt.timedelta:
    return dt.timedelta(hours=settings.STEWARD_INTEGRATION_TOKEN_OVERLAP_HOURS)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    """(prefix, token): the prefix is visible and identifies the token; the rest is 256 random bits."""
    prefix = f"{TOKEN_PREFIX}{secrets.token_hex(4)}"
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    scopes = list(dict.fromkeys(scopes or ()))
    unknown = [s for s in scopes if s not in IntegrationScope.values]
    if not scopes:
        raise ValidationError({"scopes": "Give at least one scope: " + ", ".join(IntegrationScope.values) + "."})
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(map(str, unknown))}."})
    return sorted(scopes, key=IntegrationScope.values.index)


def _validate_expiry(expires_at: dt.datetime) -> None:
    now = timezone.now()
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if expires_at > now + max_lifetime():
        raise ValidationError({"expires_at": f"At most {max_lifetime().days} days from now."})


def _validate_owner(owner: Person | None) -> None:
    if owner is None:
        raise ValidationError({"owner": "An integration needs an accountable owner."})
    if owner.is_departed or not owner.is_active:
        raise ValidationError({"owner": f"{owner} is not an active person and cannot own anything."})


def _privilege(scopes: list[str]) -> str:
    if IntegrationScope.ADMIN in scopes:
        return PrivilegeLevel.ADMIN
    if set(scopes) - {IntegrationScope.READ}:  # filing, deciding, and the lifecycle operations
        return PrivilegeLevel.WRITE
    return PrivilegeLevel.READ


def steward_api_system(*, actor: Actor) -> System:
    """The system whose credentials are the integrations' tokens: owned by the security admins together.

    No person owns it (an integration's owner must not be able to edit the system that mirrors
    every integration); its backup team is the security admins' role group. Created on first use,
    and handed back to the security admins if an older version of Steward gave it to someone,
    each with an audit event. Security admins (or a system task) only.
    """
    ensure_security_admin(actor)
    with transaction.atomic():
        team = people.security_admins_team(actor=actor)
        system = System.objects.select_for_update().filter(name=STEWARD_API_SYSTEM).first()
        if system is None:
            try:
                with transaction.atomic():
                    system = System.objects.create(
                        name=STEWARD_API_SYSTEM, criticality=Criticality.HIGH, owner=None, team=team,
                        description="Steward's own REST API: the tokens of registered integrations are its "
                                    "credentials. Owned by the security admins.")
            except IntegrityError:  # a concurrent first use created it
                return System.objects.get(name=STEWARD_API_SYSTEM)
            permissions.grant_team(system, team)
            record(actor=actor, action="system.create", instance=system,
                   summary=f"Created {system} for the integrations' tokens, owned by the security admins",
                   before={}, after=snapshot(system, ("name", "criticality", "owner", "team")))
        elif system.owner_id is not None or system.team_id != team.pk:
            before, old_team = snapshot(system, ("owner", "team")), system.team
            system.owner, system.team = None, team
            system.save(update_fields=["owner", "team", "updated_at"])
            permissions.revoke_team(system, old_team)
            permissions.grant_team(system, team)
            record(actor=actor, action="system.transfer", instance=system,
                   summary=f"Ownership of {system} returned to the security admins", before=before,
                   after=snapshot(system, ("owner", "team")))
    return system


def _current_token(integration: Integration) -> IntegrationToken | None:
    now = timezone.now()
    return (
        integration.tokens.filter(revoked_at__isnull=True, overlap_until__isnull=True, expires_at__gt=now)
        .order_by("-created_at", "-id")
        .first()
    )


MIRROR_TRANSITIONS = {CredentialStatus.ACTIVE: "mirror_reissue", CredentialStatus.EXPIRED: "mirror_expire",
                      CredentialStatus.REVOKED: "mirror_revoke"}


def _sync_credential(*, actor: Actor, integration: Integration, store: SecretStore | None = None,
                     store_path: str = "") -> Credential:
    """Keep the mirror Credential in step with the integration, so the checks see it."""
    token = _current_token(integration)
    now = timezone.now()
    if integration.status == IntegrationStatus.DISABLED or token is None:
        status = CredentialStatus.REVOKED
    elif integration.expires_at <= now:
        status = CredentialStatus.EXPIRED
    else:
        status = CredentialStatus.ACTIVE
    values = {
        "name": f"Steward API token: {integration.name}",
        "kind": CredentialKind.ACCESS_TOKEN,
        "scopes": list(integration.scopes),
        "privilege_level": _privilege(integration.scopes),
        "expires_at": token.expires_at if token else integration.expires_at,
        "status": status,
        "owner": integration.owner,
        "team": integration.team,
    }
    if token is not None:
        values["identifier"] = token.prefix
        values["last_rotated_at"] = token.created_at
    fields = ("name", "identifier", "status", "expires_at", "last_rotated_at", "owner", "team", "scopes")
    credential = integration.credential
    if credential is None:
        credential = Credential(system=steward_api_system(actor=actor), issued_at=now,
                                notes=f"Mirror of integration {integration.name}: managed by Steward.",
                                store=store, store_path=store_path if store else "")
        for name, value in values.items():
            setattr(credential, name, value)
        credential.full_clean()
        credential.save()
        permissions.grant_team(credential, credential.team)
        record(actor=actor, action="credential.create", instance=credential,
               summary=f"Registered {credential} for integration {integration}", before={},
               after=snapshot(credential, fields))
        integration.credential = credential
        integration.save(update_fields=["credential", "updated_at"])
        return credential
    status = values.pop("status")
    if status != credential.status:
        try:
            state_transition(actor=actor, instance=credential, transition=MIRROR_TRANSITIONS[status],
                             action=f"credential.{MIRROR_TRANSITIONS[status]}",
                             summary=f"{credential} {status}, as integration {integration} is")
        except StateChangeRefused:  # suspended by a kill switch: it comes back only through reactivation
            pass
    before = snapshot(credential, fields)
    old_team = credential.team
    for name, value in values.items():
        setattr(credential, name, value)
    credential.save()
    if credential.team_id != (old_team.pk if old_team else None):
        permissions.revoke_team(credential, old_team)
        permissions.grant_team(credential, credential.team)
    after = snapshot(credential, fields)
    if before != after:
        record(actor=actor, action="credential.update", instance=credential,
               summary=f"Updated {credential} from integration {integration}", before=before, after=after)
    return credential


def _issue_token(*, actor: Actor, integration: Integration, expires_at: dt.datetime) -> tuple[IntegrationToken, str]:
    prefix, raw = _new_token()
    token = IntegrationToken.objects.create(
        integration=integration, prefix=prefix, token_hash=hash_token(raw),
        expires_at=min(expires_at, integration.expires_at),
        created_by=actor.person,
    )
    return token, raw


def integration_create(
    *, actor: Actor, name: str, owner: Person, scopes: Iterable[str], team: Team | None = None,
    expires_at: dt.datetime | None = None, description: str = "",
    store: SecretStore | None = None, store_path: str = "",
) -> tuple[Integration, str]:
    """Register an integration and issue its first token. Returns the token: shown once, never stored."""
    ensure_security_admin(actor)
    scopes = validate_scopes(scopes)
    _validate_owner(owner)
    expires_at = expires_at or timezone.now() + default_lifetime()
    _validate_expiry(expires_at)
    reject_secret_values({"name": name, "description": description, "store_path": store_path})
    if store is not None and not store_path.strip():
        raise ValidationError({"store_path": "Say where in the store the client keeps its token."})
    if team is None:
        team = Team.objects.filter(group__user=owner).order_by("name").first()
    with transaction.atomic():
        integration = Integration(name=name, description=description, owner=owner, team=team, scopes=scopes,
                                  expires_at=expires_at,
                                  created_by=actor.person)
        integration.full_clean(exclude=["credential"])
        integration.save()
        token, raw = _issue_token(actor=actor, integration=integration, expires_at=expires_at)
        record(actor=actor, action="integration.create", instance=integration,
               summary=f"Registered integration {integration} (token {token.prefix})", before={},
               after={**snapshot(integration, INTEGRATION_FIELDS), "token_prefix": token.prefix})
        _sync_credential(actor=actor, integration=integration, store=store, store_path=store_path)
    return integration, raw


def integration_update(*, actor: Actor, integration: Integration, data: Mapping[str, Any]) -> Integration:
    """Change the description (owner, team, security admins). Owner, team, scopes and expiry widen or
    move its power: security admins only. A new owner ends the delegations given to it (consent was
    given to the integration its previous owner ran)."""
    unknown = sorted(set(data) - {"description", *ADMIN_ONLY_FIELDS})
    if unknown:
        raise ValidationError({name: "Unknown or read-only field." for name in unknown})
    if ADMIN_ONLY_FIELDS & set(data):
        ensure_security_admin(actor)
    data = dict(data)
    if "scopes" in data:
        data["scopes"] = validate_scopes(data["scopes"])
    if "owner" in data:
        _validate_owner(data["owner"])
    if "expires_at" in data:
        _validate_expiry(data["expires_at"])
    reject_secret_values(data, ["description"])
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        ensure_can_change(actor, integration)
        if integration.status != IntegrationStatus.ACTIVE:
            raise ValidationError({"status": "This integration is disabled."})
        before = snapshot(integration, INTEGRATION_FIELDS)
        for name, value in data.items():
            setattr(integration, name, value)
        integration.full_clean(exclude=["credential"])
        integration.save()
        if integration.owner_id != before["owner"]:
            delegations.delegations_end_for_new_owner(actor=actor, integration=integration,
                                                      previous_owner_id=before["owner"])
        if "expires_at" in data:
            integration.tokens.filter(revoked_at__isnull=True, expires_at__gt=integration.expires_at).update(
                expires_at=integration.expires_at)
        after = snapshot(integration, INTEGRATION_FIELDS)
        if before != after:
            record(actor=actor, action="integration.update", instance=integration,
                   summary=f"Updated integration {integration}", before=before, after=after)
        _sync_credential(actor=actor, integration=integration)
    return integration


def integration_token_rotate(
    *, actor: Actor, integration: Integration, overlap: dt.timedelta | None = None
) -> tuple[IntegrationToken, str]:
    """Issue a new token. The old one keeps working for the overlap window, then the sweep revokes it."""
    overlap = default_overlap() if overlap is None else overlap
    if overlap < dt.timedelta(0) or overlap > dt.timedelta(days=7):
        raise ValidationError({"overlap_hours": "The overlap is between 0 and 168 hours."})
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        ensure_can_change(actor, integration)
        now = timezone.now()
        if integration.status != IntegrationStatus.ACTIVE:
            raise ValidationError({"status": "This integration is disabled."})
        if integration.expires_at <= now:
            raise ValidationError({"expires_at": "This integration has expired: a security admin must extend it."})
        old = list(integration.tokens.filter(revoked_at__isnull=True, overlap_until__isnull=True, expires_at__gt=now))
        for token in old:
            if overlap:
                token.overlap_until = min(now + overlap, token.expires_at)
                token.save(update_fields=["overlap_until"])
            else:
                token.revoked_at = now
                token.save(update_fields=["revoked_at"])
        token, raw = _issue_token(actor=actor, integration=integration, expires_at=integration.expires_at)
        record(actor=actor, action="integration.token_rotate", instance=integration,
               summary=f"Rotated the token of {integration}: new {token.prefix}; "
                       + (f"old {', '.join(t.prefix for t in old)} accepted until "
                          f"{(now + overlap):%Y-%m-%d %H:%M} UTC" if old and overlap else "no overlap"),
               before={"tokens": [t.prefix for t in old]}, after={"token_prefix": token.prefix,
                                                                   "overlap_seconds": int(overlap.total_seconds())})
        _sync_credential(actor=actor, integration=integration)
    return token, raw


def integration_token_revoke(*, actor: Actor, token: IntegrationToken) -> IntegrationToken:
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=token.integration_id)
        ensure_can_change(actor, integration)
        token = IntegrationToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            raise ValidationError({"revoked_at": "This token is already revoked."})
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(actor=actor, action="integration.token_revoke", instance=integration,
               summary=f"Revoked token {token.prefix} of {integration}", before={"token": token.prefix},
               after={"revoked_at": token.revoked_at})
        _sync_credential(actor=actor, integration=integration)
    return token


def integration_disable(*, actor: Actor, integration: Integration, reason: str) -> Integration:
    """Stop an integration: every token is revoked at once and its credential marked revoked."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the integration is disabled."})
    reject_secret_values({"reason": reason})
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        ensure_can_change(actor, integration)
        if integration.status == IntegrationStatus.DISABLED:
            raise ValidationError({"status": "This integration is already disabled."})
        now = timezone.now()
        before = snapshot(integration, ("status", "disabled_at"))
        integration.status, integration.disabled_at = IntegrationStatus.DISABLED, now
        integration.save(update_fields=["status", "disabled_at", "updated_at"])
        revoked = integration.tokens.filter(revoked_at__isnull=True).update(revoked_at=now)
        record(actor=actor, action="integration.disable", instance=integration,
               summary=f"Disabled integration {integration} ({revoked} token(s) revoked): {reason}",
               before=before, after=snapshot(integration, ("status", "disabled_at")))
        _sync_credential(actor=actor, integration=integration)
    return integration


def integration_tokens_sweep(*, now: dt.datetime | None = None) -> int:
    """Revoke tokens whose rotation overlap has ended (compare-and-set: a rerun changes nothing twice)."""
    now = now or timezone.now()
    actor = Actor.system(task_id="integrations-sweep")
    done = 0
    due = IntegrationToken.objects.filter(revoked_at__isnull=True, overlap_until__lte=now).values_list(
        "pk", "integration_id", "prefix")[:500]
    for pk, integration_id, prefix in list(due):
        with transaction.atomic():
            if not IntegrationToken.objects.filter(pk=pk, revoked_at__isnull=True).update(revoked_at=now):
                continue
            integration = Integration.objects.get(pk=integration_id)
            record(actor=actor, action="integration.token_revoke", instance=integration,
                   summary=f"Revoked token {prefix} of {integration}: its rotation overlap ended",
                   before={"token": prefix}, after={"revoked_at": now})
            done += 1
    expired = Integration.objects.filter(status=IntegrationStatus.ACTIVE, expires_at__lte=now,
                                         credential__status=CredentialStatus.ACTIVE)
    for integration in expired[:500]:
        with transaction.atomic():
            _sync_credential(actor=actor, integration=integration)
    return done


def idempotency_ttl() -> dt.timedelta:
    return dt.timedelta(hours=settings.STEWARD_IDEMPOTENCY_TTL_HOURS)


def idempotency_lease() -> dt.timedelta:
    """How long a request holds its Idempotency-Key before a retry may run the work (never renewed)."""
    return dt.timedelta(seconds=settings.STEWARD_IDEMPOTENCY_LEASE_SECONDS)


def idempotency_records_sweep(*, now: dt.datetime | None = None) -> int:
    """Forget API idempotency records older than their time to live."""
    now = now or timezone.now()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - idempotency_ttl()).delete()
    return deleted
