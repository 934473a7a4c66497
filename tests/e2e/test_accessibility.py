"""Accessibility audit in a real browser: axe-core's WCAG 2.1 A/AA rules on the key pages for each role,
no horizontal scrolling at laptop widths, and a keyboard walk of the sign-in and home pages.

A failure lists every problem (role, page, rule, impact, target selectors) so it can be fixed from the message.
"""

import datetime as dt

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from django.utils import timezone

pytestmark = [pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-1"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LAPTOP, NARROW = (1280, 720), (1024, 700)
ROLES = ["signed_out", "owner", "approver", "auditor", "secadmin"]

# Violations in files other engineers are editing right now: (rule id, page name) -> why it is excluded.
# An entry that no longer matches anything fails the audit, so a fixed one is noticed and removed.
KNOWN_ELSEWHERE: dict[tuple[str, str], str] = {}

# axe.run is started without waiting, so that the roles' pages are audited side by side; the call answers how far
# the page scrolls sideways (0 when it fits). axe only "needs review" an aria-describedby that points at no element
# (Django adds one for every field with help text), so the audit also fails on such a dangling reference (rule
# "aria-reference-missing").
START_AXE = """options => {
  const dangling = [];
  for (const attr of ["aria-describedby", "aria-labelledby", "aria-controls", "aria-errormessage"]) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      const missing = el.getAttribute(attr).split(/\\s+/).filter(id => id && !document.getElementById(id));
      if (missing.length) dangling.push(`${el.id ? "#" + el.id : el.tagName.toLowerCase()} ${attr}="${missing}"`);
    }
  }
  window.__stewardAxe = new Promise(resolve => setTimeout(resolve, 0))
    .then(() => axe.run(document, options))
    .then(results => results.violations.map(v => ({
      rule: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.map(String).join(" ")),
    })).concat(dangling.length ? [{rule: "aria-reference-missing", impact: "serious",
      help: "ARIA attributes must point at elements that exist", targets: dangling}] : []));
  return document.documentElement.scrollWidth - document.documentElement.clientWidth;
}"""
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def audited_estate(personas, estate):
    """The estate with something on every page: findings from a sweep, an open attestation campaign and a
    pending approval request that the approver persona may decide."""
    from governance.audit import Actor
    from governance.models import Credential
    from governance.models.approvals import ApprovalPolicy
    from governance.services.approvals import approval_request_file
    from governance.services.catalogue import catalogue_load
    from governance.services.sweep import sweep_run
    from tests.factories_attestation import open_campaign

    Credential.objects.filter(pk__in=[estate["credential"].pk, estate["other_credential"].pk]).update(
        last_rotated_at=timezone.now() - dt.timedelta(days=400), scopes=["*"], privilege_level="admin")
    catalogue_load(actor=Actor.system(task_id="a11y"))
    sweep_run(trigger="a11y")
    open_campaign(personas)
    policy = ApprovalPolicy.objects.create(name="Platform approves", default_for_actions=["retirement"])
    policy.approver_groups.add(personas.other_team.group)
    approval_request_file(actor=Actor.for_user(personas.owner), action="retirement", target=estate["workflow"],
                          payload={}, justification="Replaced by the new deploy pipeline.")
    return estate


def pages_for(user) -> list[tuple[str, str]]:
    """The key pages as this user sees them (name, path); detail pages use the first object the user may see."""
    from governance import roles
    from governance.models import Credential, Workflow
    from governance.selectors.approvals import approval_request_list
    from governance.selectors.checks import finding_list

    if user is None:
        return [("login", "/accounts/login/"), ("404", "/no-such-page/")]
    workflow = Workflow.objects.restrict(user).order_by("pk").first()
    credential = Credential.objects.restrict(user).order_by("pk").first()
    finding = finding_list(user=user).order_by("pk").first()
    request = approval_request_list(user=user).order_by("pk").first()
    missing = [name for name, obj in [("workflow", workflow), ("credential", credential), ("finding", finding),
                                      ("approval request", request)] if obj is None]
    assert not missing, f"{user.username} sees no {', '.join(missing)}: the audit would skip those pages"
    return [
        ("home", "/"),
        ("workflow list", "/workflows/"),
        ("workflow detail", f"/workflows/{workflow.pk}/"),
        ("workflow history", f"/workflows/{workflow.pk}/?tab=history"),
        ("workflow findings", f"/workflows/{workflow.pk}/?tab=findings"),
        ("workflow requests", f"/workflows/{workflow.pk}/?tab=requests"),
        ("workflow credentials", f"/workflows/{workflow.pk}/?tab=related"),
        ("credential list", "/credentials/"),
        ("credential detail", f"/credentials/{credential.pk}/"),
        ("finding list", "/findings/"),
        ("finding detail", f"/findings/{finding.pk}/"),
        ("approval queue", "/approvals/"),
        ("approval request", f"/approvals/{request.pk}/"),
        ("attestation inbox", "/attestations/"),
        ("notification inbox", "/inbox/"),
        ("discovery queue", "/discovery/"),
        ("posture dashboard", "/posture/"),
        ("reports", "/reports/"),
        ("search results", "/search/?q=payments"),
        # The not-found page is static: signed out and with the security admin's fuller menu is enough.
        *([("404", "/no-such-page/")] if roles.is_security_admin(user) else []),
    ]


def new_context(browser, base_url: str, user=None):
    """A browser context at laptop size, signed in as the user (with a session made by Django's test client:
    the sign-in form is audited, and used by the journeys, already)."""
    from django.conf import settings
    from django.test import Client

    context = browser.new_context(viewport={"width": LAPTOP[0], "height": LAPTOP[1]})
    context.set_default_timeout(15_000)
    if user is not None:
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}])
    return context


def format_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- [{v['role']}] {v['page']} ({v['path']}): {v['rule']} ({v['impact']}) {v['help']}")
        lines.extend(f"      {target}" for target in v["targets"][:8])
        if len(v["targets"]) > 8:
            lines.append(f"      ... and {len(v['targets']) - 8} more")
    return "\n".join(lines)


class RoleTab:
    """One role's browser context and the page being audited in it."""

    def __init__(self, browser, base_url: str, role: str, user):
        self.role, self.base_url = role, base_url
        self.context = new_context(browser, base_url, user)
        self.context.add_init_script(AXE_SCRIPT)
        self.page = self.context.new_page()
        self.pages = pages_for(user)
        # The browser reports every script, style or frame the Content-Security-Policy refused.
        self.csp_refusals = []
        self.page.on("console", lambda message: self.csp_refusals.append(
            f"- [{self.role}] {self.name} ({self.path}): {message.text}")
            if "Content Security Policy" in message.text else None)

    def navigate(self, step: int):
        """Start loading the step's page at laptop size, without waiting, so that the roles' pages load together."""
        self.name, self.path = self.pages[step]
        self.page.set_viewport_size({"width": LAPTOP[0], "height": LAPTOP[1]})
        self.page.evaluate("url => location.assign(url)", self.base_url + self.path)

    def start(self):
        """Once the page has loaded: check its status, note whether it fits, start axe on it without waiting."""
        self.page.wait_for_url(self.base_url + self.path, wait_until="load")
        status = self.page.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
        expected = 404 if self.name == "404" else 200
        assert status == expected, f"{self.role}: {self.name} ({self.path}) answered {status}"
        self.overflows = self._overflow(self.page.evaluate(START_AXE, AXE_OPTIONS), LAPTOP)

    def finish(self) -> tuple[list[dict], list[str]]:
        """The page's axe violations, and where it scrolls sideways (at laptop size, then narrow)."""
        violations = [{"role": self.role, "page": self.name, "path": self.path, **v}
                      for v in self.page.evaluate("window.__stewardAxe")]
        self.page.set_viewport_size({"width": NARROW[0], "height": NARROW[1]})
        return violations, self.overflows + self._overflow(self.page.evaluate(OVERFLOW), NARROW)

    def _overflow(self, extra: int, size: tuple[int, int]) -> list[str]:
        where = f"- [{self.role}] {self.name} ({self.path}) at {size[0]}x{size[1]}"
        return [f"{where}: {extra}px wider than the window"] if extra > 0 else []


def test_key_pages_meet_wcag_aa_and_fit_laptop_screens(browser, live_server, personas, audited_estate):
    """Every role's key pages: no axe violation of WCAG 2.1 A/AA, and no sideways scrolling at 1280 or 1024 wide.

    One context per role, all loading and auditing their next page at the same time to keep the run short."""
    tabs = [RoleTab(browser, live_server.url, role, None if role == "signed_out" else getattr(personas, role))
            for role in ROLES]
    violations, overflows = [], []
    try:
        for step in range(max(len(tab.pages) for tab in tabs)):
            active = [tab for tab in tabs if step < len(tab.pages)]
            for tab in active:
                tab.navigate(step)
            for tab in active:
                tab.start()
            for tab in active:
                found, too_wide = tab.finish()
                violations += found
                overflows += too_wide
    finally:
        for tab in tabs:
            tab.context.close()
    excluded = [v for v in violations if (v["rule"], v["page"]) in KNOWN_ELSEWHERE]
    violations = [v for v in violations if (v["rule"], v["page"]) not in KNOWN_ELSEWHERE]
    problems = []
    if violations:
        problems.append(f"{len(violations)} axe violation(s) of WCAG 2.1 A/AA:\n{format_violations(violations)}")
    if overflows:
        problems.append("Pages that scroll horizontally:\n" + "\n".join(overflows))
    if refusals := [line for tab in tabs for line in tab.csp_refusals]:
        problems.append("Content-Security-Policy refusals:\n" + "\n".join(refusals))
    if stale := set(KNOWN_ELSEWHERE) - {(v["rule"], v["page"]) for v in excluded}:
        problems.append("Fixed, remove from KNOWN_ELSEWHERE: " + ", ".join(f"{r} on {p}" for r, p in sorted(stale)))
    assert not problems, "\n\n".join(problems)


# Marks every element that Tab should reach on the page (shown, enabled, not inside a closed <details>).
MARK_TABBABLE = """() => {
  const selector = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]";
  const hidden = el => !el.getClientRects().length || getComputedStyle(el).visibility === "hidden";
  const folded = el => {
    const details = el.parentElement && el.parentElement.closest("details:not([open])");
    return details && el !== details.querySelector(":scope > summary");
  };
  return [...document.querySelectorAll(selector)]
    .filter(el => el.tabIndex >= 0 && !el.disabled && !hidden(el) && !folded(el))
    .map((el, i) => {
      el.dataset.a11yTab = i;
      const text = (el.getAttribute("aria-label") || el.textContent || el.getAttribute("name") || "").trim();
      return `<${el.tagName.toLowerCase()}> "${text.replace(/\\s+/g, " ").slice(0, 40)}"`;
    });
}"""
# Records, for each element focused from now on, its ring and the colour just outside it, where an outline is drawn.
RECORD_FOCUS = """() => {
  window.__stewardFocus = [];
  document.addEventListener("focusin", () => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    const width = parseFloat(style.outlineWidth) || 0, offset = parseFloat(style.outlineOffset) || 0;
    const box = el.getBoundingClientRect();
    let x = box.left - offset - width / 2;
    if (x < 1) x = box.right + offset + width / 2;
    const y = box.top + Math.min(box.height / 2, 10);
    let behind = "rgb(255, 255, 255)";
    for (const under of document.elementsFromPoint(x, y)) {
      if (under === el || el.contains(under)) continue;
      const bg = getComputedStyle(under).backgroundColor;
      if (bg !== "transparent" && !bg.endsWith(", 0)")) { behind = bg; break; }
    }
    window.__stewardFocus.push({index: el.dataset.a11yTab ?? null, focusVisible: el.matches(":focus-visible"),
      outline: style.outlineStyle === "none" ? 0 : width, outlineColor: style.outlineColor,
      boxShadow: style.boxShadow, behind});
  });
}"""


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours."""
    def luminance(colour: str) -> float:
        channels = [float(c) / 255 for c in colour[colour.index("(") + 1:-1].split(",")[:3]]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted([luminance(first), luminance(second)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def tab_through(page) -> list[str]:
    """Press Tab from the top of the page until focus leaves it; what went wrong, one line each."""
    expected = page.evaluate(MARK_TABBABLE)
    assert len(expected) > 10, f"the page offers too few controls to be a real check: {expected}"
    page.evaluate("document.activeElement.blur()")
    page.evaluate(RECORD_FOCUS)
    for _ in range(len(expected) + 2):
        page.keyboard.press("Tab")
    reached, problems = [], []
    for focus in page.evaluate("window.__stewardFocus"):
        if focus["index"] is None or int(focus["index"]) in reached:
            break  # past the last control, or wrapped round
        reached.append(int(focus["index"]))
        label = expected[int(focus["index"])]
        if not focus["focusVisible"]:
            problems.append(f"{label}: does not match :focus-visible when reached with Tab")
        elif focus["outline"] >= 2:
            if (ratio := contrast(focus["outlineColor"], focus["behind"])) < 3:
                problems.append(f"{label}: focus ring {focus['outlineColor']} on {focus['behind']} is {ratio:.2f}:1")
        elif focus["boxShadow"] == "none":
            problems.append(f"{label}: no focus ring (outline {focus['outline']}px, no box-shadow)")
    problems += [f"{label}: never reached with Tab" for i, label in enumerate(expected) if i not in reached]
    if reached != sorted(reached):
        problems.append("Tab order differs from the page order: " + ", ".join(expected[i] for i in reached))
    return problems


def test_keyboard_skip_link_tab_order_and_focus_rings(browser, live_server, personas, audited_estate):
    """From the sign-in page, Tab reaches the skip link first and Enter moves focus to the main content. On the
    owner's and the security admin's home pages (the fullest: the others show the same kinds of controls) every
    control is reached with Tab, in page order, and shows a focus ring of 2px or more that contrasts 3:1 with what
    is behind it (WCAG 2.4.1, 2.4.3, 2.4.7 and 1.4.11)."""
    problems = []
    for role in ("owner", "secadmin"):
        keyboard_sign_in = role == "owner"  # the owner signs in from the sign-in page, by keyboard
        context = new_context(browser, live_server.url, None if keyboard_sign_in else getattr(personas, role))
        page = context.new_page()
        try:
            if keyboard_sign_in:
                page.goto(live_server.url + "/accounts/login/")
                page.keyboard.press("Tab")
                first = page.evaluate("(el => ({cls: el.className, x: el.getBoundingClientRect().x}))"
                                      "(document.activeElement)")
                assert first["cls"] == "skip-link", f"the first Tab lands on {first}, not on the skip link"
                assert first["x"] >= 0, "the focused skip link is off screen"
                page.keyboard.press("Enter")
                assert page.evaluate("document.activeElement.id") == "main", "the skip link does not focus <main>"
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.id") == "id_username", "next Tab misses the form"
                page.keyboard.type(personas.owner.username)
                page.keyboard.press("Tab")
                page.keyboard.type(PASSWORD)
                with page.expect_navigation():
                    page.keyboard.press("Enter")
                assert page.url.split("#")[0] == live_server.url + "/", f"keyboard sign-in ended on {page.url}"
            page.goto(live_server.url + "/")  # from the top: the sign-in keeps the skip link's #main
            problems += [f"- [{role}] home: {line}" for line in tab_through(page)]
        finally:
            context.close()
    assert not problems, "Keyboard problems:\n" + "\n".join(problems)
