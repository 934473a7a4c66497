"""`id__in_id_set=<subquery>`: the ids a subquery gives, fetched through the primary key's index.

On PostgreSQL this is `id = ANY(ARRAY(subquery))`: the subquery runs once (an InitPlan) and the rows
are looked up by id. `id IN (subquery)` leaves the planner free to merge-join the subquery against
the index walked in the page's order, betting that the matches are spread evenly; when they are not,
it walks most of the table for a page (an approver's API findings at 1M credentials: 329k findings
read, 94 ms, against 28 ms this way). The cost follows the number of ids, so it is for sets that a
visibility rule keeps small (governance.models.checks' finding rule). Elsewhere it is plain IN.
"""

from __future__ import annotations

from django.db.models import AutoField, BigAutoField, Lookup


class InIdSet(Lookup):
    lookup_name = "in_id_set"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if not rhs.startswith("("):
            rhs = f"({rhs})"
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)


def register_lookups() -> None:
    """Called from GovernanceConfig.ready()."""
    for field in (AutoField, BigAutoField):
        field.register_lookup(InIdSet)
