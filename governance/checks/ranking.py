"""The rank of a finding (Finding.risk_rank, lower is worse), in one place; the sweep writes it.

Three digits: its check's severity (critical 0, high 1, medium 2, low 3), then its object's criticality
(a credential: its system's; a workflow or system: its own; a discovered item: its source's system's; 4
when it has none), then its object's privilege (a credential's level admin 0, write 1, read 2; a workflow
that changes access counts as admin; 3 when none). 0 is a critical finding on an admin credential of a
critical system; 212 a medium one on a read credential of a high system. The findings list orders by
(risk_rank, id): among equals the older finding first. QueryCheck.failing_rows computes the object's part
in the failing-set query itself (subject_rank); the sweep adds the severity (finding_risk_rank) and writes
the rank when it opens, reopens or refreshes a finding, or when only the rank changed.
"""

from __future__ import annotations

from django.db.models import Case, ExpressionWrapper, IntegerField, Model, Value, When
from django.db.models.expressions import Expression

from governance.choices import Criticality, PrivilegeLevel
from governance.models import Credential, System, Workflow
from governance.models.checks import RISK_RANK_UNRANKED, SEVERITY_ORDER
from governance.models.discovery import DiscoveredItem
from governance.models.inventory import PRIVILEGED_WORKFLOW

CRITICALITY_ORDER = {Criticality.CRITICAL: 0, Criticality.HIGH: 1, Criticality.MEDIUM: 2, Criticality.LOW: 3}
NO_CRITICALITY = len(CRITICALITY_ORDER)
PRIVILEGE_ORDER = {PrivilegeLevel.ADMIN: 0, PrivilegeLevel.WRITE: 1, PrivilegeLevel.READ: 2}
NO_PRIVILEGE = len(PRIVILEGE_ORDER)
NO_SUBJECT_RANK = NO_CRITICALITY * 10 + NO_PRIVILEGE  # an estate-level finding: no object to weigh


def _order(field: str, order: dict, default: int) -> Case:
    return Case(*(When(**{field: value}, then=Value(rank)) for value, rank in order.items()),
                default=Value(default), output_field=IntegerField())


def subject_rank(model: type[Model]) -> Expression:
    """The object's part of a finding's rank (criticality * 10 + privilege), for the model's failing query."""
    if model is Credential:
        criticality, privilege = "system__criticality", _order("privilege_level", PRIVILEGE_ORDER, NO_PRIVILEGE)
    elif model is Workflow:
        criticality = "criticality"
        privilege = Case(When(PRIVILEGED_WORKFLOW, then=Value(PRIVILEGE_ORDER[PrivilegeLevel.ADMIN])),
                         default=Value(NO_PRIVILEGE), output_field=IntegerField())
    elif model is System:
        criticality, privilege = "criticality", Value(NO_PRIVILEGE)
    elif model is DiscoveredItem:
        criticality, privilege = "source__system__criticality", Value(NO_PRIVILEGE)
    else:
        return Value(NO_SUBJECT_RANK, output_field=IntegerField())
    return ExpressionWrapper(_order(criticality, CRITICALITY_ORDER, NO_CRITICALITY) * Value(10) + privilege,
                             output_field=IntegerField())


def finding_risk_rank(*, severity: str, subject: int) -> int:
    """A finding's rank from its check's severity and its object's part (subject_rank)."""
    return SEVERITY_ORDER.get(severity, len(SEVERITY_ORDER)) * 100 + subject


WORST_FIRST = ("risk_rank", "pk")  # the findings' order by risk: the lowest rank, then the oldest, first


def rank_explained(rank: int) -> str:
    """What a rank says beyond the severity, for people: "critical criticality · admin privilege"."""
    if rank >= RISK_RANK_UNRANKED:
        return "not ranked yet (the next sweep ranks it)"
    criticality, privilege = divmod(rank % 100, 10)
    names = {v: k for k, v in CRITICALITY_ORDER.items()}, {v: k for k, v in PRIVILEGE_ORDER.items()}
    parts = [f"{names[0][criticality]} criticality" if criticality in names[0] else "",
             f"{names[1][privilege]} privilege" if privilege in names[1] else ""]
    return " · ".join(part for part in parts if part) or "no object to weigh"
