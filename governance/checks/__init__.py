"""Posture checks: each a rule evaluated over the whole estate in set-based queries (see base.py).

The registry maps a check's stable code ("owner-active") to its implementation; the catalogue
(governance/catalogue/control-catalogue.yaml) maps each check to the framework controls it evidences.
"""

from governance.checks.base import Check, Context, Failure, NotEvaluated, Outcome, QueryCheck, thresholds
from governance.checks.registry import all_checks, by_key, get, register

__all__ = [
    "Check",
    "Context",
    "Failure",
    "NotEvaluated",
    "Outcome",
    "QueryCheck",
    "all_checks",
    "by_key",
    "get",
    "register",
    "thresholds",
]
