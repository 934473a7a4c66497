"""Permission-matrix rules of the discovery pages (governance/views/discovery.py).

The source belongs to the owner persona's system, so its items and runs are the owner team's: the
approver (another team) and the outsider get 404, the auditor reads and changes nothing.
"""

from django.utils import timezone

from tests.matrix_personas import ADMINS, EVERYONE, OWN, OWN_CHANGE, POST_ONLY


def discovery_objects(estate, personas):
    """A repository source of the estate's system, one undeclared workflow it found and a finished run."""
    if "_discovery" in estate:
        return estate["_discovery"]
    from governance.models.discovery import DiscoveredItem, DiscoveryRun, DiscoverySource

    now = timezone.now()
    source, _ = DiscoverySource.objects.get_or_create(
        name="matrix repository", defaults={"kind": "repository", "settings": {"path": "/srv/git/matrix"},
                                            "system": estate["system"]})
    item, _ = DiscoveredItem.objects.get_or_create(
        source=source, kind="workflow", natural_key=".github/workflows/deploy.yml",
        defaults={"name": "matrix: Deploy", "first_seen_at": now, "last_seen_at": now, "owner": personas.owner,
                  "team": personas.team, "facts": {"platform": "GitHub Actions", "triggers": ["schedule"]}})
    run, _ = DiscoveryRun.objects.get_or_create(
        source=source, trigger="matrix", defaults={"status": "succeeded", "started_at": now, "finished_at": now,
                                                   "counts": {"items": 1}})
    estate["_discovery"] = {"source": source, "item": item, "run": run}
    return estate["_discovery"]


def _pk(name):
    return lambda estate, personas: {"pk": discovery_objects(estate, personas)[name].pk}


KWARGS = {f"discovery_{name}": _pk(name) for name in ("source", "item", "run")}

RULES = {
    "discovery-queue": (None, EVERYONE),
    "discovery-item-detail": ("discovery_item", OWN),
    "discovery-item-adopt": ("discovery_item", OWN_CHANGE),
    "discovery-item-link": ("discovery_item", OWN_CHANGE),
    "discovery-item-dismiss": ("discovery_item", OWN_CHANGE),
    "discovery-source-list": (None, EVERYONE),
    "discovery-source-detail": ("discovery_source", OWN),
    "discovery-source-run": ("discovery_source", POST_ONLY),
    "discovery-source-create": (None, ADMINS),
    "discovery-source-edit": ("discovery_source", ADMINS),
    "discovery-run-detail": ("discovery_run", OWN),
}
