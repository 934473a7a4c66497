"""The portal as each persona sees it at 1280×800 (issue #19): the top bar fits one row, and a screenshot of
every persona's home is kept under test-artefacts/homes/ (the README's Screenshots section shows them)."""

from pathlib import Path

import pytest

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
