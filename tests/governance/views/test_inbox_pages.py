"""The inbox page, its forms (no JavaScript needed), the top bar's unread badge (issue #19)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.models.notifications import Notification, NotificationKind
from governance.services.notifications import notification_send

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def tell(person, n, *, prefix="note"):
    for i in range(n):
        notification_send(recipient=person, kind=NotificationKind.FINDING_OPENED, subject=f"{prefix} {i}",
                          body="Something to look at.", link="/findings/", dedupe_key=f"{prefix}:{i}")


def badge(html: str) -> str | None:
    match = re.search(r'<span class="count" aria-hidden="true">([^<]+)</span>', html)
    return match.group(1) if match else None


def test_the_inbox_lists_ones_own_unread_first_newest_first(client, personas):
    tell(personas.owner, 3)
    tell(personas.approver, 1, prefix="not yours")
    Notification.objects.filter(subject="note 2").update(read_at="2026-01-01T00:00Z")  # the newest, read
    client.force_login(personas.owner)
    html = client.get(reverse("inbox")).content.decode()
    assert html.index("note 1") < html.index("note 0") < html.index("note 2")
    assert "not yours" not in html and html.count('class="unread"') == 2 and 'class="read"' in html
    assert "Mark all read" in html and badge(html) == "2"


def test_mark_read_and_mark_all_read_redirect_back_with_a_message(client, personas):
    tell(personas.owner, 3)
    client.force_login(personas.owner)
    first = Notification.objects.filter(recipient=personas.owner).first()
    response = client.post(reverse("notification-read", args=[first.pk]), {"page": "1"}, follow=True)
    assert response.redirect_chain == [(reverse("inbox"), 302)]
    assert f"Marked read: {first.subject}" in response.content.decode()
    first.refresh_from_db()
    assert first.read_at is not None
    response = client.post(reverse("notifications-read-all"), follow=True)
    assert "Marked 2 notifications read." in response.content.decode()
    assert badge(response.content.decode()) is None
    assert not Notification.objects.filter(read_at=None).exists()


def test_another_persons_notification_answers_404(client, personas):
    tell(personas.owner, 1)
    theirs = Notification.objects.get()
    client.force_login(personas.approver)
    assert client.post(reverse("notification-read", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("notification-read", args=[theirs.pk + 999])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_auditors_have_an_inbox_and_may_mark_it_read(client, personas):
    tell(personas.auditor, 1)
    client.force_login(personas.auditor)
    assert badge(client.get(reverse("home")).content.decode()) == "1"
    note = Notification.objects.get()
    assert client.post(reverse("notification-read", args=[note.pk])).status_code == 302
    note.refresh_from_db()
    assert note.read_at is not None


def test_the_top_bar_count_stops_at_99(client, personas):
    client.force_login(personas.owner)
    assert badge(client.get(reverse("home")).content.decode()) is None  # nothing unread: no count
    tell(personas.owner, 100)
    html = client.get(reverse("home")).content.decode()
    assert badge(html) == "99+" and "Inbox, 99+ unread" in html


def test_the_inbox_page_costs_the_same_queries_for_few_and_many(client, personas):
    client.force_login(personas.owner)
    tell(personas.owner, 2)
    client.get(reverse("inbox"))  # warm up (session, content types)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("inbox")).status_code == 200
    tell(personas.owner, 60, prefix="more")
    with CaptureQueriesContext(connection) as many:
        html = client.get(reverse("inbox")).content.decode()
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    assert "Next ›" in html  # 62 rows: two pages of 50
