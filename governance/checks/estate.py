"""The estate-level check: the audit trail is complete and tamper-evident (one subject, the estate).

Verifying the whole chain costs time in proportion to its length (millions of events on a large
estate), so between full verifications (governance.audit.verify_chain, at most
STEWARD_AUDIT_FULL_VERIFY_SECONDS apart, a day by default) the check verifies incrementally: the
event it last verified must still carry the same hash, and every event after it must link to it
and match its own hash. The append-only trigger stops edits in between; the daily full pass
catches anything done around it.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils.dateparse import parse_datetime

from governance.audit import ChainVerification, compute_event_hash, verify_chain
from governance.checks.base import ESTATE_OBJECT_ID, ESTATE_OBJECT_TYPE, ESTATE_REPR, Check, Context, Failure, Outcome
from governance.checks.registry import register
from governance.models import AuditEvent


def audit_trail_state(*, sequence: int, head_hash: str, full_verified_at: dt.datetime) -> dict:
    """The audit-trail check's state once the chain is known intact up to sequence (last verified in full at
    full_verified_at): its next evaluation verifies only the events after it. A report whose cover has just
    verified the whole chain starts the check from here (reports.evaluation.chain_verified_start)."""
    return {"sequence": sequence, "hash": head_hash, "full_verified_at": full_verified_at.isoformat()}


def verify_after(sequence: int, head_hash: str) -> ChainVerification:
    """Verify the events after a checkpoint (sequence, hash) that an earlier full verification established."""
    anchor = AuditEvent.objects.filter(sequence=sequence).first()
    if anchor is None or anchor.hash != head_hash or compute_event_hash(anchor) != head_hash:
        return ChainVerification(
            False, sequence - 1, "", sequence, f"event #{sequence}, verified before, is missing or was edited"
        )
    expected_prev, expected_sequence = head_hash, sequence + 1
    for event in AuditEvent.objects.filter(sequence__gt=sequence).order_by("sequence").iterator(chunk_size=5000):
        if event.sequence != expected_sequence:
            return ChainVerification(
                False,
                expected_sequence - 1,
                expected_prev,
                event.sequence,
                f"event #{event.sequence} follows #{expected_sequence - 1}: an event is missing or re-ordered",
            )
        if event.prev_hash != expected_prev:
            return ChainVerification(
                False,
                expected_sequence - 1,
                expected_prev,
                event.sequence,
                f"event #{event.sequence} does not link to the hash of the event before it",
            )
        if compute_event_hash(event) != event.hash:
            return ChainVerification(
                False,
                expected_sequence - 1,
                expected_prev,
                event.sequence,
                f"event #{event.sequence} was edited: its content no longer matches its hash",
            )
        expected_prev, expected_sequence = event.hash, expected_sequence + 1
    return ChainVerification(True, expected_sequence - 1, expected_prev)


@register
class AuditTrailIntact(Check):
    key = "audit_trail"
    severity = "critical"
    subject_types = (ESTATE_OBJECT_TYPE,)
    explanation = (
        "The audit trail must be complete and tamper-evident: every event links to the hash of the one "
        "before it and its own hash still matches its content, from the first event to the last. A broken "
        "chain means an event was edited, removed or re-ordered, and the trail can no longer serve as "
        "evidence of who changed what."
    )
    remediation = (
        "Treat this as a security incident: find who had write access to the database at the time of the "
        "first bad event, restore the events from a backup if possible, and keep the broken chain (do not "
        "'repair' it) as evidence. `manage.py verify_audit_chain` names the first bad event."
    )

    def evaluate(self, ctx: Context) -> Outcome:
        state = dict(ctx.state or {})
        every = dt.timedelta(seconds=int(settings.STEWARD_AUDIT_FULL_VERIFY_SECONDS))
        last_full = parse_datetime(state.get("full_verified_at") or "")
        incremental = bool(state.get("sequence")) and last_full is not None and ctx.now - last_full < every
        if incremental:
            result = verify_after(state["sequence"], state["hash"])
        else:
            result = verify_chain()
        outcome = Outcome(evaluated=1, evaluated_by_type={ESTATE_OBJECT_TYPE: 1})
        if result.intact:
            outcome.state = audit_trail_state(
                sequence=result.events, head_hash=result.head_hash,
                full_verified_at=last_full if incremental else ctx.now) if result.events else {}
        else:
            failure = Failure(
                ESTATE_OBJECT_TYPE,
                ESTATE_OBJECT_ID,
                ESTATE_REPR,
                None,
                None,
                evidence_dict={
                    "first_bad_sequence": result.first_bad_sequence,
                    "reason": result.reason,
                    "events_verified": result.events,
                    "verification": "incremental" if incremental else "full",
                },
            )
            outcome.failures[failure.key] = failure
            outcome.state = {}  # the next run verifies the whole chain again
        return outcome

    def bare_queries(self, ctx: Context):
        return [AuditEvent.objects.order_by("sequence").values_list("sequence", "prev_hash", "hash")]
