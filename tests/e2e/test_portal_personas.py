"""The portal as each persona sees it at 1280×800 (issue #19): the top bar fits one row, and a screenshot of
every persona's home is kept under test-artefacts/homes/ (the README's Screenshots section shows them)."""

from pathlib import Path

import pytest

from governance.models.notifications import Notification, NotificationKind
from tests.e2e.test_accessibility import new_context

pytestmark = [pytest.mark.django_db(transaction=True)]
HOMES = Path(__file__).resolve().parents[2] / "test-artefacts" / "homes"
SCREEN = {"width": 1280, "height": 800}
PERSONAS = ["owner", "approver", "auditor", "secadmin"]

# The rows the top bar's parts sit on: one value when everything fits on one line.
TOPBAR_ROWS = """() => {
  const bar = document.querySelector("header.topbar");
  const parts = [...bar.querySelectorAll(":scope > *, nav > ul > li")].filter(el => el.getClientRects().length);
  const boxes = parts.map(el => el.getBoundingClientRect());
  const firstBottom = Math.min(...boxes.map(b => b.bottom));
  return {wrapped: parts.filter((el, i) => boxes[i].top >= firstBottom).map(el => el.textContent.trim().slice(0, 30)),
          height: bar.getBoundingClientRect().height};
}"""


def test_the_top_bar_fits_one_row_at_1280_for_every_role(browser, live_server, personas, estate):
    """Problem 10: the top bar wrapped to two rows for auditors and security admins at 1280 px."""
    wrapped = {}
    for persona in PERSONAS:
        context = new_context(browser, live_server.url, getattr(personas, persona))
        page = context.new_page()
        page.set_viewport_size(SCREEN)
        page.goto(live_server.url + "/")
        measured = page.evaluate(TOPBAR_ROWS)
        if measured["wrapped"] or measured["height"] > 60:
            wrapped[persona] = measured
        context.close()
    assert not wrapped, f"the top bar wraps: {wrapped}"


def test_each_persona_home_answers_and_is_kept_as_a_screenshot(browser, live_server, personas, estate):
    """The README's Screenshots section shows these four homes (test-artefacts/homes/<persona>.png)."""
    HOMES.mkdir(parents=True, exist_ok=True)
    for persona in PERSONAS:
        context = new_context(browser, live_server.url, getattr(personas, persona))
        page = context.new_page()
        page.set_viewport_size(SCREEN)
        response = page.goto(live_server.url + "/")
        assert response.status == 200, persona
        assert page.locator("main h1").count() == 1, persona
        assert page.evaluate("document.documentElement.scrollWidth") <= SCREEN["width"], persona
        path = HOMES / f"{persona}.png"
        page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000, persona
        context.close()


def test_the_top_bar_still_fits_one_row_with_the_widest_unread_badge(browser, live_server, personas, estate):
    """Issue #19: the inbox's envelope with "99+" beside the account, for every persona, at 1280 px."""
    for persona in PERSONAS:
        person = getattr(personas, persona)
        Notification.objects.bulk_create([
            Notification(recipient=person, kind=NotificationKind.FINDING_OPENED, subject=f"n{i}", dedupe_key=f"e2e:{i}")
            for i in range(100)])
    wrapped = {}
    for persona in PERSONAS:
        context = new_context(browser, live_server.url, getattr(personas, persona))
        page = context.new_page()
        page.set_viewport_size(SCREEN)
        page.goto(live_server.url + "/")
        assert page.locator(".inbox-link .count").inner_text() == "99+", persona
        measured = page.evaluate(TOPBAR_ROWS)
        if measured["wrapped"] or measured["height"] > 60:
            wrapped[persona] = measured
        if persona == "secadmin":
            page.locator("header.topbar").screenshot(path=str(HOMES.parent / "topbar-inbox.png"))
        context.close()
    assert not wrapped, f"the top bar wraps: {wrapped}"
