"""Helpers for the attestation tests: campaigns opened through the service, default approval policies."""

import datetime as dt

from django.utils import timezone

from governance.audit import Actor


def open_campaign(personas, *, scope_type="estate", scope_id=None, due_in_days=14, grace_days=None,
                  period_start=None, **kwargs):
    from governance.services.attestation import attestation_campaign_open

    now = timezone.now()
    start = period_start or now.date() - dt.timedelta(days=30)
    due_at = now + dt.timedelta(days=due_in_days)
    grace_until = due_at + dt.timedelta(days=grace_days) if grace_days is not None else None
    return attestation_campaign_open(
        actor=Actor.for_user(personas.secadmin), scope_type=scope_type, scope_id=scope_id, period_start=start,
        period_end=start + dt.timedelta(days=90), due_at=due_at, grace_until=grace_until, **kwargs,
    )


def item_for(campaign, obj):
    return campaign.items.get(object_type=obj._meta.label_lower, object_id=obj.pk)


REQUEST_ACTIONS = ("ownership_transfer", "privileged_scope_change", "retirement")


def default_approval_policy(personas, actions=REQUEST_ACTIONS):
    """A default policy so that answers can file requests (approvers: the other team)."""
    from governance.models.approvals import ApprovalPolicy

    policy = ApprovalPolicy.objects.create(name="Attestation test policy", default_for_actions=list(actions))
    policy.approver_groups.add(personas.other_team.group)
    return policy
