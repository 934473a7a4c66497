from django.conf import settings
from django.utils.functional import cached_property

from governance import roles
from governance.selectors import notifications


class InboxBadge:
    """The top bar's unread count, read from the database only when a page renders it (one capped count)."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def count(self) -> int:
        return notifications.unread_count(user=self.user)

    @property
    def label(self) -> str:
        return notifications.unread_label(self.count)


def steward(request):
    user = getattr(request, "user", None)
    return {
        "STEWARD_VERSION": settings.STEWARD_VERSION,
        "is_security_admin": roles.is_security_admin(user),
        "is_auditor": roles.is_auditor(user),
        # Auditors read everything and change nothing: the menu offers them no write pages (issue #19).
        "may_write": roles.is_signed_in(user) and (roles.is_security_admin(user) or not roles.is_auditor(user)),
        "nav": request.path.strip("/").split("/")[0],
        "inbox_badge": InboxBadge(user) if roles.is_signed_in(user) else None,
        "demo_mode": settings.STEWARD_DEMO_MODE,
        # The well-known default is shown; a password someone chose is not (run_portal says the same).
        "demo_password_shown": "steward-demo" if settings.STEWARD_DEMO_PASSWORD == "steward-demo" else "",
    }
