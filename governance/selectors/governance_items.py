"""Which workflows have a credential source: the query the activation gate and the credential_source check share."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from governance.choices import MANAGED_STORE_KINDS
from governance.models import Binding


def managed_binding_exists() -> Exists:
    """For a workflow queryset: it is bound (binding not isolated) to a credential held in a managed store."""
    return Exists(Binding.objects.filter(workflow=OuterRef("pk"), suspended_at__isnull=True,
                                         credential__store__kind__in=MANAGED_STORE_KINDS))


def without_credential_source(queryset: QuerySet) -> QuerySet:
    """The workflows of queryset that neither bind a managed credential nor state that they use none."""
    return queryset.filter(~Q(uses_no_credentials=True) & ~managed_binding_exists())
