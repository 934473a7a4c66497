"""The inbox's reads: a person's own notifications only (another person's are not found).

The list puts unread first, then newest first; the count of unread ones stops at UNREAD_CAP + 1, so
the top bar's badge costs one short index scan (notification_inbox: recipient, read_at, id).
"""

from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from governance.models.notifications import Notification

UNREAD_CAP = 99


def notifications_of(*, user) -> QuerySet[Notification]:
    """The user's notifications, newest first (the API's order: a cursor on -id)."""
    if not getattr(user, "is_authenticated", False):
        return Notification.objects.none()
    return Notification.objects.filter(recipient_id=user.pk).order_by("-id")


def inbox(*, user) -> QuerySet[Notification]:
    """The inbox page's list: unread first, newest first within each."""
    unread = ExpressionWrapper(Q(read_at__isnull=True), output_field=BooleanField())
    return notifications_of(user=user).order_by(unread.desc(), "-id")


def notification_get(*, user, pk) -> Notification:
    """One of the user's notifications; Notification.DoesNotExist for anyone else's."""
    return notifications_of(user=user).get(pk=pk)


def unread_count(*, user) -> int:
    """How many unread notifications the user has, counted up to UNREAD_CAP + 1."""
    return notifications_of(user=user).filter(read_at__isnull=True).order_by()[: UNREAD_CAP + 1].count()


def unread_label(count: int) -> str:
    """The badge's text: the count, or 99+ past the cap."""
    return f"{UNREAD_CAP}+" if count > UNREAD_CAP else str(count)
