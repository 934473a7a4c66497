"""Permission-matrix rules of the checks pages (findings, posture, frameworks, checks)."""

from django.utils import timezone

from tests.matrix_personas import EVERYONE, OWN, POST_ONLY


def _catalogue():
    from governance.audit import Actor
    from governance.models.checks import Check
    from governance.services.catalogue import catalogue_load

    if not Check.objects.exists():
        catalogue_load(actor=Actor.system(task_id="matrix"))


def _finding(estate, personas):
    from governance.models.checks import Check, Finding

    _catalogue()
    credential = estate["credential"]
    now = timezone.now()
    finding = Finding.objects.create(
        failed_check=Check.objects.get(code="rotation-age"),
        object_type="governance.credential",
        object_id=credential.pk,
        object_repr=credential.name,
        first_seen_at=now,
        last_seen_at=now,
        owner=credential.owner,
        team=credential.team,
        evidence={"max_age_days": 90},
    )
    return {"pk": finding.pk}


def _framework(estate, personas):
    _catalogue()
    return {"key": "owasp_nhi_top10_2025"}


KWARGS = {
    "finding": _finding,
    "framework": _framework,
    "workflow-posture": lambda estate, personas: {"kind": "workflows", "pk": estate["workflow"].pk},
}

RULES = {
    "finding-list": (None, EVERYONE),
    "finding-detail": ("finding", OWN),
    "finding-acknowledge": (None, POST_ONLY),
    "posture-dashboard": (None, EVERYONE),
    "posture-object": ("workflow-posture", OWN),
    "framework-list": (None, EVERYONE),
    "framework-detail": ("framework", EVERYONE),
    "check-list": (None, EVERYONE),
}
