"""Changes asked for many rows at once: one approval request per row, through the very service the
single-object form uses (approvals.approval_request_file), so every rule it enforces holds here too.

Each row is filed in its own transaction: a refused row does not stop the others, and no row is ever
half-filed. A row the person may not see is refused as missing (as its page would answer 404); a row they
may see but not change is refused with the service's own message. Every row gets an outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from governance import permissions
from governance.audit import Actor
from governance.models.approvals import ApprovalRequest
from governance.services.approvals import approval_request_file

MAX_BULK_ROWS = 200


@dataclass(frozen=True)
class RowOutcome:
    row_id: int
    label: str  # the object as the person may see it; "#<id>" when they may not
    request: ApprovalRequest | None = None
    refused: str = ""

    @property
    def filed(self) -> bool:
        return self.request is not None


def refusal(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "You may not ask for this."


def bulk_approval_requests(*, actor: Actor, model, ids, action: str, payload: dict, justification: str,
                           ticket: dict | None = None) -> list[RowOutcome]:
    """File `action` with the same payload and justification for each row of `model` with an id in `ids`."""
    ids = list(dict.fromkeys(int(i) for i in ids))
    if not ids:
        raise ValidationError({"row": "Tick at least one row."})
    if len(ids) > MAX_BULK_ROWS:
        raise ValidationError({"row": f"At most {MAX_BULK_ROWS} rows at once."})
    person = actor.person
    visible = {obj.pk: obj for obj in permissions.restrict(model.objects.filter(pk__in=ids), person,
                                                           permissions.VIEW)} if person is not None else {}
    noun = model._meta.verbose_name
    outcomes = []
    for pk in ids:
        target = visible.get(pk)
        if target is None:
            outcomes.append(RowOutcome(pk, f"#{pk}", refused=f"No such {noun} (or you may not see it)."))
            continue
        try:
            with transaction.atomic():  # this row alone: filed whole or not at all
                request = approval_request_file(actor=actor, action=action, target=target, payload=payload,
                                                justification=justification, ticket=ticket)
        except (ValidationError, PermissionDenied) as exc:
            outcomes.append(RowOutcome(pk, str(target), refused=refusal(exc)))
        else:
            outcomes.append(RowOutcome(pk, str(target), request=request))
    return outcomes
