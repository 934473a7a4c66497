"""The caller's inbox over the API: own notifications only, cursor pages, mark read (issue #19)."""

from __future__ import annotations

import pytest

from governance.models.notifications import Notification, NotificationKind
from governance.services.notifications import notification_send
from tests.factories_integrations import bearer

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def tell(person, n, *, prefix="note"):
    for i in range(n):
        notification_send(recipient=person, kind=NotificationKind.APPROVAL_WAITING, subject=f"{prefix} {i}",
                          link="/approvals/", dedupe_key=f"{prefix}:{i}")


def test_the_list_is_the_callers_own_newest_first_in_cursor_pages(api, personas):
    tell(personas.owner, 5)
    tell(personas.approver, 2, prefix="theirs")
    api.force_login(personas.owner)
    seen, url = [], "/api/v1/notifications/?page_size=2"
    while url:
        body = api.get(url).json()
        seen += [row["subject"] for row in body["results"]]
        url = body["next"]
    assert seen == [f"note {i}" for i in (4, 3, 2, 1, 0)]
    row = api.get("/api/v1/notifications/").json()["results"][0]
    assert set(row) == {"id", "kind", "subject", "body", "link", "object_type", "object_id", "created_at",
                        "read_at"}
    assert row["kind"] == "approval_waiting" and row["link"] == "/approvals/" and row["read_at"] is None


def test_mark_read_over_the_api_and_the_unread_filter(api, personas):
    tell(personas.owner, 3)
    api.force_login(personas.owner)
    note = Notification.objects.filter(recipient=personas.owner).first()
    response = api.post(f"/api/v1/notifications/{note.pk}/read/")
    assert response.status_code == 200 and response.json()["read_at"] is not None
    assert api.post(f"/api/v1/notifications/{note.pk}/read/").status_code == 200  # again: still read
    unread = api.get("/api/v1/notifications/?unread=true").json()["results"]
    assert len(unread) == 2 and note.pk not in {r["id"] for r in unread}


def test_another_persons_notification_answers_404(api, personas, integrations):
    tell(personas.approver, 1)
    theirs = Notification.objects.get()
    api.force_login(personas.owner)
    assert api.post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 404
    assert api.get("/api/v1/notifications/").json()["results"] == []
    api.logout()
    _, token = integrations["reader"]  # acts for the owner: her inbox, not the approver's
    assert api.post(f"/api/v1/notifications/{theirs.pk}/read/", **bearer(token)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
