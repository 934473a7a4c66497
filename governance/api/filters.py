"""API filters for lists the portal has no filterset for (attestation items)."""

import django_filters

from governance.filtersets.labels import LabelledFilterSet
from governance.models import Person
from governance.models.attestation import AttestationCampaign, AttestationItem, AttestedObjectType, ItemState


class AttestationItemFilterSet(LabelledFilterSet):
    campaign = django_filters.ModelChoiceFilter(queryset=AttestationCampaign.objects.all())
    state = django_filters.ChoiceFilter(choices=ItemState.choices)
    assignee = django_filters.ModelChoiceFilter(queryset=Person.objects.all())
    object_type = django_filters.ChoiceFilter(choices=AttestedObjectType.choices)

    class Meta:
        model = AttestationItem
        fields = ["campaign", "state", "assignee", "object_type"]
