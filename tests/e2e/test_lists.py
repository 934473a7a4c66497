"""The lists in a browser (#19 item 8): searchable long selects, select all, a bulk request, a saved view."""

import pytest

from governance.models.approvals import ApprovalRequest
from governance.models.saved_views import SavedView
from tests.factories_approvals import make_policy

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_owner_searches_a_filter_selects_all_and_files_a_bulk_retirement(journey, personas, estate):
    make_policy(groups=[personas.other_team.group])
    page = journey.page
    journey.sign_in(personas.owner.username, "pw-for-tests-1")
    journey.goto("/credentials/")
    search = page.get_by_label("Search the choices of Owner")
    search.fill(str(personas.backup_owner))  # the option labels are full names
    owner = page.locator("select[name=owner]")
    visible = owner.evaluate("s => Array.from(s.options).filter(o => !o.hidden).map(o => o.value)")
    assert "" in visible and str(personas.backup_owner.pk) in visible and str(personas.secadmin.pk) not in visible
    journey.shot("owner-filter-searched")

    page.get_by_role("link", name="Select all on this page").click()
    boxes = page.locator("tbody input[type=checkbox][name=row]")
    assert boxes.count() >= 1 and all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.get_by_role("button", name="Request retirement…").click()
    page.wait_for_load_state()
    page.get_by_label("Reason").fill("The payments service is decommissioned.")
    page.get_by_role("button", name="File 1 request").click()
    page.wait_for_load_state()
    journey.shot("bulk-result")
    assert "1 request filed, 0 refused" in page.locator("h1").inner_text()
    assert ApprovalRequest.objects.filter(action="retirement", target_object_id=str(estate["credential"].pk)).exists()


def test_owner_chooses_columns_and_saves_the_view(journey, personas, estate):
    page = journey.page
    journey.sign_in(personas.owner.username, "pw-for-tests-1")
    journey.goto("/workflows/?status=active")
    page.locator("summary", has_text="Columns").click()
    for label in ("Platform", "Criticality", "Team", "Credentials", "Privileged"):
        page.get_by_role("checkbox", name=label, exact=True).uncheck()
    page.get_by_role("button", name="Show these columns").click()
    page.wait_for_load_state()
    assert [t.strip(" ▲▼") for t in page.locator("thead th").all_inner_texts()][1:] == ["Name", "Status", "Owner"]
    page.locator("summary", has_text="Saved views").click()
    page.get_by_label("Save the current filters, sort and columns as").fill("Active, short")
    page.get_by_role("button", name="Save view").click()
    page.wait_for_load_state()
    journey.shot("view-saved")
    view = SavedView.objects.get(owner=personas.owner, name="Active, short")
    assert view.query == "status=active" and view.columns == ["name", "status", "owner"]
    journey.goto("/workflows/")
    page.get_by_role("link", name="Active, short").click()
    page.wait_for_load_state()
    assert "status=active" in page.url
    assert [t.strip(" ▲▼") for t in page.locator("thead th").all_inner_texts()][1:] == ["Name", "Status", "Owner"]
