"""Celery adapters of outgoing mail: one send attempt per message, and the sweep for lost messages.

mail_deliver makes one attempt (the service claims the delivery with compare-and-set, so a duplicate
message sends nothing twice) and, when the service says to try again, enqueues the next attempt
through the outbox with the backoff the service computed.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from governance import task_names
from governance.outbox import enqueue
from governance.services.mail import mail_deliveries_requeue, mail_delivery_attempt


@shared_task(bind=True, acks_late=True, max_retries=3, name=task_names.MAIL_DELIVER)
def mail_deliver(self, delivery_id: int) -> str:
    try:
        result = mail_delivery_attempt(delivery_id=delivery_id)
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 5) from exc
    if result is None:
        return "not-due-or-claimed"
    if result.retry_in is not None:
        enqueue(mail_deliver, delivery_id, countdown=result.retry_in)
    return result.outcome


@shared_task(name="governance.mail.sweep")
def mail_sweep() -> dict:
    """Beat: send again the pending deliveries whose message was lost (a worker that died mid-send)."""
    return {"requeued": mail_deliveries_requeue()}
