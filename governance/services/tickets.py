"""External ticket references (Jira, ServiceNow, ...) on approval requests, findings and attestation items.

Those three models carry the same three fields (ticket_system, ticket_key, ticket_url), shown on
their portal pages. This service is the one write path for them outside filing: whoever may see
the object and may write (not auditors; integrations with the file_requests scope) may set or
clear its ticket; the change is audited on the object itself.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction

from governance import permissions
from governance.audit import Actor
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_may_write, record, snapshot

TICKET_FIELDS = ("ticket_system", "ticket_key", "ticket_url")


def carries_tickets(model) -> bool:
    names = {f.name for f in model._meta.get_fields()}
    return all(name in names for name in TICKET_FIELDS)


def ticket_reference_set(*, actor: Actor, target: models.Model, system: str, key: str,
                         url: str = "") -> models.Model:
    """Set (or, with empty values, clear) the external ticket of target."""
    if not carries_tickets(type(target)):
        raise ValidationError({"target": "This object carries no ticket reference."})
    ensure_may_write(actor)
    values = {"ticket_system": (system or "").strip(), "ticket_key": (key or "").strip(),
              "ticket_url": (url or "").strip()}
    if values["ticket_url"] and not values["ticket_url"].startswith(("https://", "http://")):
        raise ValidationError({"url": "Give the ticket's web address (https://...)."})
    if bool(values["ticket_system"]) != bool(values["ticket_key"]):
        raise ValidationError({"key": "Give both the ticketing system and the ticket key (or neither)."})
    reject_secret_values({"system": values["ticket_system"], "key": values["ticket_key"],
                          "url": values["ticket_url"]})
    model = type(target)
    with transaction.atomic():
        target = model.objects.select_for_update().get(pk=target.pk)
        if actor.kind != "system" and not permissions.can(actor.user, permissions.VIEW, target):
            raise PermissionDenied("You may not see this object.")
        before = snapshot(target, TICKET_FIELDS)
        for name, value in values.items():
            setattr(target, name, value)
        try:
            target.full_clean(exclude=[f.name for f in model._meta.fields if f.name not in TICKET_FIELDS])
        except ValidationError as exc:
            raise ValidationError({name.removeprefix("ticket_"): messages
                                   for name, messages in exc.message_dict.items()}) from exc
        target.save(update_fields=list(TICKET_FIELDS))
        after = snapshot(target, TICKET_FIELDS)
        if before != after:
            summary = (f"Linked {values['ticket_system']} ticket {values['ticket_key']} to {target}"
                       if values["ticket_key"] else f"Removed the external ticket of {target}")
            record(actor=actor, action="ticket.link" if values["ticket_key"] else "ticket.unlink",
                   instance=target, summary=summary, before=before, after=after)
    return target
