"""The daily posture snapshot: per day, for the estate and for each team, each check's pass/fail counts.

Kept for the trend charts. Taking it twice in a day overwrites that day's rows (one row per
day, scope and check, enforced by the database), so the task is safe to repeat.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from governance.checks import Context, NotEvaluated, QueryCheck, all_checks
from governance.models.checks import (
    UNRESOLVED_STATES,
    Check,
    CheckStatus,
    Finding,
    FindingState,
    PostureSnapshot,
)


def _team_counts(ctx: Context) -> dict[tuple[int, str], list[int]]:
    """(team id, check code) -> [evaluated, failed, accepted]; one grouped query per check and subject."""
    counts: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for code, definition in all_checks().items():
        if not isinstance(definition, QueryCheck):
            continue
        try:
            for model in definition.subject_models:
                rows = (
                    definition.evaluated(model, ctx)
                    .exclude(team__isnull=True)
                    .order_by()
                    .values("team_id")
                    .annotate(n=Count("pk"))
                    .values_list("team_id", "n")
                )
                for team_id, n in rows:
                    counts[(team_id, code)][0] += n
        except NotEvaluated:
            continue
    findings = (
        Finding.objects.filter(state__in=UNRESOLVED_STATES, team__isnull=False)
        .order_by()
        .values_list("team_id", "failed_check__code", "state")
        .annotate(n=Count("pk"))
    )
    for team_id, code, state, n in findings:
        if (team_id, code) in counts:
            counts[(team_id, code)][1] += n
            if state == FindingState.RISK_ACCEPTED:
                counts[(team_id, code)][2] += n
    return counts


def posture_snapshot_take(*, date: dt.date | None = None) -> int:
    """Record the posture of `date` (today by default). Returns the number of rows written."""
    ctx = Context.current()
    date = date or timezone.localdate()
    accepted = dict(
        Finding.objects.filter(state=FindingState.RISK_ACCEPTED)
        .order_by()
        .values_list("failed_check__code")
        .annotate(n=Count("pk"))
        .values_list("failed_check__code", "n")
    )
    rows = []
    for check in Check.objects.filter(last_status=CheckStatus.EVALUATED):
        taken = accepted.get(check.code, 0)
        rows.append(
            PostureSnapshot(
                date=date,
                scope_type=PostureSnapshot.ESTATE,
                scope_key="",
                check_code=check.code,
                passed=check.last_passed_count,
                failed=max(check.last_failed_count - taken, 0),
                accepted=taken,
            )
        )
    for (team_id, code), (evaluated, failed, taken) in _team_counts(ctx).items():
        failed = min(failed, evaluated)
        rows.append(
            PostureSnapshot(
                date=date,
                scope_type=PostureSnapshot.TEAM,
                scope_key=str(team_id),
                check_code=code,
                passed=evaluated - failed,
                failed=failed - min(taken, failed),
                accepted=min(taken, failed),
            )
        )
    with transaction.atomic():
        PostureSnapshot.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["date", "scope_type", "scope_key", "check_code"],
            update_fields=["passed", "failed", "accepted", "taken_at"],
        )
    return len(rows)
