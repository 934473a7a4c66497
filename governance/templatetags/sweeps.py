"""{% sweep_now_panel %}: the Sweep now button for security admins, or the running sweep to follow."""

from django import template

from governance import roles
from governance.models.checks import SweepRun, SweepStatus

register = template.Library()


@register.inclusion_tag("governance/sweeps/sweep_now_panel.html", takes_context=True)
def sweep_now_panel(context):
    user = context["request"].user
    if not roles.is_security_admin(user):
        return {"show": False}
    running = SweepRun.objects.filter(status=SweepStatus.RUNNING).order_by("started_at", "pk").first()
    done = len(running.counts) + len(running.errors) if running is not None else 0
    return {"show": True, "running": running, "done": done, "csrf_token": context.get("csrf_token")}
