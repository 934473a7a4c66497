"""Celery adapter of the audit anchor: the beat task that writes a signed checkpoint every few minutes."""

from celery import shared_task

from governance.audit_anchor import checkpoint_write


@shared_task(name="governance.audit.checkpoint")
def audit_checkpoint() -> dict:
    checkpoint = checkpoint_write(reason="schedule")
    return {"sequence": checkpoint.sequence, "head_hash": checkpoint.head_hash}
