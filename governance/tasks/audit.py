"""Celery adapter of the audit anchor: the beat task that writes a signed checkpoint every few minutes."""

from celery import shared_task


@shared_task(name="governance.audit.checkpoint")
def audit_checkpoint() -> dict:
    # Imported when the task runs: Celery imports this package before Django's models are ready.
    from governance.audit_anchor import checkpoint_write

    checkpoint = checkpoint_write(reason="schedule")
    return {"sequence": checkpoint.sequence, "head_hash": checkpoint.head_hash}
