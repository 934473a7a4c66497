"""The periodic half of owner attestation, run by Celery beat through one task.

Each run: opens the scheduled campaigns of the current period (unique key: once), reminds
assignees before the due date, escalates overdue items to the team manager after it, applies the
configured consequence at the grace deadline, and closes finished campaigns. Every stamp is set
by compare-and-set (`filter(pk=..., stamp__isnull=True).update(...)`, acting only when one row
changed), so an overlapping or redelivered sweep reminds, escalates and punishes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor, audit_append
from governance.models.attestation import (
    AttestationCampaign,
    AttestationItem,
    AttestedObjectType,
    CampaignStatus,
    Consequence,
    ItemState,
)
from governance.services import attestation as svc
from governance.services import attestation_consequence as consequences
from governance.services import attestation_mail as mail
from governance.services.webhooks import webhook_event_emit

logger = logging.getLogger(__name__)
TASK_LABEL = "attestation-sweep"
CHUNK = 200


def period_containing(day: dt.date, every_months: int) -> tuple[dt.date, dt.date]:
    """The calendar-aligned period (quarter, half-year, ...) that contains day."""
    if every_months not in (1, 2, 3, 4, 6, 12):
        raise ValueError("every_months must divide the year (1, 2, 3, 4, 6 or 12)")
    first_month = (day.month - 1) // every_months * every_months + 1
    start = dt.date(day.year, first_month, 1)
    next_month = first_month + every_months
    following = dt.date(day.year + (next_month - 1) // 12, (next_month - 1) % 12 + 1, 1)
    return start, following - dt.timedelta(days=1)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _open_scheduled(now: dt.datetime, actor: Actor, config: dict) -> int:
    opened = 0
    for entry in config["campaigns"]:
        start, end = period_containing(now.date(), entry["every_months"])
        due_days = dt.timedelta(days=entry.get("due_days", 30))
        due_at = dt.datetime.combine(start, dt.time(0), tzinfo=dt.UTC) + due_days
        if due_at <= now:  # opened late in the period (first run, outage): give the owners the full time
            due_at = now + due_days
        grace_until = due_at + dt.timedelta(days=entry.get("grace_days", config["grace_days"]))
        campaign = svc.attestation_campaign_open(
            actor=actor, scope_type=entry["scope_type"], scope_id=entry.get("scope_id"), period_start=start,
            period_end=end, due_at=due_at, grace_until=grace_until,
            exclude_privileged=entry.get("exclude_privileged", False), consequence=entry.get("consequence"),
            scheduled=True,
        )
        opened += int(campaign.just_opened)
    return opened


def _claim(item_id: int, stamp: str, now: dt.datetime, **extra) -> bool:
    """Compare-and-set one stamp: True only for the one caller that set it."""
    return bool(AttestationItem.objects.filter(pk=item_id, state=ItemState.OPEN, **{f"{stamp}__isnull": True})
                .update(**{stamp: now}, **extra))


def _open_items():
    return AttestationItem.objects.filter(state=ItemState.OPEN, campaign__status=CampaignStatus.OPEN)


def _remind(now: dt.datetime, actor: Actor, config: dict) -> int:
    window = dt.timedelta(days=config["remind_days_before_due"])
    ids = list(_open_items().filter(reminded_at__isnull=True, assignee__isnull=False,
                                       campaign__due_at__gt=now, campaign__due_at__lte=now + window)
               .order_by("pk").values_list("pk", flat=True))
    reminded = 0
    for chunk in _chunks(ids):
        with transaction.atomic():
            claimed = [pk for pk in chunk if _claim(pk, "reminded_at", now)]
            groups = defaultdict(list)
            for item in AttestationItem.objects.filter(pk__in=claimed).select_related("campaign", "assignee"):
                groups[(item.campaign, item.assignee)].append(item)
            for (campaign, person), items in groups.items():
                audit_append(actor=actor, action="attestation.remind", target=campaign,
                             summary=f"Reminded {person} of {len(items)} open item(s) due "
                                     f"{campaign.due_at:%Y-%m-%d}",
                             changes={"assignee": person.pk, "items": [i.pk for i in items]})
            mail.send_after_commit([mail.reminder_notice(person, campaign, items)
                                    for (campaign, person), items in groups.items()])
            reminded += len(claimed)
    return reminded


def _escalation_target(item: AttestationItem):
    manager = item.team.manager if item.team_id else None
    if manager is not None and not manager.is_departed and manager.pk != item.assignee_id:
        return manager
    return None  # no one above the assignee: security admins are told


def _escalate(now: dt.datetime, actor: Actor) -> int:
    ids = list(_open_items().filter(escalated_at__isnull=True, campaign__due_at__lte=now)
               .order_by("pk").values_list("pk", flat=True))
    escalated = 0
    for chunk in _chunks(ids):
        with transaction.atomic():
            groups = defaultdict(list)
            items = AttestationItem.objects.filter(pk__in=chunk).select_related("campaign", "assignee",
                                                                                "team__manager")
            for item in items:
                target = _escalation_target(item)
                if _claim(item.pk, "escalated_at", now, escalated_to=target):
                    groups[(item.campaign, target)].append(item)
            for (campaign, target), batch in groups.items():
                audit_append(actor=actor, action="attestation.escalate", target=campaign,
                             summary=f"Escalated {len(batch)} overdue item(s) to "
                                     f"{target or 'the security admins'}",
                             changes={"escalated_to": target.pk if target else None,
                                      "items": [i.pk for i in batch]})
                webhook_event_emit(event_type="attestation.overdue", payload={
                    "campaign_id": campaign.pk, "campaign": str(campaign),
                    "escalated_to": target.get_username() if target else None,
                    "items": [{"id": i.pk, "object_type": i.object_type, "object_id": i.object_id,
                               "object": i.object_repr, "ticket_key": i.ticket_key or None} for i in batch]})
            mail.send_after_commit([
                mail.escalation_notice(
                    [target] if target else mail.security_admins(), campaign, batch)
                for (campaign, target), batch in groups.items()
            ])
            escalated += sum(len(batch) for batch in groups.values())
    return escalated


def _apply_consequences(now: dt.datetime, actor: Actor) -> int:
    ids = list(_open_items().filter(consequence_applied_at__isnull=True, campaign__grace_until__lte=now)
               .order_by("pk").values_list("pk", flat=True))
    applied = 0
    for item_id in ids:
        with transaction.atomic():  # claim first, commit, so a second sweep never applies it again
            if not _claim(item_id, "consequence_applied_at", now, consequence=Consequence.RECORDED):
                continue
        item = AttestationItem.objects.select_related("campaign").get(pk=item_id)
        wanted = item.campaign.consequence
        if wanted == "suspension" and item.object_type == AttestedObjectType.WORKFLOW:
            kind, ref, note = consequences.suspend_workflow(actor=actor, item=item)  # outside a transaction
        else:
            kind, ref, note = consequences.open_finding(actor=actor, item=item)
        with transaction.atomic():
            AttestationItem.objects.filter(pk=item_id).update(consequence=kind, consequence_ref=ref[:100])
            audit_append(actor=actor, action="attestation.consequence", target=item,
                         summary=f"{item.object_repr} unattested at the grace deadline: {note}",
                         changes={"consequence": {"before": "", "after": kind}, "reference": ref,
                                  "configured": wanted})
            applied += 1
    return applied


def _close_finished(now: dt.datetime, actor: Actor) -> int:
    """A campaign ends when every item is answered, or at its grace deadline once consequences ran."""
    closed = 0
    for campaign in AttestationCampaign.objects.filter(status=CampaignStatus.OPEN).order_by("pk"):
        pending = campaign.items.filter(state=ItemState.OPEN)
        finished = not pending.exists() or (
            campaign.grace_until <= now and not pending.filter(consequence_applied_at__isnull=True).exists()
        )
        if not finished:
            continue
        try:
            svc.attestation_campaign_close(actor=actor, campaign_id=campaign.pk, now=now)
        except ValidationError:  # closed by an overlapping sweep
            continue
        closed += 1
    return closed


STEPS = ("opened", "reminded", "escalated", "consequences", "closed")


def sweep(*, now: dt.datetime | None = None, steps: tuple[str, ...] = STEPS) -> dict[str, int]:
    """Run the sweep's steps in order (all of them, except when the demo seed replays history)."""
    now = now or timezone.now()
    config = svc.attestation_settings()
    actor = Actor.system(task_id=TASK_LABEL, label=TASK_LABEL)
    runners = {
        "opened": lambda: _open_scheduled(now, actor, config),
        "reminded": lambda: _remind(now, actor, config),
        "escalated": lambda: _escalate(now, actor),
        "consequences": lambda: _apply_consequences(now, actor),
        "closed": lambda: _close_finished(now, actor),
    }
    return {step: runners[step]() if step in steps else 0 for step in STEPS}
