"""The audit chain's head as a report shows it, and the result of verifying the chain up to it.

A report cites the last event at or before its as_of time, leaving out the reports app's own
events (requests, renders, downloads): otherwise asking for a report would change the report,
and two renders of the same inputs could never be byte-identical.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from governance.audit import GENESIS_HASH, verify_chain
from governance.models import AuditEvent

REPORT_OBJECT_TYPE = "reports.reportjob"


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    hash: str
    occurred_at: dt.datetime | None
    intact: bool
    verified_events: int
    reason: str
    first_bad_sequence: int | None

    def as_dict(self) -> dict:
        return {
            "head_sequence": self.sequence,
            "head_hash": self.hash,
            "head_occurred_at": self.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if self.occurred_at else None,
            "verified": self.intact,
            "verified_events": self.verified_events,
            "reason": self.reason,
            "first_bad_sequence": self.first_bad_sequence,
        }


def chain_head_as_of(as_of: dt.datetime) -> ChainHead:
    head = (
        AuditEvent.objects.filter(occurred_at__lte=as_of)
        .exclude(object_type=REPORT_OBJECT_TYPE)
        .order_by("-sequence")
        .values("sequence", "hash", "occurred_at")
        .first()
    )
    if head is None:
        return ChainHead(0, GENESIS_HASH, None, True, 0, "empty chain", None)
    events = AuditEvent.objects.filter(sequence__lte=head["sequence"]).order_by("sequence").iterator(chunk_size=5000)
    result = verify_chain(events)
    intact = result.intact and result.head_hash == head["hash"]
    reason = result.reason or ("" if intact else "the head event does not close the verified chain")
    return ChainHead(head["sequence"], head["hash"], head["occurred_at"].astimezone(dt.UTC), intact,
                     result.events, reason, result.first_bad_sequence)
