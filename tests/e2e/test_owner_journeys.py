"""Owner journeys from the home page, as a new user would do them."""

import pytest

from governance.models import AuditEvent, Workflow

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_owner_registers_a_workflow_and_sees_its_governance_record(journey, personas, estate):
    page = journey.page
    journey.sign_in(personas.owner.username, "pw-for-tests-1")
    journey.shot("home")
    page.get_by_role("link", name="Workflows", exact=True).first.click()
    page.get_by_role("link", name="Register workflow").click()
    journey.shot("register-form")
    page.get_by_label("Name").fill("payments-reconcile")
    page.get_by_label("Kind").select_option("scheduled_job")
    page.get_by_label("Platform").fill("Airflow")
    page.get_by_label("Team").select_option(label=personas.team.name)
    page.get_by_role("button", name="Register").click()
    page.wait_for_load_state()
    journey.shot("registered")
    assert "registered" in page.locator(".messages").inner_text()
    workflow = Workflow.objects.get(name="payments-reconcile")
    assert workflow.owner == personas.owner
    assert AuditEvent.objects.filter(action="workflow.create", object_id=str(workflow.pk)).exists()
    record = page.locator(".governance-record").inner_text()
    assert "Credential source" in record and "missing" in record


def test_bad_input_shows_a_form_error_and_loses_nothing(journey, personas, estate):
    page = journey.page
    journey.sign_in(personas.owner.username, "pw-for-tests-1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Credentials").click()
    page.get_by_role("link", name=estate["credential"].name, exact=True).click()
    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_label("Identifier").fill("ghp_" + "Zx8Qm2Lr7Tn4Vb1Kc9Wd3Hf6Jg5Ps0YeAb12")
    page.get_by_label("Notes").fill("kept after the error")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    journey.shot("secret-rejected")
    assert "never stores secret values" in page.content()
    assert page.get_by_label("Notes").input_value() == "kept after the error"
