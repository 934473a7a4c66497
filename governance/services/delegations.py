"""A person's consent that an integration may act for them: granted and revoked by that person only.

An integration acts for its owner, or, when a request names someone in X-On-Behalf-Of, for a person
who delegated to it here (services.integration_access reads the delegations in force). Consent
cannot be inferred: team membership, the integration's team or a security admin's choice never
make one, and nobody (security admins included) delegates for someone else. A delegation always
ends: at most DELEGATION_MAX_DAYS ahead, earlier if its person revokes it. Every change is audited.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor
from governance.models import Person
from governance.models.integrations import Delegation, Integration, IntegrationStatus
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_may_write, record

DELEGATION_MAX_DAYS = 90
DEFAULT_DELEGATION_DAYS = 30


def _delegating_person(actor: Actor, person: Person) -> Person:
    """The person themself, signed in to the portal: not a task, not an integration, not an admin for them."""
    ensure_may_write(actor)
    if actor.kind != "person":
        raise PermissionDenied("Only a person, signed in themself, delegates to an integration or revokes it.")
    if actor.user.pk != person.pk:
        raise PermissionDenied("A delegation is the person's own consent: nobody, security admins included, "
                               "delegates or revokes for someone else.")
    return actor.user


def _audit(*, actor: Actor, delegation: Delegation, action: str, summary: str, before: dict | None,
           after: dict) -> None:
    """The event is about the delegation row; a new one also names its person and integration."""
    who = {"integration": delegation.integration_id, "person": delegation.person_id}
    record(actor=actor, action=action, instance=delegation, summary=summary,
           before={} if before is None else before, after={**who, **after} if before is None else after)


def delegation_grant(*, actor: Actor, person: Person, integration: Integration, expires_at: dt.datetime,
                     reason: str) -> Delegation:
    """person lets integration act for them (X-On-Behalf-Of) until expires_at (at most 90 days ahead)."""
    person = _delegating_person(actor, person)
    reason = (reason or "").strip()
    errors = {}
    now = timezone.now()
    if not reason:
        errors["reason"] = "Say why this integration may act for you."
    if expires_at is None or expires_at <= now:
        errors["expires_at"] = "The delegation must end in the future."
    elif expires_at > now + dt.timedelta(days=DELEGATION_MAX_DAYS):
        errors["expires_at"] = f"A delegation lasts at most {DELEGATION_MAX_DAYS} days: delegate again later."
    if errors:
        raise ValidationError(errors)
    reject_secret_values({"reason": reason})
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        if integration.status != IntegrationStatus.ACTIVE or integration.expires_at <= now:
            raise ValidationError({"integration": f"{integration} is disabled or expired: it acts for nobody."})
        if integration.owner_id == person.pk:
            raise ValidationError({"integration": f"You own {integration}: it already acts for you."})
        open_one = Delegation.objects.select_for_update().filter(person=person, integration=integration,
                                                                 revoked_at__isnull=True).first()
        if open_one is not None and open_one.in_force_at(now):
            raise ValidationError({"integration": (
                f"You already delegated to {integration} until {open_one.expires_at:%Y-%m-%d %H:%M} UTC: "
                "revoke that delegation first to change it.")})
        if open_one is not None:  # expired: close it at its expiry, so that one stays open at most
            open_one.revoked_at = open_one.expires_at
            open_one.save(update_fields=["revoked_at"])
            _audit(actor=actor, delegation=open_one, action="delegation.close",
                   summary=f"Closed the expired delegation of {person} to {integration}",
                   before={"revoked_at": None}, after={"revoked_at": open_one.revoked_at})
        delegation = Delegation.objects.create(person=person, integration=integration, reason=reason,
                                               created_at=now, expires_at=expires_at)
        _audit(actor=actor, delegation=delegation, action="delegation.grant",
               summary=f"{person} delegated to integration {integration} until {expires_at:%Y-%m-%d %H:%M} UTC: "
                       f"{reason}",
               before=None, after={"expires_at": expires_at, "reason": reason})
    return delegation


def delegation_revoke(*, actor: Actor, delegation: Delegation) -> Delegation:
    """Its person ends a delegation at once: the integration no longer acts for them."""
    _delegating_person(actor, delegation.person)
    with transaction.atomic():
        delegation = Delegation.objects.select_for_update().select_related("integration").get(pk=delegation.pk)
        now = timezone.now()
        if not delegation.in_force_at(now):
            raise ValidationError({"delegation": "This delegation has already ended."})
        delegation.revoked_at = now
        delegation.save(update_fields=["revoked_at"])
        _audit(actor=actor, delegation=delegation, action="delegation.revoke",
               summary=f"{delegation.person} revoked their delegation to integration {delegation.integration}",
               before={"revoked_at": None}, after={"revoked_at": now})
    return delegation


def delegations_end_for_new_owner(*, actor: Actor, integration: Integration, previous_owner_id: int | None) -> int:
    """An integration that changes hands acts for nobody but its new owner until people delegate again.

    Called inside integration_update's transaction: consent was given to the integration its previous
    owner ran. Ending consent narrows power, so it is not "revoking for someone else".
    """
    now = timezone.now()
    ended = 0
    for delegation in Delegation.objects.select_for_update().filter(integration=integration,
                                                                    revoked_at__isnull=True):
        delegation.revoked_at = max(min(now, delegation.expires_at), delegation.created_at)
        delegation.save(update_fields=["revoked_at"])
        _audit(actor=actor, delegation=delegation, action="delegation.revoke",
               summary=f"Ended the delegation of {delegation.person} to {integration}: the integration has a new "
                       f"owner (was person #{previous_owner_id})",
               before={"revoked_at": None}, after={"revoked_at": delegation.revoked_at})
        ended += 1
    return ended
