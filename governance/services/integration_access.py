"""How an integration's request is authenticated and whom it acts for.

token_lookup() finds a usable token by its visible prefix and compares the SHA-256 of the whole
value in constant time; integration_acting_person() applies the on-behalf-of rule (the owner, or a
person who delegated to the integration themself: services.delegations). Used by
governance.api.authentication for every request that carries a bearer token, and again by the
approval services (integration_accountable_owner_id), which count a decision for the acting person
and for the integration's owner.
"""

from __future__ import annotations

import hmac

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from governance import roles
from governance.choices import PersonStatus
from governance.models import Credential, Person
from governance.models.integrations import Delegation, Integration, IntegrationStatus, IntegrationToken
from governance.services.integrations import LAST_USED_PRECISION, PREFIX_LENGTH, TOKEN_PREFIX, hash_token


def token_lookup(raw: str) -> IntegrationToken | None:
    """The usable token for a raw bearer value, or None. One query; constant-time hash comparison."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) < PREFIX_LENGTH + 10:
        return None
    token = (
        IntegrationToken.objects.select_related("integration__owner", "integration__team")
        .filter(prefix=raw[:PREFIX_LENGTH]).first()
    )
    if token is None or not hmac.compare_digest(token.token_hash, hash_token(raw)):
        return None
    now = timezone.now()
    if not token.is_usable_at(now) or token.integration.status != IntegrationStatus.ACTIVE:
        return None
    if token.integration.expires_at <= now:
        return None
    return token


def token_mark_used(token: IntegrationToken) -> None:
    """Record last use, at most every few minutes (telemetry, not a state change: not audited)."""
    now = timezone.now()
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_PRECISION:
        if IntegrationToken.objects.filter(stale, pk=token.pk).update(last_used_at=now):
            if token.integration.credential_id:
                Credential.objects.filter(pk=token.integration.credential_id).update(last_used_at=now)


ON_BEHALF_OF_RULE = (
    "An integration acts for its owner unless the request names another person in X-On-Behalf-Of. "
    "That person must be active and have delegated to this integration themself, in the portal (Delegations), "
    "with that delegation neither expired nor revoked. Team membership is not consent, and nobody (security "
    "admins included) delegates for someone else."
)


def _owner_if_active(integration: Integration) -> Person:
    person = integration.owner
    if not roles.is_signed_in(person) or person.is_departed:
        raise PermissionDenied(f"The owner of integration {integration} is not active: a security admin must "
                               "transfer it before it can act again.")
    return person


def integration_acting_person(*, integration: Integration, username: str | None) -> Person:
    """The person an integration acts for (see ON_BEHALF_OF_RULE); PermissionDenied otherwise."""
    if not username or username[:150] == integration.owner.username:
        return _owner_if_active(integration)
    now = timezone.now()
    consented = Delegation.objects.filter(integration=integration, person=OuterRef("pk"), revoked_at__isnull=True,
                                          expires_at__gt=now)
    person = (
        Person.objects.filter(username=username[:150], is_active=True, status=PersonStatus.ACTIVE)
        .filter(Exists(consented)).first()
    )
    if person is None:
        raise PermissionDenied(f"X-On-Behalf-Of: {username[:150]!r} is not an active person who has delegated to "
                               "this integration.")
    return person


def integration_accountable_owner_id(*, integration_id: int, person: Person) -> int:
    """The owner of the integration an action is made through, checked again in the service: it must act for
    person (its owner, or a delegation in force). Separation of duties counts the decision for both."""
    now = timezone.now()
    owner_id = Integration.objects.filter(pk=integration_id).values_list("owner_id", flat=True).first()
    if owner_id is None:
        raise PermissionDenied("No such integration: it acts for nobody.")
    if owner_id != person.pk and not Delegation.objects.filter(
            integration_id=integration_id, person=person, revoked_at__isnull=True, expires_at__gt=now).exists():
        raise PermissionDenied(f"This integration does not act for {person}: they have not delegated to it (or "
                               "their delegation ended).")
    return owner_id
