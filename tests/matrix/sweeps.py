"""Permission-matrix rules of the sweep-now pages (governance/views/sweeps.py)."""

from django.utils import timezone

from tests.matrix_personas import POST_ONLY, READERS


def _sweep_run(estate, personas):
    from governance.models.checks import SweepRun

    now = timezone.now()
    run, _ = SweepRun.objects.get_or_create(trigger="matrix", defaults={
        "started_at": now, "finished_at": now, "status": "succeeded", "checks": ["owner-active"]})
    return {"pk": run.pk}


KWARGS = {"sweep_run": _sweep_run}

RULES = {
    "sweep-now": (None, POST_ONLY),
    "sweep-detail": ("sweep_run", READERS),
    "sweep-progress": ("sweep_run", READERS),
}
