"""Filters of the integrations capability, shared by its portal lists and the API."""

import django_filters

from governance.filtersets import SearchFilterSet
from governance.filtersets.labels import LabelledFilterSet
from governance.models import Binding, Credential, Person, Team, Workflow
from governance.models.integrations import (
    SUBSCRIBABLE_EVENTS,
    DeliveryStatus,
    EndpointStatus,
    Integration,
    IntegrationScope,
    IntegrationStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)


class IntegrationFilterSet(SearchFilterSet):
    search_fields = ("name", "description", "owner__username")
    status = django_filters.ChoiceFilter(choices=IntegrationStatus.choices)
    owner = django_filters.ModelChoiceFilter(queryset=Person.objects.all())
    team = django_filters.ModelChoiceFilter(queryset=Team.objects.all())
    scope = django_filters.ChoiceFilter(choices=IntegrationScope.choices, method="filter_scope", label="Scope")

    class Meta:
        model = Integration
        fields = ["q", "status", "owner", "team", "scope"]

    def filter_scope(self, queryset, name, value):
        # JSON containment differs between databases; scopes are few, so match the quoted value.
        return queryset.filter(scopes__icontains=f'"{value}"')


class WebhookEndpointFilterSet(SearchFilterSet):
    search_fields = ("name", "url", "description")
    status = django_filters.ChoiceFilter(choices=EndpointStatus.choices)
    event_type = django_filters.ChoiceFilter(
        choices=[(e, e) for e in SUBSCRIBABLE_EVENTS], method="filter_event", label="Event")

    class Meta:
        model = WebhookEndpoint
        fields = ["q", "status", "event_type"]

    def filter_event(self, queryset, name, value):
        return queryset.filter(event_types__icontains=f'"{value}"')


class WebhookDeliveryFilterSet(LabelledFilterSet):
    endpoint = django_filters.ModelChoiceFilter(queryset=WebhookEndpoint.objects.all())
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event_type = django_filters.ChoiceFilter(choices=WebhookEventType.choices)
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type", "since"]


class BindingFilterSet(SearchFilterSet):
    search_fields = ("purpose", "workflow__name", "credential__name")
    workflow = django_filters.ModelChoiceFilter(queryset=Workflow.objects.all())
    credential = django_filters.ModelChoiceFilter(queryset=Credential.objects.all())

    class Meta:
        model = Binding
        fields = ["q", "workflow", "credential"]


class TeamFilterSet(SearchFilterSet):
    search_fields = ("name", "description")

    class Meta:
        model = Team
        fields = ["q"]
