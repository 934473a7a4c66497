"""Filters of the approval lists (the queue and the requester's view)."""

import django_filters
from django.db.models import Q

from governance.filtersets.labels import LabelledFilterSet
from governance.models import Person
from governance.models.approvals import ApprovalAction, ApprovalRequest, ApprovalStatus


class ApprovalRequestFilterSet(LabelledFilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Search")
    action = django_filters.ChoiceFilter(choices=ApprovalAction.choices)
    status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)
    requested_by = django_filters.ModelChoiceFilter(queryset=Person.objects.order_by("username"),
                                                    label="Requester")
    escalated = django_filters.BooleanFilter(field_name="escalated_at", lookup_expr="isnull", exclude=True,
                                             label="Escalated")

    class Meta:
        model = ApprovalRequest
        fields = ["q", "action", "status", "requested_by", "escalated"]

    def filter_q(self, queryset, name, value):
        return queryset.filter(
            Q(justification__icontains=value) | Q(ticket_key__icontains=value)
            | Q(requested_by__username__icontains=value) | Q(filed_by_label__icontains=value)
        )
