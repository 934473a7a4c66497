"""Celery adapter of the inbox: the daily purge of old notifications."""

from celery import shared_task

from governance.services.notifications import notifications_purge


@shared_task(name="governance.notifications.purge")
def notifications_purge_task() -> dict:
    """Beat, daily: delete notifications past STEWARD_NOTIFICATION_RETENTION_DAYS."""
    return {"deleted": notifications_purge()}
