"""The demo estate's attestation history: one completed campaign and one running, with overdue items.

Run after the demo inventory exists (governance.demo builds it); seed_demo calls
seed_demo_attestation(now=anchor). Campaigns are opened and answered through the services, as
the people who would answer; the sweep's steps are replayed at the moments they would have run
(reminders six days before the due date, escalation after it, the consequence at the grace
deadline), so every stamp and audit event is a real one. Afterwards only the answer times (and
the last_attested_at they set) are moved back into the weeks they belong to. No mail is sent.

- Completed: privileged automation, last quarter; all but a few items answered (confirm, or
  flag_storage for credentials outside a managed store); the rest escalated and lapsed; closed.
- Running: the whole estate, this half-year; due five days ago, grace deadline in nine days;
  about 70% answered (a few answers file approval requests when approval policies exist), the
  others overdue and escalated. The owner persona (demo-owner) keeps open items in the inbox.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from governance.audit import Actor
from governance.models import Credential, Person, Workflow
from governance.models.attestation import (
    OBJECT_MODELS,
    AttestationCampaign,
    AttestationItem,
    AttestedObjectType,
    ItemAnswer,
    ItemState,
)
from governance.services import attestation as svc
from governance.services import attestation_mail as mail
from governance.services.attestation_sweep import period_containing, sweep

TASK_ID = "seed_demo"
COMPLETED_DUE_DAYS, GRACE_DAYS = 21, 14
RUNNING_OVERDUE_DAYS, RUNNING_GRACE_LEFT_DAYS = 5, 9
KEEP_OPEN_FOR = ("demo-owner",)
STORAGE_COMMENT = "The secret lives outside a managed store: move it to OpenBao this quarter."
RISK_REASON = "Reviewed with the team: still needed as it is; its findings are tracked."


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def _managed(obj) -> bool:
    return not isinstance(obj, Credential) or (obj.store is not None and obj.store.is_managed)


def _answer(item: AttestationItem, answer: str, comment: str = "", **kwargs) -> bool:
    """Answer as the assignee; False (and nothing written) when the answer is refused."""
    try:
        with transaction.atomic():
            svc.attestation_item_answer(actor=Actor.for_user(item.assignee), item_id=item.pk, answer=answer,
                                        comment=comment, **kwargs)
    except (ValidationError, PermissionDenied):
        return False
    return True


def _answer_plainly(item: AttestationItem) -> None:
    obj = item.get_object()
    if obj is not None and not _managed(obj):
        _answer(item, ItemAnswer.FLAG_STORAGE, STORAGE_COMMENT)
    else:  # an item with risk signals is confirmed only with a reason (the attestation service's rule)
        _answer(item, ItemAnswer.CONFIRM) or _answer(item, ItemAnswer.CONFIRM, RISK_REASON)


def _answer_with_request(item: AttestationItem, kind: int) -> bool:
    """A few answers that file approval requests (when the approvals demo has policies for them)."""
    obj = item.get_object()
    if kind == 0 and isinstance(obj, Workflow) and obj.status == "active":
        return _answer(item, ItemAnswer.REVOKE, "Replaced by the new pipeline; nothing calls it any more.")
    if kind == 1 and isinstance(obj, Credential) and ("*" in obj.scopes or obj.privilege_level == "admin"):
        narrower = [s for s in obj.scopes if "*" not in s] or ["read"]
        return _answer(item, ItemAnswer.CHANGE_SCOPES, "Wider than the job needs: read access is enough.",
                       requested_scopes=narrower, requested_privilege_level="read")
    if kind == 2 and item.team_id is not None:
        colleague = (Person.objects.active().filter(groups__team=item.team_id, is_active=True)
                     .exclude(pk=item.assignee_id).order_by("username").first())
        if colleague is not None:
            return _answer(item, ItemAnswer.TRANSFER, f"{colleague} runs this day to day now.",
                           transfer_to=colleague)
    return False


def _backdate(campaign: AttestationCampaign, *, start: dt.datetime, until: dt.datetime) -> None:
    """Spread the answers over [start, until]; a confirmation moves the object's last_attested_at too."""
    answered = list(campaign.items.filter(state=ItemState.ANSWERED).order_by("pk"))
    step = (until - start) / (len(answered) + 1)
    for n, item in enumerate(answered, start=1):
        when = start + step * n
        AttestationItem.objects.filter(pk=item.pk).update(answered_at=when)
        if item.answer == ItemAnswer.CONFIRM:
            OBJECT_MODELS[item.object_type].objects.filter(pk=item.object_id).update(last_attested_at=when)


def _completed_campaign(now: dt.datetime, actor: Actor) -> AttestationCampaign:
    this_quarter, _ = period_containing(now.date(), 3)
    start, end = period_containing(this_quarter - dt.timedelta(days=1), 3)
    due_at = _midnight(start) + dt.timedelta(days=COMPLETED_DUE_DAYS)
    grace_until = due_at + dt.timedelta(days=GRACE_DAYS)
    campaign = svc.attestation_campaign_open(actor=actor, scope_type="privileged", period_start=start,
                                             period_end=end, due_at=due_at, grace_until=grace_until,
                                             scheduled=True)
    if not campaign.just_opened:
        return campaign
    sweep(now=due_at - dt.timedelta(days=6), steps=("reminded",))
    assigned = list(campaign.items.filter(assignee__isnull=False).select_related("assignee").order_by("pk"))
    for n, item in enumerate(assigned):
        if n % 9 != 4:  # every ninth item is never answered
            _answer_plainly(item)
    sweep(now=due_at + dt.timedelta(days=2), steps=("escalated",))
    sweep(now=grace_until + dt.timedelta(hours=1), steps=("consequences", "closed"))
    _backdate(campaign, start=due_at - dt.timedelta(days=6, hours=-1), until=due_at - dt.timedelta(hours=1))
    return campaign


def _running_campaign(now: dt.datetime, actor: Actor) -> AttestationCampaign:
    start, end = period_containing(now.date(), 6)
    due_at = now - dt.timedelta(days=RUNNING_OVERDUE_DAYS)
    campaign = svc.attestation_campaign_open(
        actor=actor, scope_type="estate", period_start=start, period_end=end, due_at=due_at,
        grace_until=now + dt.timedelta(days=RUNNING_GRACE_LEFT_DAYS), scheduled=True)
    if not campaign.just_opened:
        return campaign
    sweep(now=due_at - dt.timedelta(days=6), steps=("reminded",))
    assigned = list(campaign.items.filter(assignee__isnull=False).select_related("assignee")
                    .order_by("object_type", "pk"))
    requests_filed = 0
    for n, item in enumerate(assigned):
        keep_open = n % 4 == 3 or (item.assignee.username in KEEP_OPEN_FOR and n % 3 != 0)
        if keep_open:
            continue
        if n % 7 == 1 and requests_filed < 6 and _answer_with_request(item, requests_filed % 3):
            requests_filed += 1
            continue
        _answer_plainly(item)
    sweep(now=due_at + dt.timedelta(days=1), steps=("escalated",))
    _backdate(campaign, start=due_at - dt.timedelta(days=6, hours=-1), until=due_at + dt.timedelta(hours=20))
    return campaign


def seed_demo_attestation(*, now: dt.datetime) -> dict[str, int]:
    """Seed both campaigns (once: a second run finds them and changes nothing); returns the counts."""
    actor = Actor.system(task_id=TASK_ID, label=TASK_ID)
    with transaction.atomic(), mail.suppressed():
        completed = _completed_campaign(now, actor)
        running = _running_campaign(now, actor)
    items = AttestationItem.objects.filter(campaign__in=[completed, running])
    return {
        "attestation_campaigns": 2,
        "attestation_items": items.count(),
        "attestation_answered": items.filter(state=ItemState.ANSWERED).count(),
        "attestation_overdue": running.items.filter(state=ItemState.OPEN).count(),
        "attestation_escalated": items.filter(escalated_at__isnull=False).count(),
        "attestation_lapsed": completed.items.filter(consequence_applied_at__isnull=False).count(),
        "attestation_requests": items.filter(resulting_request_id__isnull=False).count(),
        "attestation_workflows_attested": Workflow.objects.filter(last_attested_at__isnull=False).count(),
        "attestation_credential_items": items.filter(object_type=AttestedObjectType.CREDENTIAL).count(),
    }
