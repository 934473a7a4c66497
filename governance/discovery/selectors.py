"""Discovery's reads: each takes the user and returns a restricted, prefetched queryset (governance.permissions).

Used by the portal's pages and the API alike, so both see exactly what restrict() lets the user see:
security admins and auditors every source, run and item; an owner those of the systems they may see.
"""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from governance import permissions
from governance.models import Credential, Workflow
from governance.models.checks import Finding
from governance.models.discovery import (
    DISCOVERY_RUN_OPEN,
    DiscoveredItem,
    DiscoveredKind,
    DiscoveryRun,
    DiscoverySource,
    Reconciliation,
)

ITEM_TYPE = "governance.discovereditem"


def discovered_item_list(*, user) -> QuerySet[DiscoveredItem]:
    return permissions.restrict(DiscoveredItem.objects.all(), user, permissions.VIEW).select_related(
        "source", "source__system", "linked_credential", "linked_workflow", "reviewed_by")


def discovered_item_findings(*, user, item: DiscoveredItem) -> QuerySet[Finding]:
    """The findings on the item, and for a declared-but-missing item the finding on its credential."""
    condition = Q(object_type=ITEM_TYPE, object_id=item.pk)
    if item.reconciliation == Reconciliation.MISSING and item.linked_credential_id:
        condition |= Q(object_type="governance.credential", object_id=item.linked_credential_id,
                       failed_check__code="discovery-declared-missing")
    return permissions.restrict(Finding.objects.filter(condition), user, permissions.VIEW).select_related(
        "failed_check").order_by("-last_seen_at", "pk")


def discovery_source_list(*, user) -> QuerySet[DiscoverySource]:
    """Sources with their latest run (id and status) and how many items each has."""
    latest = DiscoveryRun.objects.filter(source=OuterRef("pk")).order_by("-created_at", "-pk")
    return permissions.restrict(DiscoverySource.objects.all(), user, permissions.VIEW).select_related(
        "system", "store").annotate(
        latest_run_id=Subquery(latest.values("pk")[:1]), latest_run_status=Subquery(latest.values("status")[:1]),
        item_count=Count("items", filter=Q(items__present=True), distinct=True))


def discovery_run_list(*, user, source: DiscoverySource | None = None) -> QuerySet[DiscoveryRun]:
    runs = permissions.restrict(DiscoveryRun.objects.all(), user, permissions.VIEW).select_related(
        "source", "requested_by")
    return runs.filter(source=source) if source is not None else runs


def discovery_open_run(*, source: DiscoverySource) -> DiscoveryRun | None:
    return DiscoveryRun.objects.filter(
        source=source, status__in=DISCOVERY_RUN_OPEN).first()


def link_targets(*, user, item: DiscoveredItem) -> QuerySet:
    """What the item may be linked to: workflows for a workflow, credentials otherwise, that the user may change."""
    model = Workflow if item.kind == DiscoveredKind.WORKFLOW else Credential
    return permissions.restrict(model.objects.all(), user, permissions.CHANGE).order_by("name")
