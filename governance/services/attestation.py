"""Writes of owner attestation: open a campaign, answer its items, move a leaver's items.

Rules enforced here:
- a campaign is opened once per scope and period (its key is unique; opening again returns it);
- each owned workflow and credential in scope gets one item, assigned to its active owner, else
  to its backup team's active manager, else to nobody (shown as unassigned to security admins);
- only the assignee answers, once, while the campaign is open; every answer but "confirm" needs
  a comment; transfer, scope change and revoke file an approval request in the same transaction;
- "confirm" stamps the object's last_attested_at through an audited write (the
  attestation-current check reads it).
The periodic part (scheduled campaigns, reminders, escalation, consequences) is in
governance.services.attestation_sweep.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from governance.audit import Actor, audit_append, field_changes
from governance.choices import CredentialStatus, WorkflowStatus
from governance.models import Binding, Credential, Person, System, Team, Workflow
from governance.models.attestation import (
    CAMPAIGN_TRANSITIONS,
    ITEM_TRANSITIONS,
    AttestationCampaign,
    AttestationItem,
    AttestedObjectType,
    CampaignScope,
    CampaignStatus,
    ItemAnswer,
    ItemState,
)
from governance.models.inventory import PRIVILEGED_WORKFLOW
from governance.secret_guard import reject_secret_values
from governance.selectors.attestation import item_risk_signals
from governance.services import attestation_mail as mail
from governance.services import attestation_requests as requests
from governance.services.attestation_sweep import sweep
from governance.services.common import ensure_may_write, ensure_security_admin

DEFAULT_SCHEDULE: dict[str, Any] = {
    # Calendar-aligned periods: every_months must divide 12 (quarterly = 3, half-yearly = 6).
    "campaigns": [
        {"scope_type": CampaignScope.PRIVILEGED, "every_months": 3, "due_days": 21},
        {"scope_type": CampaignScope.ESTATE, "every_months": 6, "due_days": 30, "exclude_privileged": True},
    ],
    "grace_days": 14,  # after the due date, before the consequence applies
    "remind_days_before_due": 7,
    "consequence": "finding",  # or "suspension": workflows are suspended through the kill switch
}
CONSEQUENCES = ("finding", "suspension")


def attestation_settings() -> dict[str, Any]:
    """The schedule and deadlines: settings.STEWARD_ATTESTATION_SCHEDULE over the defaults."""
    configured = settings.STEWARD_ATTESTATION_SCHEDULE or {}
    merged = {**DEFAULT_SCHEDULE, **configured}
    if merged["consequence"] not in CONSEQUENCES:
        raise ValueError(f"STEWARD_ATTESTATION_SCHEDULE consequence must be one of {CONSEQUENCES}")
    return merged


def campaign_key(*, scope_type: str, scope_id: int | None, period_start: dt.date, period_end: dt.date,
                 exclude_privileged: bool = False) -> str:
    scope = f"{scope_type}{'-standard' if exclude_privileged else ''}:{scope_id or '*'}"
    return f"{scope}:{period_start.isoformat()}..{period_end.isoformat()}"




def objects_in_scope(campaign: AttestationCampaign):
    """The live workflows and credentials a campaign covers (retired and revoked ones are not attested)."""
    workflows = Workflow.objects.exclude(status=WorkflowStatus.RETIRED)
    credentials = Credential.objects.filter(status__in=[CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED])
    privileged_use = Binding.objects.filter(
        credential=OuterRef("pk"), workflow__in=workflows.filter(PRIVILEGED_WORKFLOW)
    )
    if campaign.scope_type == CampaignScope.TEAM:
        workflows = workflows.filter(team=campaign.scope_team)
        credentials = credentials.filter(team=campaign.scope_team)
    elif campaign.scope_type == CampaignScope.SYSTEM:
        workflows = workflows.filter(systems=campaign.scope_system)
        credentials = credentials.filter(system=campaign.scope_system)
    elif campaign.scope_type == CampaignScope.PRIVILEGED:
        workflows = workflows.filter(PRIVILEGED_WORKFLOW)
        credentials = credentials.filter(Exists(privileged_use))
    if campaign.exclude_privileged:
        workflows = workflows.exclude(PRIVILEGED_WORKFLOW)
        credentials = credentials.exclude(Exists(privileged_use))
    return workflows.distinct(), credentials.distinct()


def _active(person: Person | None, *, besides: Person | None = None) -> bool:
    return person is not None and not person.is_departed and (besides is None or person.pk != besides.pk)


def assignee_for(obj, *, besides: Person | None = None) -> Person | None:
    """The owner answers; for an orphaned object, the backup team's manager; else nobody."""
    if _active(obj.owner, besides=besides):
        return obj.owner
    manager = obj.team.manager if obj.team_id else None
    return manager if _active(manager, besides=besides) else None


def _build_items(campaign: AttestationCampaign) -> list[AttestationItem]:
    workflows, credentials = objects_in_scope(campaign)
    items = []
    for object_type, queryset in ((AttestedObjectType.WORKFLOW, workflows),
                                  (AttestedObjectType.CREDENTIAL, credentials)):
        for obj in queryset.select_related("owner", "team__manager").order_by("pk"):
            items.append(AttestationItem(
                campaign=campaign, object_type=object_type, object_id=obj.pk, object_repr=str(obj)[:300],
                team_id=obj.team_id, assignee=assignee_for(obj), original_owner_id=obj.owner_id,
            ))
    return AttestationItem.objects.bulk_create(items, batch_size=500)


def _scope_object(scope_type: str, scope_id) -> tuple[Team | None, System | None]:
    if scope_type not in CampaignScope.values:
        raise ValidationError({"scope_type": f"Unknown scope {scope_type!r}."})
    if scope_type in (CampaignScope.TEAM, CampaignScope.SYSTEM):
        model = Team if scope_type == CampaignScope.TEAM else System
        target = model.objects.filter(pk=scope_id).first() if scope_id else None
        if target is None:
            raise ValidationError({"scope_id": f"Choose the {model._meta.verbose_name} it covers."})
        return (target, None) if model is Team else (None, target)
    if scope_id:
        raise ValidationError({"scope_id": "This scope covers no single team or system."})
    return None, None


def _default_name(scope_type: str, target, period_start: dt.date, period_end: dt.date, exclude: bool) -> str:
    label = {CampaignScope.ESTATE: "Estate", CampaignScope.PRIVILEGED: "Privileged automation"}.get(
        scope_type, str(target))
    if exclude:
        label = "Standard automation"
    months = (period_end.year - period_start.year) * 12 + period_end.month - period_start.month + 1
    if period_start.day == 1 and months in (3, 6):
        part = "Q" if months == 3 else "H"
        return f"{label} {period_start.year}-{part}{(period_start.month - 1) // months + 1}"
    return f"{label} {period_start.isoformat()} to {period_end.isoformat()}"


def attestation_campaign_open(
    *, actor: Actor, scope_type: str, scope_id: int | None = None, period_start: dt.date, period_end: dt.date,
    due_at: dt.datetime, grace_until: dt.datetime | None = None, exclude_privileged: bool = False,
    consequence: str | None = None, name: str = "", scheduled: bool = False,
) -> AttestationCampaign:
    """Open the campaign for a scope and period with its items, or return the one already open.

    The returned campaign has `just_opened` True only for the call that created it.
    """
    ensure_security_admin(actor)
    config = attestation_settings()
    team, system = _scope_object(scope_type, scope_id)
    if period_end < period_start:
        raise ValidationError({"period_end": "The period ends before it starts."})
    grace_until = grace_until or due_at + dt.timedelta(days=config["grace_days"])
    if grace_until < due_at:
        raise ValidationError({"grace_until": "The grace deadline comes after the due date."})
    consequence = consequence or config["consequence"]
    if consequence not in CONSEQUENCES:
        raise ValidationError({"consequence": f"Choose one of {', '.join(CONSEQUENCES)}."})
    reject_secret_values({"name": name}, ["name"])
    key = campaign_key(scope_type=scope_type, scope_id=scope_id, period_start=period_start,
                       period_end=period_end, exclude_privileged=exclude_privileged)
    existing = AttestationCampaign.objects.filter(key=key).first()
    if existing is not None:
        existing.just_opened = False
        return existing
    with transaction.atomic():
        campaign = AttestationCampaign(
            key=key, scope_type=scope_type, scope_team=team, scope_system=system,
            exclude_privileged=exclude_privileged, period_start=period_start, period_end=period_end,
            due_at=due_at, grace_until=grace_until, consequence=consequence, scheduled=scheduled,
            name=name or _default_name(scope_type, team or system, period_start, period_end,
                                       exclude_privileged),
            opened_by=actor.user if actor.kind != "system" else None,
        )
        try:
            with transaction.atomic():
                campaign.save()
        except IntegrityError:  # a concurrent opener won the race: theirs is the campaign
            campaign = AttestationCampaign.objects.get(key=key)
            campaign.just_opened = False
            return campaign
        items = _build_items(campaign)
        per_assignee: dict[int, list[AttestationItem]] = defaultdict(list)
        for item in items:
            if item.assignee_id:
                per_assignee[item.assignee_id].append(item)
        audit_append(actor=actor, action="attestation.campaign_open", target=campaign,
                     summary=f"Opened attestation campaign {campaign} with {len(items)} item(s)",
                     changes=field_changes({}, {
                         "key": key, "scope": campaign.scope_label, "due_at": due_at,
                         "grace_until": grace_until, "items": len(items), "consequence": consequence,
                         "unassigned": sum(1 for i in items if not i.assignee_id),
                     }))
        people = Person.objects.in_bulk(per_assignee)
        mail.send_after_commit([mail.opened_notice(people[pk], campaign, len(batch))
                                for pk, batch in per_assignee.items()])
    campaign.just_opened = True
    return campaign


def attestation_campaign_close(*, actor: Actor, campaign_id: int, now: dt.datetime | None = None
                               ) -> AttestationCampaign:
    ensure_security_admin(actor)
    with transaction.atomic():
        campaign = AttestationCampaign.objects.select_for_update().get(pk=campaign_id)
        if CampaignStatus.CLOSED not in CAMPAIGN_TRANSITIONS[campaign.status]:
            raise ValidationError({"status": "This campaign is closed already."})
        open_items = campaign.items.filter(state=ItemState.OPEN).count()
        campaign.status, campaign.closed_at = CampaignStatus.CLOSED, now or timezone.now()
        campaign.save(update_fields=["status", "closed_at", "updated_at"])
        audit_append(actor=actor, action="attestation.campaign_close", target=campaign,
                     summary=f"Closed attestation campaign {campaign} ({open_items} item(s) unanswered)",
                     changes={"status": {"before": CampaignStatus.OPEN, "after": CampaignStatus.CLOSED}})
    return campaign


def attestation_object_mark_attested(*, actor: Actor, obj, at: dt.datetime, item: AttestationItem) -> None:
    """The one write of Workflow/Credential.last_attested_at, audited on the object."""
    with transaction.atomic():
        model = type(obj)
        obj = model.objects.select_for_update().get(pk=obj.pk)
        before = obj.last_attested_at
        obj.last_attested_at = at
        obj.save(update_fields=["last_attested_at", "updated_at"])
        audit_append(actor=actor, action=f"{model._meta.model_name}.attest", target=obj,
                     summary=f"{actor.label} confirmed {obj} in {item.campaign}",
                     changes=field_changes({"last_attested_at": before, "attestation_item": None},
                                           {"last_attested_at": at, "attestation_item": item.pk}))


def _answering_person(actor: Actor) -> Person:
    ensure_may_write(actor)
    if actor.user is None:
        raise PermissionDenied("Attestation is a person's statement; a system task cannot answer.")
    return actor.user


def _lock_open_item(person: Person, item_id: int) -> AttestationItem:
    item = (AttestationItem.objects.select_for_update(of=("self",)).select_related("campaign")
            .filter(pk=item_id).first())
    if item is None or item.assignee_id != person.pk:
        raise PermissionDenied("Only the person this item is assigned to answers it.")
    if ItemState.ANSWERED not in ITEM_TRANSITIONS[item.state]:
        raise ValidationError({"answer": "This item has been answered already."})
    if item.campaign.status != CampaignStatus.OPEN:
        raise ValidationError({"answer": "This campaign is closed."})
    return item


def _complete(actor: Actor, item: AttestationItem, *, answer: str, comment: str, details: dict, at,
              request=None, ticket: dict | None = None) -> None:
    before = {"state": item.state, "answer": item.answer}
    item.state, item.answer, item.comment, item.details = ItemState.ANSWERED, answer, comment, details
    item.answered_at, item.answered_by = at, actor.user
    item.resulting_request_id = request.pk if request is not None else None
    ticket = ticket or {}
    item.ticket_system = str(ticket.get("system", ""))[:50]
    item.ticket_key = str(ticket.get("key", ""))[:100]
    item.ticket_url = str(ticket.get("url", ""))[:500]
    item.save()
    filed = f", filed request #{request.pk}" if request is not None else ""
    audit_append(actor=actor, action="attestation.answer", target=item,
                 summary=f"{actor.label} answered {answer} for {item.object_repr}{filed}",
                 changes=field_changes(before, {
                     "state": item.state, "answer": answer, "comment": comment, "details": details,
                     "resulting_request_id": item.resulting_request_id,
                     "object": f"{item.object_type}:{item.object_id}",
                 }))


def attestation_item_answer(
    *, actor: Actor, item_id: int, answer: str, comment: str = "", transfer_to: Person | None = None,
    transfer_team: Team | None = None, scope_credential: Credential | None = None,
    requested_scopes: Iterable[str] | None = None, requested_privilege_level: str | None = None,
    ticket: dict | None = None,
) -> AttestationItem:
    """Record the assignee's answer; file the approval request it implies, in the same transaction."""
    person = _answering_person(actor)
    if answer not in ItemAnswer.values or answer == ItemAnswer.NONE:
        raise ValidationError({"answer": "Choose an answer."})
    comment = (comment or "").strip()
    if answer != ItemAnswer.CONFIRM and not comment:
        raise ValidationError({"comment": "Say why: a comment is required for anything but confirm."})
    ticket = {k: str(v).strip() for k, v in (ticket or {}).items() if k in ("system", "key", "url") and v}
    if ticket.get("url") and not ticket["url"].startswith(("https://", "http://")):
        raise ValidationError({"ticket_url": "Give the ticket's web address (https://...)."})
    reject_secret_values({"comment": comment, **{f"ticket_{k}": v for k, v in ticket.items()}})
    now = timezone.now()
    with transaction.atomic():
        item = _lock_open_item(person, item_id)
        obj = item.get_object()
        if obj is None:
            raise ValidationError({"answer": f"{item.object_repr} no longer exists."})
        if answer == ItemAnswer.CONFIRM and not comment:
            signals = item_risk_signals([item])[item.pk]
            if signals.risky:
                raise ValidationError({"comment": f"{item.object_repr} has risk signals ({', '.join(signals.labels)}): "
                                                  "say why you confirm it unchanged."})
        plan = requests.plan_request(
            answer=answer, obj=obj, person=person, transfer_to=transfer_to, transfer_team=transfer_team,
            scope_credential=scope_credential, requested_scopes=requested_scopes,
            requested_privilege_level=requested_privilege_level)
        request = None
        if answer == ItemAnswer.CONFIRM:
            attestation_object_mark_attested(actor=actor, obj=obj, at=now, item=item)
        elif plan.action:
            request = requests.file_request(actor=actor, plan=plan, comment=comment, campaign=item.campaign,
                                            ticket=ticket)
        _complete(actor, item, answer=answer, comment=comment, details=plan.details, at=now, request=request,
                  ticket=ticket)
        if answer == ItemAnswer.FLAG_STORAGE:
            mail.send_after_commit([mail.storage_flag_notice(item, comment, person)])
    return item


@dataclass(frozen=True)
class ConfirmSeen:
    confirmed: int
    left_out: int  # open items of the actor's that were posted but carry risk signals


def attestation_items_confirm_seen(*, actor: Actor, item_ids: Iterable) -> ConfirmSeen:
    """"Confirm all unchanged": confirms only the posted items that are open, assigned to the actor and
    without risk signals (open findings, storage outside a managed store, privilege, long unused). An item
    with a risk signal needs its own confirm with a reason; how many were left out is returned."""
    person = _answering_person(actor)
    ids = {int(i) for i in item_ids if str(i).strip().isdigit()}
    if not ids:
        return ConfirmSeen(confirmed=0, left_out=0)
    now = timezone.now()
    confirmed = left_out = 0
    with transaction.atomic():
        items = list(AttestationItem.objects.select_for_update(of=("self",)).select_related("campaign")
                     .filter(pk__in=ids, assignee=person, state=ItemState.OPEN,
                             campaign__status=CampaignStatus.OPEN)
                     .order_by("pk"))
        signals = item_risk_signals(items)
        for item in items:
            if signals[item.pk].risky:
                left_out += 1
                continue
            obj = item.get_object()
            if obj is None:
                continue
            attestation_object_mark_attested(actor=actor, obj=obj, at=now, item=item)
            _complete(actor, item, answer=ItemAnswer.CONFIRM, comment="", details={"bulk": True}, at=now)
            confirmed += 1
    return ConfirmSeen(confirmed=confirmed, left_out=left_out)


def attestation_items_reassign_for_departure(*, actor: Actor, person: Person) -> dict[str, int]:
    """A leaver's open items go to whoever now owns the object, else the backup team's manager.

    Call it from person_mark_departed, after the leaver's objects have been handed on.
    """
    ensure_security_admin(actor)
    counts = {"reassigned": 0, "unassigned": 0}
    moved: dict[int, list[AttestationItem]] = defaultdict(list)
    with transaction.atomic():
        items = (AttestationItem.objects.select_for_update(of=("self",)).select_related("campaign")
                 .filter(assignee=person, state=ItemState.OPEN, campaign__status=CampaignStatus.OPEN)
                 .order_by("pk"))
        for item in items:
            obj = item.get_object()
            successor = None
            if obj is not None:
                obj = type(obj).objects.select_related("owner", "team__manager").get(pk=obj.pk)
                successor = assignee_for(obj, besides=person)
            item.assignee = successor
            item.save(update_fields=["assignee", "updated_at"])
            outcome = "reassigned" if successor else "unassigned"
            counts[outcome] += 1
            if successor:
                moved[successor.pk].append(item)
            audit_append(actor=actor, action=f"attestation.item_{outcome}", target=item,
                         summary=f"{item.object_repr}: attestation passed from departed {person} to "
                                 f"{successor or 'nobody (unassigned)'}",
                         changes={"assignee": {"before": person.pk,
                                               "after": successor.pk if successor else None}})
        people = Person.objects.in_bulk(moved)
        mail.send_after_commit([mail.reassigned_notice(people[pk], batch, person)
                                for pk, batch in moved.items()])
    return counts


def attestation_campaigns_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Open scheduled campaigns, remind, escalate, apply consequences, close (idempotent)."""

    return sweep(now=now)
