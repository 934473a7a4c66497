"""The core in-place actions also work with JavaScript turned off: each form posts, redirects and
the page shows the message (the server has one code path for both)."""

import re

import pytest

from governance.audit import Actor
from governance.models.approvals import ApprovalAction
from tests.e2e.conftest import Journey

pytestmark = [pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-1"


@pytest.fixture
def journey_without_js(browser, live_server, request):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield Journey(page, live_server.url, request.node.name)
    context.close()


def test_deciding_acknowledging_and_attesting_without_javascript(journey_without_js, personas, estate):
    from governance.services import approvals
    from governance.services.catalogue import catalogue_load
    from governance.services.sweep import sweep_run
    from tests.factories_approvals import make_policy, payload_for
    from tests.factories_attestation import open_campaign

    make_policy(groups=[personas.other_team.group])
    target, payload = payload_for(ApprovalAction.PRIVILEGED_SCOPE_CHANGE, estate, personas)
    request = approvals.approval_request_file(
        actor=Actor.for_user(personas.owner), action=ApprovalAction.PRIVILEGED_SCOPE_CHANGE, target=target,
        payload=payload, justification="The deploy job now manages releases.")
    catalogue_load(actor=Actor.system(task_id="e2e"))
    sweep_run(trigger="e2e")
    campaign = open_campaign(personas)
    journey, page = journey_without_js, journey_without_js.page

    journey.sign_in(personas.approver.username, PASSWORD)
    page.locator("section", has_text="Waiting for your decision").get_by_role("link", name=f"#{request.pk}").click()
    page.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    journey.shot("approved-without-js")
    assert "You approved request" in page.locator("#messages").inner_text()
    request.refresh_from_db()
    assert request.status == "executed"
    page.get_by_role("button", name="Sign out").click()

    journey.sign_in(personas.owner.username, PASSWORD)
    page.get_by_role("link", name="Findings", exact=True).click()
    page.get_by_role("checkbox").first.check()
    page.get_by_role("button", name="Acknowledge selected").click()
    page.wait_for_load_state()
    journey.shot("acknowledged-without-js")
    assert re.search(r"1 finding\(s\) acknowledged", page.locator("#messages").inner_text())

    page.get_by_role("link", name="Attestations", exact=True).click()
    # The workflow carries open findings and privileged automation: confirming it takes a reason.
    page.locator("textarea").first.fill("Still needed for releases; the findings are tracked.")
    page.get_by_role("button", name=re.compile(r"^Confirm (?!all)")).first.click()
    page.wait_for_load_state()
    journey.shot("attested-without-js")
    assert "answered" in page.locator("#messages").inner_text()
    assert campaign.items.filter(assignee=personas.owner, state="answered").count() == 1
