"""End-to-end journeys in headless Chromium (Debian's package) driven by Playwright.

Each journey saves screenshots under test-artefacts/e2e/<test name>/.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "e2e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser():
    """One Chromium per journey module. Playwright's sync API runs an event loop in this thread while
    it is open; the ORM calls the journeys make between browser steps are still synchronous and safe,
    so Django's async guard is lifted for exactly that time."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: tests/run.py installs it with apt-get (chromium, chromium-driver)")
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Journey:
    """A page plus numbered screenshots for one journey."""

    def __init__(self, page, base_url: str, name: str):
        self.page = page
        self.base_url = base_url
        self.folder = ARTEFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shots = 0

    def goto(self, path: str):
        self.page.goto(self.base_url + path)

    def shot(self, label: str) -> Path:
        self.shots += 1
        path = self.folder / f"{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def click_in_place(self, button, expect: str):
        """Click a button of an in-place form; the result must arrive without the page reloading."""
        self.page.evaluate("window.__stewardNoReload = true")
        button.click()
        self.page.locator("#messages").get_by_text(expect).first.wait_for()
        assert self.page.evaluate("window.__stewardNoReload === true"), "the page reloaded"

    def sign_in(self, username: str, password: str):
        self.goto("/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()


@pytest.fixture
def journey(browser, live_server, request):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Every journey is also a Content-Security-Policy check: the browser reports each refused script,
    # style or frame on the console, and a journey that caused one fails.
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    yield Journey(page, live_server.url, request.node.name)
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"
