"""How an integration's request is authenticated and whom it acts for.

token_lookup() finds a usable token by its visible prefix and compares the SHA-256 of the whole
value in constant time; integration_acting_person() applies the on-behalf-of rule. Used by
governance.api.authentication for every request that carries a bearer token.
"""

from __future__ import annotations

import hmac

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils import timezone

from governance import roles
from governance.choices import PersonStatus
from governance.models import Credential, Person
from governance.models.integrations import Integration, IntegrationStatus, IntegrationToken
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
    "That person must be active and either the integration's owner, a member of the integration's team, "
    "or explicitly allowed on the integration by a security admin."
)


def integration_acting_person(*, integration: Integration, username: str | None) -> Person:
    """The person an integration acts for (see ON_BEHALF_OF_RULE); PermissionDenied otherwise."""
    if not username:
        person = integration.owner
        if not roles.is_signed_in(person) or person.is_departed:
            raise PermissionDenied(f"The owner of integration {integration} is not active: a security admin must "
                                   "transfer it before it can act again.")
        return person
    eligible = Q(pk=integration.owner_id) | Q(integrations_acting_for=integration)
    if integration.team_id:
        eligible |= Q(groups__team=integration.team_id)
    person = (
        Person.objects.filter(username=username[:150], is_active=True, status=PersonStatus.ACTIVE).filter(eligible)
        .distinct().first()
    )
    if person is None:
        raise PermissionDenied(f"X-On-Behalf-Of: {username[:150]!r} is not an active person this integration "
                               "may act for.")
    return person
