"""The risk score of a credential, in one place; the sweep writes it after the checks.

Credential.risk_score (0 to 100, higher is worse) with the reasons that make it up (risk_reasons, short
sentences, heaviest first) is computed by one UPDATE over the whole inventory that writes only the rows whose
score, reasons or lifecycle dates changed (credential_risk_refresh). The weights are RISK_POINTS; a credential
that is not live (active or suspended) scores 0. The same pass stores when rotation is due and when the
credential expires (selectors.lifecycle's one rule, the observed truth first) for the list's badges, sorts
and filters. These fields are never set by hand (editable=False). A finding's rank is checks/ranking.py.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q

from governance.choices import MANAGED_STORE_KINDS, CredentialStatus, Criticality, PrivilegeLevel, WorkflowStatus
from governance.models import Binding, Credential
from governance.models.checks import Finding, FindingState, Severity
from governance.selectors.lifecycle import with_observed_expiry, with_observed_rotation

# The credential risk score: points per reason, the total capped at 100.
RISK_POINTS = {
    "finding": {Severity.CRITICAL: 25, Severity.HIGH: 15, Severity.MEDIUM: 8, Severity.LOW: 3},
    "findings_cap": 60,
    "privilege": {PrivilegeLevel.ADMIN: 15, PrivilegeLevel.WRITE: 5},
    "unmanaged_store": 15,
    "expired": 20,
    "rotation_overdue": 10,  # plus one per ten days overdue, up to rotation_overdue_cap in all
    "rotation_overdue_cap": 20,
    "system": {Criticality.CRITICAL: 10, Criticality.HIGH: 5},
    "per_other_workflow": 5,  # used by more than one workflow: per workflow beyond the first
    "shared_cap": 15,
}
RISK_BATCH = 50_000  # credential ids per UPDATE (and transaction) of the pass
LIVE = (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED)
CREDENTIAL_TYPE = Credential._meta.label_lower


# The credential pass -----------------------------------------------------------------------------------

def _sql(queryset) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return sql, tuple(params)


def _days_since(column: str, vendor: str) -> str:
    if vendor == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM (%s - {column})) / 86400) AS INTEGER)"
    return f"CAST(julianday(%s) - julianday({column}) AS INTEGER)"


def _array_of_present(items: list[str], vendor: str) -> str:
    """A JSON array of the items (SQL text expressions) that are not NULL, in order."""
    if vendor == "postgresql":
        return f"to_jsonb(array_remove(ARRAY[{', '.join(items)}]::text[], NULL))"
    rows = " UNION ALL ".join(f"SELECT {i} AS k, {item} AS v" for i, item in enumerate(items))
    return f"(SELECT json_group_array(v) FROM (SELECT v FROM ({rows}) WHERE v IS NOT NULL ORDER BY k))"


def _plural(count: str, word: str) -> str:
    return f"CAST({count} AS TEXT) || ' {word}' || CASE WHEN {count} = 1 THEN '' ELSE 's' END"


def _score_query(now: dt.datetime, vendor: str, ids: tuple[int, int]) -> tuple[str, tuple]:
    """SELECT id, score, reasons, rotation due, expiry of the credentials with ids in [first, last), in one
    statement from three grouped reads."""
    points = RISK_POINTS
    first, last = ids
    subjects = (with_observed_expiry(with_observed_rotation(Credential.objects.filter(id__gte=first, id__lt=last)))
                .annotate(store_kind=F("store__kind"), system_criticality=F("system__criticality"))
                .order_by().values("id", "status", "privilege_level", "store_kind", "system_criticality",
                                   "rotation_due_at", "effective_expires_at"))
    findings = (Finding.objects.filter(object_type=CREDENTIAL_TYPE, object_id__gte=first, object_id__lt=last,
                                       state__in=[FindingState.OPEN, FindingState.ACKNOWLEDGED])
                .order_by().values("object_id")
                .annotate(**{f"n_{severity}": Count("pk", filter=Q(failed_check__severity=severity))
                             for severity in points["finding"]}))
    uses = (Binding.objects.filter(suspended_at__isnull=True, credential_id__gte=first, credential_id__lt=last)
            .exclude(workflow__status=WorkflowStatus.RETIRED)
            .order_by().values("credential_id").annotate(n=Count("pk")))
    (s_sql, s_params), (f_sql, f_params), (u_sql, u_params) = _sql(subjects), _sql(findings), _sql(uses)
    when = connection.ops.adapt_datetimefield_value(now)
    live = ", ".join(f"'{status}'" for status in LIVE)
    managed = ", ".join(f"'{kind}'" for kind in MANAGED_STORE_KINDS)
    severities = list(points["finding"])
    # PostgreSQL: a fence, so each row's facts are computed once, not inlined into every expression reading them.
    fence = "OFFSET 0" if vendor == "postgresql" else ""
    base = f"""
        SELECT s.id, s.rotation_due_at AS due, s.effective_expires_at AS expires,
               CASE WHEN s.status IN ({live}) THEN 1 ELSE 0 END AS live,
               CASE WHEN s.rotation_due_at < %s THEN {_days_since("s.rotation_due_at", vendor)} END AS overdue_days,
               CASE WHEN s.effective_expires_at <= %s THEN 1 ELSE 0 END AS expired,
               CASE WHEN s.store_kind IS NULL OR s.store_kind NOT IN ({managed}) THEN 1 ELSE 0 END AS unmanaged,
               s.privilege_level, s.system_criticality, COALESCE(u.n, 0) AS workflows,
               {", ".join(f"COALESCE(f.n_{sev}, 0) AS n_{sev}" for sev in severities)}
        FROM ({s_sql}) s
        LEFT JOIN ({f_sql}) f ON f.object_id = s.id
        LEFT JOIN ({u_sql}) u ON u.credential_id = s.id {fence}"""
    finding_points = " + ".join(f"{points['finding'][sev]} * b.n_{sev}" for sev in severities)
    parts = {
        "findings": f"CASE WHEN ({finding_points}) > {points['findings_cap']} THEN {points['findings_cap']} "
                    f"ELSE ({finding_points}) END",
        "privilege": "CASE b.privilege_level " + " ".join(
            f"WHEN '{level}' THEN {n}" for level, n in points["privilege"].items()) + " ELSE 0 END",
        "unmanaged": f"b.unmanaged * {points['unmanaged_store']}",
        "expired": f"b.expired * {points['expired']}",
        "rotation": f"CASE WHEN b.overdue_days IS NULL THEN 0 WHEN {points['rotation_overdue']} + b.overdue_days / 10 "
                    f"> {points['rotation_overdue_cap']} THEN {points['rotation_overdue_cap']} "
                    f"ELSE {points['rotation_overdue']} + b.overdue_days / 10 END",
        "system": "CASE b.system_criticality " + " ".join(
            f"WHEN '{level}' THEN {n}" for level, n in points["system"].items()) + " ELSE 0 END",
        "shared": f"CASE WHEN b.workflows < 2 THEN 0 WHEN {points['per_other_workflow']} * (b.workflows - 1) > "
                  f"{points['shared_cap']} THEN {points['shared_cap']} "
                  f"ELSE {points['per_other_workflow']} * (b.workflows - 1) END",
    }
    total = f"b.live * ({' + '.join(f'({part})' for part in parts.values())})"
    reasons = [
        *(f"CASE WHEN b.n_{sev} > 0 THEN CAST(b.n_{sev} AS TEXT) || ' open {sev} finding' || "
          f"CASE WHEN b.n_{sev} = 1 THEN '' ELSE 's' END END" for sev in severities),
        "CASE WHEN b.expired = 1 THEN 'expired' END",
        "CASE WHEN b.overdue_days IS NOT NULL THEN 'rotation overdue by ' || "
        + _plural("b.overdue_days", "day") + " END",
        *(f"CASE WHEN b.privilege_level = '{level}' THEN '{level} privilege' END" for level in points["privilege"]),
        "CASE WHEN b.unmanaged = 1 THEN 'unmanaged store' END",
        "CASE WHEN b.workflows > 1 THEN 'used by ' || " + _plural("b.workflows", "workflow") + " END",
        *(f"CASE WHEN b.system_criticality = '{level}' THEN '{level}-criticality system' END"
          for level in points["system"]),
    ]
    reasons = [f"CASE WHEN b.live = 1 THEN {reason} END" for reason in reasons]
    sql = f"""
        SELECT t.id, t.due, t.expires, CASE WHEN t.total > 100 THEN 100 ELSE t.total END AS score, t.reasons
        FROM (SELECT b.id, b.due, b.expires, {total} AS total, {_array_of_present(reasons, vendor)} AS reasons
              FROM ({base}) b) t"""
    return sql, (when, when, when, *s_params, *f_params, *u_params)  # the SELECT list's before the FROMs'


def credential_risk_refresh(*, now: dt.datetime, batch: int = RISK_BATCH) -> int:
    """Score every credential and store its rotation due date and expiry; write only what changed.

    One UPDATE ... FROM per range of `batch` ids (PostgreSQL or SQLite), each in its own transaction, so
    the rows it changes are locked for one range's statement only (the first pass after the migration
    writes every credential): a sweep in which nothing changed writes no row. Returns how many changed.
    """
    bounds = Credential.objects.aggregate(first=Min("id"), last=Max("id"))
    if bounds["first"] is None:
        return 0
    changed = 0
    for first in range(bounds["first"], bounds["last"] + 1, batch):
        changed += _refresh_range(now, (first, first + batch))
    return changed


def _refresh_range(now: dt.datetime, ids: tuple[int, int]) -> int:
    vendor = connection.vendor
    select, params = _score_query(now, vendor, ids)
    table = Credential._meta.db_table
    if vendor == "postgresql":
        differs = (f"{table}.risk_score <> r.score OR {table}.risk_reasons <> r.reasons"
                   f" OR {table}.swept_rotation_due_at IS DISTINCT FROM r.due"
                   f" OR {table}.swept_expires_at IS DISTINCT FROM r.expires")
    else:
        differs = (f"{table}.risk_score <> r.score OR json({table}.risk_reasons) <> r.reasons"
                   f" OR {table}.swept_rotation_due_at IS NOT r.due OR {table}.swept_expires_at IS NOT r.expires")
    sql = (f"UPDATE {table} SET risk_score = r.score, risk_reasons = r.reasons, swept_rotation_due_at = r.due, "
           f"swept_expires_at = r.expires FROM ({select}) r WHERE {table}.id = r.id AND ({differs})")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
