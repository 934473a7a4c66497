"""Filters shared by the portal's list pages and the API."""

import django_filters
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from governance.choices import (
    MANAGED_STORE_KINDS,
    CredentialKind,
    CredentialStatus,
    Criticality,
    Environment,
    PersonStatus,
    PrivilegeLevel,
    SecretStoreKind,
    SystemLifecycle,
    WorkflowKind,
    WorkflowStatus,
)
from governance.filtersets.labels import LabelledFilterSet
from governance.models import AuditEvent, Credential, Person, SecretStore, System, Team, Workflow
from governance.models.inventory import PRIVILEGED_WORKFLOW
from governance.search import matching
from governance.selectors.lifecycle import LIFECYCLE_FILTERS, lifecycle_filter


@extend_schema_field(OpenApiTypes.INT)
class ObjectIdFilter(django_filters.ModelChoiceFilter):
    """A choice of one object, by id (typed as an integer in the API schema)."""


# The columns the choice labels need (Person: full name or username): a filter's <select> of 2,000
# people or systems loads those, not whole rows.
PEOPLE_CHOICES = Person.objects.only("id", "username", "first_name", "last_name")
TEAM_CHOICES = Team.objects.only("id", "name")
SYSTEM_CHOICES = System.objects.only("id", "name")


class SearchFilterSet(LabelledFilterSet):
    search_fields: tuple[str, ...] = ()
    q = django_filters.CharFilter(method="filter_q", label="Search")

    def filter_q(self, queryset, name, value):
        """Rows matching value in any search field (governance.search: one indexed id set per field)."""
        return queryset.filter(matching(queryset.model, self.search_fields, value)) if self.search_fields else queryset


class OwnedFilterSet(SearchFilterSet):
    owner = django_filters.ModelChoiceFilter(queryset=PEOPLE_CHOICES)
    team = django_filters.ModelChoiceFilter(queryset=TEAM_CHOICES)
    orphaned = django_filters.BooleanFilter(field_name="owner", lookup_expr="isnull", label="Orphaned")


class WorkflowFilterSet(OwnedFilterSet):
    search_fields = ("name", "description", "platform", "owner__username")
    kind = django_filters.ChoiceFilter(choices=WorkflowKind.choices)
    status = django_filters.ChoiceFilter(choices=WorkflowStatus.choices)
    criticality = django_filters.ChoiceFilter(choices=Criticality.choices)
    platform = django_filters.CharFilter(lookup_expr="iexact")
    privileged = django_filters.BooleanFilter(method="filter_privileged", label="Privileged automation")

    class Meta:
        model = Workflow
        fields = ["q", "kind", "status", "criticality", "platform", "owner", "team", "orphaned", "privileged"]

    def filter_privileged(self, queryset, name, value):
        return queryset.filter(PRIVILEGED_WORKFLOW) if value else queryset.exclude(PRIVILEGED_WORKFLOW)


class CredentialFilterSet(OwnedFilterSet):
    search_fields = ("name", "identifier", "store_path", "fingerprint", "system__name")
    kind = django_filters.ChoiceFilter(choices=CredentialKind.choices)
    status = django_filters.ChoiceFilter(choices=CredentialStatus.choices)
    privilege_level = django_filters.ChoiceFilter(choices=PrivilegeLevel.choices, label="Privilege")
    system = django_filters.ModelChoiceFilter(queryset=SYSTEM_CHOICES)
    store = django_filters.ModelChoiceFilter(queryset=SecretStore.objects.all(), label="Secret store")
    managed = django_filters.BooleanFilter(method="filter_managed", label="In a managed store")
    expires_before = django_filters.DateFilter(field_name="expires_at", lookup_expr="date__lte",
                                            label="Expires on or before")
    lifecycle = django_filters.ChoiceFilter(choices=list(LIFECYCLE_FILTERS.items()), method="filter_lifecycle",
                                            label="Lifecycle", empty_label="Any")

    class Meta:
        model = Credential
        fields = ["q", "kind", "status", "privilege_level", "system", "store", "owner", "team", "orphaned",
                  "managed", "expires_before", "lifecycle"]

    def filter_lifecycle(self, queryset, name, value):
        return lifecycle_filter(queryset, value)

    def filter_managed(self, queryset, name, value):
        condition = Q(store__kind__in=MANAGED_STORE_KINDS)
        return queryset.filter(condition) if value else queryset.exclude(condition)


class SystemFilterSet(OwnedFilterSet):
    search_fields = ("name", "description", "vendor")
    lifecycle = django_filters.ChoiceFilter(choices=SystemLifecycle.choices)
    environment = django_filters.ChoiceFilter(choices=Environment.choices)
    criticality = django_filters.ChoiceFilter(choices=Criticality.choices)
    third_party = django_filters.BooleanFilter(label="Third party")

    class Meta:
        model = System
        fields = ["q", "lifecycle", "environment", "criticality", "third_party", "owner", "team", "orphaned"]


class SecretStoreFilterSet(SearchFilterSet):
    search_fields = ("name", "address", "description")
    kind = django_filters.ChoiceFilter(choices=SecretStoreKind.choices)

    class Meta:
        model = SecretStore
        fields = ["q", "kind"]


class PersonFilterSet(SearchFilterSet):
    search_fields = ("username", "first_name", "last_name", "email", "job_title")
    status = django_filters.ChoiceFilter(choices=PersonStatus.choices)
    team = ObjectIdFilter(queryset=Team.objects.all(), method="filter_team")

    class Meta:
        model = Person
        fields = ["q", "status", "team"]

    def filter_team(self, queryset, name, value):
        return queryset.filter(groups=value.group_id)


class AuditEventFilterSet(SearchFilterSet):
    search_fields = ("summary", "object_repr", "actor_label")
    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="icontains", label="Actor")
    action = django_filters.CharFilter(lookup_expr="istartswith", label="Action (starts with)")
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte",
                                            label="Occurred on or after")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lte",
                                            label="Occurred on or before")

    class Meta:
        model = AuditEvent
        fields = ["q", "actor", "action", "object_type", "object_id", "since", "until"]
