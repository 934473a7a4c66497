"""Permission-matrix rules of the inbox (governance/views/notifications.py): everyone signed in has one.

The notification in the URL is the owner persona's; a GET of the POST-only forms answers 405 before
any lookup, so whose it is shows in tests/governance/views/test_inbox_pages.py (404 for anyone else).
"""

from governance.models.notifications import Notification, NotificationKind
from tests.matrix_personas import EVERYONE, POST_ONLY


def owner_notification(estate, personas):
    notification, _ = Notification.objects.get_or_create(
        recipient=personas.owner, dedupe_key="matrix:notification",
        defaults={"kind": NotificationKind.FINDING_OPENED, "subject": "matrix", "link": "/findings/"})
    return notification


KWARGS = {"notification": lambda estate, personas: {"pk": owner_notification(estate, personas).pk}}

RULES = {
    "inbox": (None, EVERYONE),
    "notifications-read-all": (None, POST_ONLY),
    "notification-read": ("notification", POST_ONLY),
}
