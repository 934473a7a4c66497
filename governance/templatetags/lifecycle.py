"""Template helpers of a credential's lifecycle at a glance (list rows): selectors.lifecycle has the rule."""

from django import template

from governance.selectors.lifecycle import swept_lifecycle_badges

register = template.Library()


@register.filter
def lifecycle_at_a_glance(credential) -> dict:
    """Its rotation and expiry badges and shown status, from what the sweep stored (no query)."""
    return swept_lifecycle_badges(credential=credential)


@register.filter
def shown_status(credential) -> str:
    """What its status shows: "expired" once it has expired, whatever the recorded status says."""
    return swept_lifecycle_badges(credential=credential)["shown_status"]
