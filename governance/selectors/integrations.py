"""Reads of the integrations capability (and the API's directory reads): restricted and prefetched."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Prefetch

from governance.models import Person, Team
from governance.models.integrations import (
    Integration,
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
        .prefetch_related("allowed_people", Prefetch("tokens", queryset=IntegrationToken.objects.order_by("-pk")))
    )


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
