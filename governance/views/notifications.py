"""The in-app inbox: a person's own notifications, marked read one by one or all at once.

Thin: the selector reads (only the signed-in person's rows, so another person's id answers 404), the
service writes. The forms are plain POSTs that redirect back with a message: no JavaScript needed.
Everyone signed in has an inbox, auditors included (marking read changes nothing governed).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from governance.models.notifications import Notification
from governance.pagination import CappedPaginator
from governance.selectors import notifications as selectors
from governance.services.notifications import notification_mark_read, notifications_mark_all_read

PAGE_SIZE = 50


def _back(request):
    """The inbox page the form was posted from (its page number, when it is one)."""
    page = request.POST.get("page", "")
    return redirect(reverse("inbox") + (f"?page={page}" if page.isdigit() and page != "1" else ""))


@login_required
@require_GET
def inbox(request):
    page = CappedPaginator(selectors.inbox(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "governance/notifications/inbox.html", {
        "page_obj": page, "rows": page.object_list, "querystring": "", "nav": "inbox",
        "unread": selectors.unread_count(user=request.user),
    })


@login_required
@require_POST
def notification_read(request, pk: int):
    try:
        notification = selectors.notification_get(user=request.user, pk=pk)
    except Notification.DoesNotExist:
        raise Http404("No such notification.") from None
    if notification_mark_read(actor=request.user, notification=notification):
        messages.success(request, f"Marked read: {notification.subject}")
    else:
        messages.info(request, "That notification was already read.")
    return _back(request)


@login_required
@require_POST
def notifications_read_all(request):
    changed = notifications_mark_all_read(actor=request.user)
    if changed:
        messages.success(request, f"Marked {changed} notification{'s' if changed != 1 else ''} read.")
    else:
        messages.info(request, "Nothing to mark: every notification was already read.")
    return _back(request)


urlpatterns = [
    path("inbox/", inbox, name="inbox"),
    path("inbox/read-all/", notifications_read_all, name="notifications-read-all"),
    path("inbox/<int:pk>/read/", notification_read, name="notification-read"),
]
