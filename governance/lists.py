"""The lists people choose to work in: one declaration per list of its filters, sorts and columns.

The list pages (views/inventory.py, views/checks.py) and templates read the columns from here, the
saved-view service (services/saved_views.py) validates a view's query string and columns against it.
A new column is one Column here plus its cell in the list's template (templates/governance/*_list.html,
guarded by {% if "<key>" in shown %}). Every column must come from the list's selector (select_related,
annotate): a column never costs a query per row.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.choices import ListKey
from governance.filtersets import CredentialFilterSet, SystemFilterSet, WorkflowFilterSet
from governance.filtersets.checks import FindingFilterSet

SORT = "sort"
COLUMNS = "columns"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort: str = ""  # the ?sort= key of the column ("": not sortable)


@dataclass(frozen=True)
class ListSpec:
    key: str
    url_name: str
    filterset: type
    sort_fields: dict[str, str]  # ?sort= key -> ORM field (each one indexed with id: see filtered_page)
    default_sort: str
    columns: tuple[Column, ...]  # the first one (the name) always shows
    hidden_by_default: tuple[str, ...] = ()  # choosable, but not shown until chosen (the page fits a laptop)

    @property
    def always(self) -> Column:
        return self.columns[0]

    @property
    def choosable(self) -> tuple[Column, ...]:
        return self.columns[1:]

    @property
    def column_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns)

    @property
    def query_parameters(self) -> frozenset[str]:
        """What a saved view's query string may hold: the filters' names and the sort."""
        return frozenset(self.filterset.base_filters) | {SORT}

    def chosen(self, keys) -> tuple[Column, ...]:
        """The columns to show for these keys (unknown keys dropped, the name always); none given: the defaults."""
        keys = set(keys or ())
        if not keys:
            return tuple(c for c in self.columns if c.key not in self.hidden_by_default)
        return tuple(c for c in self.columns if c is self.always or c.key in keys)


LISTS = {spec.key: spec for spec in (
    ListSpec(
        key=ListKey.CREDENTIAL, url_name="credential-list", filterset=CredentialFilterSet,
        sort_fields={"name": "name", "kind": "kind", "system": "system__name", "status": "status",
                     "expires": "expires_at", "rotated": "last_rotated_at", "owner": "owner__username",
                     "workflows": "workflow_count", "risk": "risk_score", "rotation_due": "swept_rotation_due_at",
                     "used": "last_used_at", "attested": "last_attested_at"},
        default_sort="name",
        columns=(Column("name", "Name", "name"), Column("risk", "Risk", "risk"), Column("kind", "Kind", "kind"),
                 Column("system", "System", "system"), Column("store", "Store"),
                 Column("status", "Status", "status"), Column("rotated", "Last rotated", "rotated"),
                 Column("rotation_due", "Rotation due", "rotation_due"),
                 Column("expires", "Expires", "expires"), Column("used", "Last used", "used"),
                 Column("attested", "Last attested", "attested"), Column("owner", "Owner", "owner"),
                 Column("workflows", "Workflows", "workflows")),
        hidden_by_default=("rotated", "used", "attested", "workflows"),
    ),
    ListSpec(
        key=ListKey.WORKFLOW, url_name="workflow-list", filterset=WorkflowFilterSet,
        sort_fields={"name": "name", "platform": "platform", "status": "status", "owner": "owner__username",
                     "criticality": "criticality", "credentials": "credential_count",
                     "attested": "last_attested_at"},
        default_sort="name",
        columns=(Column("name", "Name", "name"), Column("platform", "Platform", "platform"),
                 Column("status", "Status", "status"), Column("criticality", "Criticality", "criticality"),
                 Column("owner", "Owner", "owner"), Column("team", "Team"),
                 Column("credentials", "Credentials", "credentials"), Column("privileged", "Privileged"),
                 Column("attested", "Last attested", "attested")),
        hidden_by_default=("attested",),
    ),
    ListSpec(
        key=ListKey.SYSTEM, url_name="system-list", filterset=SystemFilterSet,
        sort_fields={"name": "name", "lifecycle": "lifecycle", "environment": "environment",
                     "criticality": "criticality", "owner": "owner__username", "credentials": "credential_count"},
        default_sort="name",
        columns=(Column("name", "Name", "name"), Column("lifecycle", "Lifecycle", "lifecycle"),
                 Column("environment", "Environment", "environment"),
                 Column("criticality", "Criticality", "criticality"), Column("third_party", "Third party"),
                 Column("owner", "Owner", "owner"), Column("credentials", "Credentials", "credentials")),
    ),
    ListSpec(
        key=ListKey.FINDING, url_name="finding-list", filterset=FindingFilterSet,
        sort_fields={"risk": "risk_rank",  # the lowest rank is the worst (checks/ranking.py): ascending is worst first
                     "seen": "last_seen_at", "first": "first_seen_at", "check": "failed_check__sort_order",
                     "severity": "risk_rank",  # severity is the rank's first digit; its text would sort alphabetically
                     "object": "object_repr", "state": "state", "owner": "owner__username"},
        default_sort="risk",
        columns=(Column("check", "Check", "check"), Column("severity", "Severity", "severity"),
                 Column("risk", "Risk", "risk"), Column("object", "Object", "object"),
                 Column("state", "State", "state"),
                 Column("owner", "Owner", "owner"), Column("team", "Team"),
                 Column("first", "First seen", "first"), Column("seen", "Last seen", "seen")),
    ),
)}
