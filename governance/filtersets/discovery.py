"""Filters of the discovery review queue, shared by the portal's queue and the API's list."""

import django_filters
from django.db.models import Q
from django.utils import timezone

from governance import permissions
from governance.filtersets import ObjectIdFilter, SearchFilterSet
from governance.models.discovery import DiscoveredItem, DiscoveredKind, DiscoverySource, Reconciliation, ReviewState

OPEN = "open"
REVIEW_CHOICES = [(OPEN, "To review (or dismissal expired)"), *ReviewState.choices]


class DiscoveredItemFilterSet(SearchFilterSet):
    search_fields = ("name", "natural_key")
    reconciliation = django_filters.ChoiceFilter(choices=Reconciliation.choices)
    kind = django_filters.ChoiceFilter(choices=DiscoveredKind.choices)
    source = ObjectIdFilter(queryset=DiscoverySource.objects.order_by("name"))
    review = django_filters.ChoiceFilter(choices=REVIEW_CHOICES, method="filter_review", label="Review")
    privileged = django_filters.BooleanFilter()
    present = django_filters.BooleanFilter(label="Seen by the last run")

    class Meta:
        model = DiscoveredItem
        fields = ["q", "reconciliation", "kind", "source", "review", "privileged", "present"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        if request is not None and request.user.is_authenticated:  # only the sources the user may see
            self.filters["source"].queryset = permissions.restrict(
                DiscoverySource.objects.all(), request.user, permissions.VIEW).order_by("name")

    def filter_review(self, queryset, name, value):
        if value == OPEN:
            return queryset.filter(Q(review=ReviewState.PENDING)
                                   | Q(review=ReviewState.DISMISSED, dismissed_until__lte=timezone.now()))
        return queryset.filter(review=value)
