"""Filters of the findings list (check, severity, state, owner, team, framework control, object type)."""

import django_filters
from django.db.models import Exists, OuterRef, Q

from governance.filtersets import PEOPLE_CHOICES, TEAM_CHOICES, ObjectIdFilter, SearchFilterSet
from governance.models.checks import (
    UNRESOLVED_STATES,
    Check,
    CheckControl,
    Control,
    Finding,
    FindingState,
    Severity,
)

UNRESOLVED, ALL = "unresolved", "all"
STATE_CHOICES = [
    (UNRESOLVED, "Unresolved (open, acknowledged, risk accepted)"),
    *FindingState.choices,
    (ALL, "All"),
]
OBJECT_TYPES = [
    ("governance.credential", "Credential"),
    ("governance.workflow", "Workflow"),
    ("governance.system", "System"),
    ("governance.auditevent", "Estate (audit trail)"),
]


class FindingFilterSet(SearchFilterSet):
    search_fields = ("object_repr", "failed_check__code", "failed_check__name")
    check = django_filters.ModelChoiceFilter(
        queryset=Check.objects.order_by("sort_order"),
        field_name="failed_check",
        to_field_name="code",
        label="Check",
    )
    severity = django_filters.ChoiceFilter(choices=Severity.choices, field_name="failed_check__severity")
    state = django_filters.ChoiceFilter(choices=STATE_CHOICES, method="filter_state", empty_label=None)
    owner = django_filters.ModelChoiceFilter(queryset=PEOPLE_CHOICES)
    team = django_filters.ModelChoiceFilter(queryset=TEAM_CHOICES)
    control = ObjectIdFilter(
        queryset=Control.objects.filter(mappings__isnull=False)
        .distinct()
        .select_related("framework")
        .order_by("framework__sort_order", "sort_order"),
        method="filter_control",
        label="Framework control",
    )
    object_type = django_filters.ChoiceFilter(choices=OBJECT_TYPES, label="Object type")

    class Meta:
        model = Finding
        fields = ["q", "check", "severity", "state", "owner", "team", "control", "object_type"]

    def __init__(self, data=None, *args, **kwargs):
        data = data.copy() if data is not None else {}
        if not data.get("state"):
            data["state"] = UNRESOLVED  # the list shows what still needs attention unless told otherwise
        super().__init__(data, *args, **kwargs)
        self.filters["control"].field.label_from_instance = lambda c: (
            f"{c.framework.short_name or c.framework.key}: {c.identifier}"
        )

    def filter_state(self, queryset, name, value):
        if value == UNRESOLVED:
            return queryset.filter(state__in=UNRESOLVED_STATES)
        if value == ALL:
            return queryset
        return queryset.filter(state=value)

    def filter_control(self, queryset, name, value):
        mapped = CheckControl.objects.filter(control=value, mapped_check=OuterRef("failed_check"))
        return queryset.filter(Q(Exists(mapped)))
