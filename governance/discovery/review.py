"""The review queue's services: adopt, link or dismiss a discovered item (each audited).

Adopting opens the normal registration (a workflow or a credential) with the discovered facts filled
in; the governance items the registration requires (owner, credential source, approval path, shutdown
procedure) are still the person's to give, and the registration's own services and rules apply. The item
is linked to what was registered in the same transaction. Linking ties an item to an object that already
exists. Dismissing needs a reason and an expiry: when the expiry passes, or when the item's facts change
(a new version, new triggers, other secrets), it is back in the queue. Who may review: whoever may change
the item (the owners of its source's system, security admins); auditors read and change nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance import permissions
from governance.audit import Actor, audit_append
from governance.choices import CredentialKind, PrivilegeLevel, WorkflowKind
from governance.models import Credential, Workflow
from governance.models.discovery import DiscoveredItem, DiscoveredKind, Reconciliation, ReviewState
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_may_write
from governance.services.lifecycle import request_sweep
from governance.transitions import compare_and_set

MAX_DISMISSAL = dt.timedelta(days=366)
REVIEW_CHECKS = ["discovery-undeclared-identity", "discovery-undeclared-workflow", "discovery-hard-coded-secret",
                 "discovery-privileged-undeclared-identity", "discovery-declared-missing"]
REVIEWABLE = (ReviewState.PENDING, ReviewState.DISMISSED, ReviewState.LINKED)
CREDENTIAL_KIND_OF = {
    DiscoveredKind.KV_SECRET: CredentialKind.API_KEY, DiscoveredKind.CERTIFICATE: CredentialKind.CERTIFICATE,
    DiscoveredKind.AUTH_ROLE: CredentialKind.SERVICE_ACCOUNT, DiscoveredKind.TOKEN: CredentialKind.ACCESS_TOKEN,
    DiscoveredKind.DATABASE_ROLE: CredentialKind.SERVICE_ACCOUNT, DiscoveredKind.LOGIN_ROLE: CredentialKind.PASSWORD,
    DiscoveredKind.ACL_USER: CredentialKind.PASSWORD, DiscoveredKind.SERVICE_ACCOUNT: CredentialKind.SERVICE_ACCOUNT,
    DiscoveredKind.IAC_IDENTITY: CredentialKind.SERVICE_ACCOUNT,
    DiscoveredKind.HARD_CODED_SECRET: CredentialKind.API_KEY,
}


def _ensure_may_review(actor: Actor, item: DiscoveredItem) -> None:
    ensure_may_write(actor)
    if actor.kind != "system" and not permissions.can(actor.user, permissions.CHANGE, item):
        raise PermissionDenied("You may not review this discovered item.")


def _refresh(item: DiscoveredItem) -> DiscoveredItem:
    return DiscoveredItem.objects.select_related("source").get(pk=item.pk)


def discovered_item_dismiss(*, actor: Actor, item: DiscoveredItem, reason: str, until: dt.datetime,
                            now: dt.datetime | None = None) -> DiscoveredItem:
    """Dismiss with a reason until a date (at most a year). It comes back when the date passes or it changes."""
    _ensure_may_review(actor, item)
    now = now or timezone.now()
    reason = (reason or "").strip()
    errors = {}
    if not reason:
        errors["reason"] = "Say why this item needs no governance."
    elif len(reason) > 500:
        errors["reason"] = "Keep the reason under 500 characters."
    if until is None or until <= now:
        errors["until"] = "Give an expiry in the future."
    elif until > now + MAX_DISMISSAL:
        errors["until"] = "A dismissal lasts at most a year; dismiss it again then."
    if errors:
        raise ValidationError(errors)
    reject_secret_values({"reason": reason}, ["reason"])
    with transaction.atomic():
        item = _refresh(item)
        before = item.review
        if not compare_and_set(DiscoveredItem, item.pk, field="review", sources=[ReviewState.PENDING,
                                                                                ReviewState.DISMISSED],
                               target=ReviewState.DISMISSED, review_reason=reason, dismissed_until=until,
                               dismissed_digest=item.facts_digest, reviewed_by=actor.user, reviewed_at=now):
            raise ValidationError({"review": f"This item is {item.get_review_display().lower()}: only an item "
                                             "to review can be dismissed."})
        audit_append(actor=actor, action="discovery.item_dismiss", target=item,
                     summary=f"Dismissed until {until:%Y-%m-%d}: {reason[:200]}",
                     changes={"review": {"before": before, "after": ReviewState.DISMISSED},
                              "dismissed_until": {"before": None, "after": until.isoformat()},
                              "review_reason": {"before": "", "after": reason}})
        request_sweep(REVIEW_CHECKS, trigger="discovery review")
    return _refresh(item)


def _link_values(item: DiscoveredItem, target) -> dict[str, Any]:
    if isinstance(target, Workflow):
        if item.kind != DiscoveredKind.WORKFLOW:
            raise ValidationError({"workflow": "Only a discovered workflow links to a workflow."})
        return {"linked_workflow": target, "linked_credential": None}
    if isinstance(target, Credential):
        if item.kind == DiscoveredKind.WORKFLOW:
            raise ValidationError({"credential": "A discovered workflow links to a workflow, not a credential."})
        return {"linked_credential": target, "linked_workflow": None}
    raise ValidationError({"target": "Link to a credential or a workflow."})


def _link(*, actor: Actor, item: DiscoveredItem, target, review: str, action: str) -> DiscoveredItem:
    if actor.kind != "system" and not permissions.can(actor.user, permissions.VIEW, target):
        raise PermissionDenied("You may not link to an object you cannot see.")
    values = _link_values(item, target)
    reconciliation = (Reconciliation.HARD_CODED_SECRET if item.kind == DiscoveredKind.HARD_CODED_SECRET
                      else Reconciliation.MATCHED)
    now = timezone.now()
    before = {"review": item.review, "reconciliation": item.reconciliation,
              "linked_credential": item.linked_credential_id, "linked_workflow": item.linked_workflow_id}
    if not compare_and_set(DiscoveredItem, item.pk, field="review", sources=REVIEWABLE, target=review,
                           reconciliation=reconciliation, reviewed_by=actor.user, reviewed_at=now,
                           dismissed_until=None, dismissed_digest="", **values):
        raise ValidationError({"review": "This item was already adopted."})
    after = {"review": review, "reconciliation": reconciliation,
             "linked_credential": getattr(values["linked_credential"], "pk", None),
             "linked_workflow": getattr(values["linked_workflow"], "pk", None)}
    audit_append(actor=actor, action=action, target=item, summary=f"{item.name[:150]} {review} as {target}"[:300],
                 changes={k: {"before": before[k], "after": after[k]} for k in before if before[k] != after[k]})
    request_sweep(REVIEW_CHECKS, trigger="discovery review")
    return _refresh(item)


def discovered_item_link(*, actor: Actor, item: DiscoveredItem, target: Credential | Workflow) -> DiscoveredItem:
    """It is this declared credential or workflow: matched from now on (a secret stays a leaked secret)."""
    _ensure_may_review(actor, item)
    with transaction.atomic():
        return _link(actor=actor, item=_refresh(item), target=target, review=ReviewState.LINKED,
                     action="discovery.item_link")


def discovered_item_adopt(*, actor: Actor, item: DiscoveredItem, data: Mapping[str, Any],
                          register: Callable[..., Credential | Workflow]) -> tuple:
    """Register the item through the normal registration service (register) and link it, in one transaction.

    register is the registration's own create service (workflow_create / credential_create), so every
    rule of a registration applies: the owner, the credential source, the approval path and the
    shutdown procedure are what the person gave, not what discovery guessed.
    """
    _ensure_may_review(actor, item)
    with transaction.atomic():
        item = _refresh(item)
        if item.review == ReviewState.ADOPTED:
            raise ValidationError({"review": "This item was already adopted."})
        obj = register(actor=actor, data=data)
        return obj, _link(actor=actor, item=item, target=obj, review=ReviewState.ADOPTED,
                          action="discovery.item_adopt")


def adoption_target(item: DiscoveredItem) -> str:
    """What adopting registers: "workflow" or "credential"."""
    return "workflow" if item.kind == DiscoveredKind.WORKFLOW else "credential"


def adoption_initial(item: DiscoveredItem) -> dict[str, Any]:
    """The registration form's initial values from what was discovered (never a secret value)."""
    facts = item.facts or {}
    source = item.source
    if item.kind == DiscoveredKind.WORKFLOW:
        kind = facts.get("workflow_kind") if facts.get("workflow_kind") in WorkflowKind.values else \
            WorkflowKind.CICD_PIPELINE
        lines = [f"Discovered by {source.name} in {facts.get('repository', '')}/{facts.get('path', '')}.",
                 f"Triggers: {', '.join(facts.get('triggers') or []) or 'none'}.",
                 f"Secrets referenced: {', '.join(facts.get('secrets') or []) or 'none'}."]
        initial = {"name": item.name, "kind": kind, "platform": facts.get("platform", "")[:100],
                   "description": " ".join(lines), "can_change": item.privileged}
    else:
        identifier = {DiscoveredKind.KV_SECRET: facts.get("path"), DiscoveredKind.CERTIFICATE: facts.get("serial"),
                      DiscoveredKind.TOKEN: facts.get("accessor"),
                      # a bare 64-hex digest reads as a key to the secret guard: name it, keep it whole below
                      DiscoveredKind.HARD_CODED_SECRET: f"fingerprint {item.fingerprint[:16]}",
                      DiscoveredKind.SERVICE_ACCOUNT: facts.get("identity"),
                      DiscoveredKind.IAC_IDENTITY: facts.get("identity")}.get(item.kind) or facts.get(
            "role") or facts.get("user") or item.natural_key
        initial = {"name": item.name[:200], "kind": CREDENTIAL_KIND_OF.get(item.kind, CredentialKind.API_KEY),
                   "identifier": str(identifier)[:300],
                   "privilege_level": PrivilegeLevel.ADMIN if item.privileged else PrivilegeLevel.READ,
                   "notes": f"Discovered by {source.name} ({item.get_kind_display()})."}
        if item.kind == DiscoveredKind.HARD_CODED_SECRET:
            initial["fingerprint"] = item.fingerprint
        if item.kind == DiscoveredKind.KV_SECRET and source.store_id:
            initial.update(store=source.store_id, store_path=item.natural_key,
                           store_version=str(facts.get("current_version") or ""))
        if item.kind == DiscoveredKind.CERTIFICATE and facts.get("not_after"):
            initial["expires_at"] = facts["not_after"]
    if source.system_id:
        initial["system"] = source.system_id
        initial["systems"] = [source.system_id]
    return initial
