"""The journeys of issue 10, each from the home page as a new user would do them."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from governance.models import Credential, Workflow

pytestmark = [pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-1"


@pytest.fixture
def eager_tasks():
    """Background jobs run at once, so the browser sees them progress (no worker in the test)."""
    from portal.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old


@pytest.fixture
def default_policies(personas):
    from governance.models.approvals import ApprovalPolicy

    policy = ApprovalPolicy.objects.create(
        name="Platform approves", expiry_hours=72,
        default_for_actions=["provision_credential", "ownership_transfer", "privileged_scope_change", "retirement",
                             "reactivation", "register_workflow", "risk_acceptance"])
    policy.approver_groups.add(personas.other_team.group)
    return policy


def test_owner_requests_a_credential_and_an_approver_approves_it(journey, personas, estate, default_policies):
    page = journey.page
    journey.sign_in(personas.owner.username, PASSWORD)
    page.get_by_role("link", name="payments-deploy").first.click()
    page.get_by_role("link", name="Request a new credential").click()
    journey.shot("request-form")
    page.get_by_label(re.compile(r"^Name\b")).fill("payments-deploy-token")
    page.get_by_label(re.compile(r"^Kind\b")).select_option("access_token")
    page.get_by_label(re.compile(r"^System\b")).select_option(label=estate["system"].name)
    page.get_by_label(re.compile(r"^Identifier\b")).fill("svc-payments-deploy-2")
    page.get_by_label(re.compile(r"^Store( \*)?$")).select_option(label=estate["credential"].store.name)
    page.get_by_label(re.compile(r"^Store path\b")).fill("secret/data/payments/deploy-token")
    page.get_by_label(re.compile(r"^Purpose\b")).fill("deploy to production")
    page.get_by_label(re.compile(r"^Justification\b")).fill("The new pipeline needs its own token (least privilege).")
    page.get_by_role("button", name="File the request").click()
    page.wait_for_load_state()
    journey.shot("filed")
    assert "pending" in page.content().lower()
    page.get_by_role("button", name="Sign out").click()

    journey.sign_in(personas.approver.username, PASSWORD)
    journey.shot("approver-home")
    assert "Waiting for your decision" in page.content()
    page.locator("section", has_text="Waiting for your decision").get_by_role("link").first.click()
    journey.shot("request-detail")
    page.get_by_label(re.compile(r"^Comment\b")).first.fill("Scoped to deploy only: fine.")
    journey.click_in_place(page.get_by_role("button", name="Approve"), "You approved request")
    journey.shot("approved")
    assert "executed" in page.locator("h1").inner_text().lower()
    assert page.evaluate("document.activeElement.id") == "messages"  # focus lands on the result
    credential = Credential.objects.get(identifier="svc-payments-deploy-2")
    assert credential.workflows.filter(pk=estate["workflow"].pk).exists()


def test_the_sweep_flags_a_problem_and_the_owner_sees_it_at_home(journey, personas, estate):
    from governance.audit import Actor
    from governance.services.catalogue import catalogue_load
    from governance.services.sweep import sweep_run

    Credential.objects.filter(pk=estate["credential"].pk).update(
        last_rotated_at=timezone.now() - dt.timedelta(days=400), scopes=["*"], privilege_level="admin")
    catalogue_load(actor=Actor.system(task_id="e2e"))
    sweep_run(trigger="e2e")
    page = journey.page
    journey.sign_in(personas.owner.username, PASSWORD)
    journey.shot("home-with-findings")
    section = page.locator("h3", has_text="Open findings")
    assert section.count() == 1
    assert "0" not in section.locator(".badge").inner_text()
    page.locator(".grid .card", has_text="Open findings").get_by_role("link").first.click()
    journey.shot("finding")
    assert "What to do" in page.content() and "Controls this evidences" in page.content()
    page.get_by_label("Comment").fill("Rotating it this week")
    journey.click_in_place(page.get_by_role("button", name="Acknowledge"), "acknowledged")
    journey.shot("acknowledged")
    assert "acknowledged" in page.locator("h1").inner_text().lower()
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Home").click()
    page.get_by_role("link", name="payments-deploy", exact=True).first.click()
    page.get_by_role("navigation", name="Sections of this page").get_by_role("link", name="Findings").click()
    journey.shot("workflow-findings-tab")
    assert page.locator("table").get_by_text("payments-deploy-key").count() >= 1


def test_an_owner_answers_an_attestation(journey, personas, estate):
    from tests.factories_attestation import open_campaign

    campaign = open_campaign(personas)
    page = journey.page
    journey.sign_in(personas.owner.username, PASSWORD)
    page.get_by_role("link", name="Attestations", exact=True).click()
    journey.shot("inbox")
    first = page.get_by_role("button", name=re.compile(r"^Confirm (?!all)")).first
    answered = first.get_attribute("aria-label").removeprefix("Confirm ")
    journey.click_in_place(first, "answered")
    journey.shot("one-confirmed")
    assert page.get_by_role("button", name=f"Confirm {answered}", exact=True).count() == 0
    page.get_by_role("button", name="Confirm all").click()
    page.locator("#messages").get_by_text("as unchanged").wait_for()
    journey.shot("confirmed")
    estate["workflow"].refresh_from_db()
    assert estate["workflow"].last_attested_at is not None
    assert campaign.items.filter(assignee=personas.owner, state="answered").exists()


def test_a_security_admin_activates_a_kill_switch_and_sees_it_progress(journey, personas, estate, eager_tasks):
    page = journey.page
    journey.sign_in(personas.secadmin.username, PASSWORD)
    journey.shot("admin-home")
    assert "Open a workflow to activate or drill its kill switch" in page.content()
    page.get_by_role("searchbox", name="Search").fill(estate["workflow"].name)
    page.keyboard.press("Enter")
    page.locator(".search-results").get_by_role("link", name=estate["workflow"].name, exact=True).click()
    page.get_by_role("link", name="Kill switch").click()
    journey.shot("confirm")
    page.get_by_label(re.compile(r"^Reason\b")).fill("Suspicious deploys from an unknown runner")
    page.get_by_role("button", name="Activate the kill switch").click()
    page.wait_for_load_state()
    page.wait_for_timeout(1500)
    journey.shot("progress")
    workflow = Workflow.objects.get(pk=estate["workflow"].pk)
    assert workflow.status == "suspended"
    assert "Suspend the workflow" in page.content()


def test_an_auditor_generates_and_downloads_an_evidence_pack(journey, personas, estate, eager_tasks):
    from pypdf import PdfReader

    from governance.audit import Actor
    from governance.services.catalogue import catalogue_load
    from governance.services.sweep import sweep_run

    catalogue_load(actor=Actor.system(task_id="e2e"))
    sweep_run(trigger="e2e")
    page = journey.page
    journey.sign_in(personas.auditor.username, PASSWORD)
    journey.shot("auditor-home")
    page.get_by_role("link", name="Generate an evidence pack").click()
    kind = page.get_by_label(re.compile(r"^Report\b"))
    kind.select_option("attestation_campaign")  # only the fields of the chosen kind show
    assert page.get_by_label(re.compile(r"^Attestation campaign\b")).is_visible()
    assert not page.get_by_label(re.compile(r"^Framework\b")).is_visible()
    kind.select_option("framework_pack")
    assert not page.get_by_label(re.compile(r"^Attestation campaign\b")).is_visible()
    page.get_by_label(re.compile(r"^Framework\b")).select_option("owasp_nhi_top10_2025")
    journey.shot("report-form")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_load_state()
    page.locator("#report-download a").wait_for(timeout=60_000)
    journey.shot("report-done")
    with page.expect_download() as download_info:
        page.locator("#report-download a").click()
    path = download_info.value.path()
    reader = PdfReader(path)
    text = "".join(p.extract_text() or "" for p in reader.pages)
    assert "NHI2:2025" in text and len(reader.pages) > 2
