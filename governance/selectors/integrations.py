"""Reads of the integrations capability (and the API's directory reads): restricted and prefetched."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Prefetch
from django.utils import timezone

from governance.models import Person, Team
from governance.models.integrations import (
    Delegation,
    Integration,
    IntegrationStatus,
    IntegrationToken,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from governance.permissions import VIEW, restrict


def integration_list(*, user, action: str = VIEW):
    return (
        restrict(Integration.objects.all(), user, action)
        .select_related("owner", "team", "credential")
        .prefetch_related(Prefetch("tokens", queryset=IntegrationToken.objects.order_by("-pk")))
    )


def delegation_list(*, user):
    """The signed-in person's own delegations, newest first (security admins' too: their own only)."""
    return restrict(Delegation.objects.all(), user, VIEW).filter(person=user).select_related("integration__owner")


def delegations_in_force(*, integration):
    """Who has delegated to an integration now (shown to those who may see the integration)."""
    return (integration.delegations.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())
            .select_related("person").order_by("person__username"))


def delegable_integrations(*, person):
    """Active integrations a person may delegate to: any they do not own. Their names and owners are shown
    to every signed-in person for that (consent needs to know whom it is given to); the integration's
    detail (tokens, credential) stays restricted."""
    return (Integration.objects.filter(status=IntegrationStatus.ACTIVE, expires_at__gt=timezone.now())
            .exclude(owner=person).select_related("owner").order_by("name"))


def integration_token_list(*, user, action: str = VIEW):
    return restrict(IntegrationToken.objects.all(), user, action).select_related("integration")


def webhook_endpoint_list(*, user, action: str = VIEW):
    return restrict(WebhookEndpoint.objects.all(), user, action).select_related("owner", "team")


def webhook_delivery_list(*, user):
    return restrict(WebhookDelivery.objects.all(), user, VIEW).select_related("endpoint")


def webhook_delivery_detail(*, user):
    return webhook_delivery_list(user=user).prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number")))


def person_directory(*, user):
    """People with their teams, in a constant number of queries."""
    return restrict(Person.objects.all(), user, VIEW).prefetch_related(
        Prefetch("groups", queryset=Group.objects.filter(team__isnull=False).select_related("team")))


def team_directory(*, user):
    return restrict(Team.objects.all(), user, VIEW).select_related("manager", "group").prefetch_related(
        "group__user_set")
