"""Permission-matrix rules for the lifecycle pages (kill switch, drills, rotations, revocation)."""

from django.utils import timezone

from tests.matrix_personas import ADMINS, EVERYONE, OWN, OWN_CHANGE, POST_ONLY


def _activation(estate, personas):
    from governance.models.lifecycle import KillSwitchActivation

    activation, _ = KillSwitchActivation.objects.get_or_create(
        workflow=estate["workflow"], mode="drill",
        defaults={"actor_label": "olivia.owner", "workflow_status_before": "active", "started_at": timezone.now()})
    return activation


def _job(estate, personas):
    from governance.models.lifecycle import RotationJob

    job, _ = RotationJob.objects.get_or_create(credential=estate["credential"], due_on=timezone.now().date(),
                                               defaults={"trigger": "manual"})
    return job


KWARGS = {
    "kill_switch": lambda estate, personas: {"pk": _activation(estate, personas).pk},
    "rotation_job": lambda estate, personas: {"pk": _job(estate, personas).pk},
}

RULES = {
    "killswitch-confirm": ("workflow", OWN_CHANGE),
    "killswitch-drill": ("workflow", POST_ONLY),
    "workflow-deprovision": ("workflow", POST_ONLY),
    "system-deprovision": ("system", POST_ONLY),
    "killswitch-list": (None, EVERYONE),
    "killswitch-detail": ("kill_switch", OWN),
    "killswitch-progress": ("kill_switch", OWN),
    "credential-rotate": ("credential", POST_ONLY),
    "credential-lifecycle": ("credential", OWN),
    "credential-revoke": ("credential", OWN_CHANGE),
    "rotation-list": (None, EVERYONE),
    "system-connector": ("system", ADMINS),
    "system-hosts": ("system", ADMINS),
    "rotation-detail": ("rotation_job", OWN),
}
