"""Discovery's start-up wiring, called from GovernanceConfig.ready(): visibility rules and lease recovery.

Who sees what: security admins and auditors see every source, run and item (governance.permissions);
an owner sees the items, runs and sources of the systems they may see (the system whose store, server
or repository it is), and reviews the items of the systems they may change.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from governance import leases
from governance.discovery.services import discovery_runs_recover
from governance.models import System
from governance.models.discovery import DiscoveredItem, DiscoveryRun, DiscoveryRunStatus, DiscoverySource
from governance.models.people import Team
from governance.permissions import VIEW, register_model_rule, restrict


def _system_visible(user, action: str, lookup: str) -> Exists:
    return Exists(restrict(System.objects.all(), user, action).filter(pk=OuterRef(lookup)))


def _item_rule(queryset, user, action):
    condition = _system_visible(user, action, "source__system_id")
    if action == VIEW:
        condition = condition | Q(owner=user) | Exists(Team.objects.filter(pk=OuterRef("team_id"), group__user=user))
    return queryset.filter(condition)


def _source_rule(queryset, user, action):
    if action != VIEW:
        return queryset.none()  # sources are managed by security admins
    return queryset.filter(_system_visible(user, action, "system_id"))


def _run_rule(queryset, user, action):
    if action != VIEW:
        return queryset.none()
    return queryset.filter(_system_visible(user, action, "source__system_id"))


def discovery_ready() -> None:
    register_model_rule(DiscoveredItem, _item_rule)
    register_model_rule(DiscoverySource, _source_rule)
    register_model_rule(DiscoveryRun, _run_rule)
    leases.register_recovery(leases.Recovery(
        name="discovery_runs", model=DiscoveryRun, running=DiscoveryRunStatus.RUNNING, recover=discovery_runs_recover))
