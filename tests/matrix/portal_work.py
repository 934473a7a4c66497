"""Permission-matrix rules for the portal's working pages (#19): connector health, kill-switch checklist."""

from tests.matrix_personas import POST_ONLY


def _step(estate, personas):
    # Imported here like the other matrix modules: they are loaded while the URL list is collected.
    from governance.models.lifecycle import KillSwitchStep
    from tests.matrix.lifecycle import KWARGS as LIFECYCLE_KWARGS

    activation_pk = LIFECYCLE_KWARGS["kill_switch"](estate, personas)["pk"]
    step, _ = KillSwitchStep.objects.get_or_create(activation_id=activation_pk, position=1, defaults={
        "action": "manual_issuer", "label": "Revoke by hand", "status": "awaiting"})
    return {"pk": activation_pk, "step_pk": step.pk}


KWARGS = {"kill_switch_step": _step}

RULES = {
    "secretstore-probe": ("store", POST_ONLY),
    "killswitch-step-done": ("kill_switch_step", POST_ONLY),
    "killswitch-step-waive": ("kill_switch_step", POST_ONLY),
}
