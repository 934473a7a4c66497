"""Celery adapters of the integrations capability: webhook delivery and the housekeeping sweep.

deliver_webhook makes one attempt (the service claims the delivery with compare-and-set, so a
duplicate message sends nothing twice) and, when the service says the failure was transient,
enqueues the next attempt with the backoff the service computed. The sweep re-enqueues due
deliveries whose message was lost, revokes tokens whose rotation overlap ended, forgets expired
webhook secret overlaps and idempotency records.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from governance import task_names
from governance.outbox import enqueue, enqueue_many
from governance.services import integrations, webhooks

MAX_DB_RETRIES = 3


@shared_task(bind=True, acks_late=True, max_retries=MAX_DB_RETRIES, name=task_names.WEBHOOK_DELIVER)
def deliver_webhook(self, delivery_id: int) -> str:
    try:
        result = webhooks.webhook_delivery_attempt(delivery_id=delivery_id)
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 5) from exc
    if result is None:
        return "not-due-or-claimed"
    if result.retry_in is not None:
        enqueue(deliver_webhook, delivery_id, countdown=result.retry_in)
    return result.outcome


@shared_task(name="governance.integrations.sweep")
def integrations_sweep() -> dict:
    due = webhooks.webhook_deliveries_due()
    enqueue_many(deliver_webhook, [[delivery_id] for delivery_id in due])
    return {
        "deliveries_requeued": len(due),
        "tokens_revoked": integrations.integration_tokens_sweep(),
        "secret_overlaps_ended": webhooks.webhook_secret_overlaps_sweep(),
        "idempotency_records_deleted": integrations.idempotency_records_sweep(),
    }
