"""Issue #19 item 8: columns people choose, views they save, and bulk requests through the same services."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from guardian.shortcuts import assign_perm

from governance.lists import LISTS
from governance.models import Credential
from governance.models.approvals import ApprovalRequest
from governance.models.checks import Finding
from governance.models.saved_views import SavedView
from governance.services import bulk as bulk_services
from tests.factories import CredentialFactory, WorkflowFactory
from tests.factories_approvals import make_policy

pytestmark = [pytest.mark.django_db]


def _headers(page: str) -> list[str]:
    thead = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)
    return [re.sub(r"<[^>]+>|[▲▼]", "", cell).strip() for cell in re.findall(r"<th[^>]*>(.*?)</th>", thead, re.S)]


# Saved views -------------------------------------------------------------------------------------------------


def test_a_saved_view_round_trip_save_apply_delete(client, personas, estate):
    client.force_login(personas.owner)
    response = client.post(reverse("saved-view-create", args=["credential"]), {
        "name": "Active by expiry", "query": "status=active&sort=-expires&page=3", "columns": ["kind", "expires"]})
    assert response.status_code == 302
    view = SavedView.objects.get(owner=personas.owner, list_key="credential", name="Active by expiry")
    assert view.query == "status=active&sort=-expires"  # the page is not part of a view
    assert view.columns == ["name", "kind", "expires"]  # the name column always
    page = client.get(reverse("credential-list")).content.decode()
    assert reverse("saved-view-apply", args=[view.pk]) in page and "Active by expiry" in page

    applied = client.get(reverse("saved-view-apply", args=[view.pk]))
    assert applied.status_code == 302
    assert applied.url == "/credentials/?status=active&sort=-expires&columns=name&columns=kind&columns=expires"
    listed = client.get(applied.url)
    assert _headers(listed.content.decode())[1:] == ["Name", "Kind", "Expires"]
    assert listed.context["sort"] == "-expires" and listed.context["filter"].form.cleaned_data["status"] == "active"

    deleted = client.post(reverse("saved-view-delete", args=[view.pk]))
    assert deleted.status_code == 302 and not SavedView.objects.filter(pk=view.pk).exists()


def test_another_person_s_saved_view_is_missing(client, personas, estate):
    client.force_login(personas.owner)
    client.post(reverse("saved-view-create", args=["workflow"]), {"name": "Mine", "query": "status=active"})
    view = SavedView.objects.get(owner=personas.owner)
    for other in (personas.backup_owner, personas.secadmin):
        client.force_login(other)
        assert client.get(reverse("saved-view-apply", args=[view.pk])).status_code == 404
        assert client.post(reverse("saved-view-delete", args=[view.pk])).status_code == 404
        assert "Mine" not in client.get(reverse("workflow-list")).content.decode()
    assert SavedView.objects.filter(pk=view.pk).exists()


@pytest.mark.parametrize(("query", "message"), [
    ("status=active&is_staff=1", "Not a filter or sort of this list: is_staff"),
    ("sort=password", "cannot be sorted by"),
    ("status=bogus", "Status: Select a valid choice"),
])
def test_a_crafted_query_string_is_refused_with_a_form_error_and_nothing_is_lost(client, personas, estate, query,
                                                                                 message):
    client.force_login(personas.owner)
    response = client.post(reverse("saved-view-create", args=["credential"]),
                           {"name": "Crafted", "query": query, "columns": ["kind"]})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["query"])
    page = response.content.decode()
    assert 'value="Crafted"' in page and re.search(r'value="kind"[^>]* checked', page)
    assert not SavedView.objects.exists()


def test_a_view_name_is_one_per_list_and_person(client, personas, estate):
    client.force_login(personas.owner)
    url = reverse("saved-view-create", args=["system"])
    assert client.post(url, {"name": "Prod", "query": "environment=prod"}).status_code == 302
    again = client.post(url, {"name": "Prod", "query": "environment=dev"})
    assert again.status_code == 200 and "already have a view named" in " ".join(again.context["form"].errors["name"])
    client.force_login(personas.backup_owner)  # another person may use the same name
    assert client.post(url, {"name": "Prod", "query": "environment=prod"}).status_code == 302
    assert SavedView.objects.filter(name="Prod").count() == 2


def test_a_view_of_a_list_without_views_is_missing(client, personas):
    client.force_login(personas.owner)
    assert client.post(reverse("saved-view-create", args=["audit"]), {"name": "x"}).status_code == 404


# Columns -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["credential-list", "workflow-list", "system-list", "finding-list"])
def test_the_columns_chooser_changes_the_columns_and_not_the_query_count(client, personas, estate, name):
    spec = next(s for s in LISTS.values() if s.url_name == name)
    client.force_login(personas.owner)
    if name == "finding-list":
        from governance.services.sweep import sweep_run  # findings come from a sweep of the estate

        WorkflowFactory(name="orphan-flow", owner=None, team=None)
        sweep_run(trigger="test")
    everything = client.get(reverse(name))
    assert everything.context["rows"], "the list needs rows to show columns"
    assert [c.label for c in spec.chosen(())] == [h for h in _headers(everything.content.decode()) if h != "Select"]
    assert not {c.key for c in spec.chosen(())} & set(spec.hidden_by_default)  # shown once chosen
    few = spec.choosable[0].key
    url = f"{reverse(name)}?columns={spec.always.key}&columns={few}"
    with CaptureQueriesContext(connection) as all_columns:
        client.get(reverse(name))
    with CaptureQueriesContext(connection) as two_columns:
        chosen = client.get(url)
    assert len(two_columns) == len(all_columns)
    assert [h for h in _headers(chosen.content.decode()) if h != "Select"] == [spec.always.label,
                                                                               spec.choosable[0].label]
    # the filters and the sort links keep the chosen columns
    assert f'<input type="hidden" name="columns" value="{few}">' in chosen.content.decode()


def test_more_rows_cost_no_more_queries_whatever_the_columns(client, personas, estate):
    client.force_login(personas.owner)
    url = reverse("credential-list") + "?columns=name&columns=system&columns=store&columns=owner&columns=workflows"
    with CaptureQueriesContext(connection) as few_rows:
        client.get(url)
    for n in range(6):
        CredentialFactory(name=f"extra-{n}", system=estate["system"], owner=personas.owner, team=personas.team)
    with CaptureQueriesContext(connection) as more_rows:
        response = client.get(url)
    assert len(response.context["rows"]) == 7
    assert len(more_rows) == len(few_rows)


def test_unknown_columns_are_ignored_and_the_name_always_shows(client, personas, estate):
    client.force_login(personas.owner)
    page = client.get(reverse("workflow-list") + "?columns=status&columns=secret_sauce").content.decode()
    assert [h for h in _headers(page) if h != "Select"] == ["Name", "Status"]


# Bulk requests -----------------------------------------------------------------------------------------------


@pytest.fixture
def policy(personas):
    return make_policy(groups=[personas.other_team.group])


def _bulk(client, kind, action, rows, **data):
    url = reverse(f"{kind}-bulk-{'transfer' if action == 'ownership_transfer' else 'retire'}")
    return client.post(url, {"row": rows, "confirm": "1", **data})


def test_bulk_transfer_files_one_request_per_row_through_the_service(client, personas, estate, policy, monkeypatch):
    second = CredentialFactory(name="payments-second-key", system=estate["system"], owner=personas.owner,
                               team=personas.team)
    calls = []
    real = bulk_services.approval_request_file
    monkeypatch.setattr(bulk_services, "approval_request_file",
                        lambda **kwargs: calls.append(kwargs["target"].pk) or real(**kwargs))
    client.force_login(personas.owner)
    # step one: the ticked rows from the list, the form (nothing filed yet)
    step = client.post(reverse("credential-bulk-transfer"), {"row": [estate["credential"].pk, second.pk]})
    assert step.status_code == 200 and not ApprovalRequest.objects.exists()
    assert "payments-second-key" in step.content.decode()
    response = _bulk(client, "credential", "ownership_transfer", [estate["credential"].pk, second.pk],
                     new_owner=personas.backup_owner.pk, reason="Olivia moves to the platform team.")
    assert response.status_code == 200, response.content.decode()[:3000]
    assert sorted(calls) == sorted([estate["credential"].pk, second.pk])
    requests = ApprovalRequest.objects.filter(action="ownership_transfer").order_by("target_object_id")
    assert [r.target_object_id for r in requests] == sorted([str(estate["credential"].pk), str(second.pk)])
    assert all(r.payload == {"new_owner": personas.backup_owner.pk, "new_team": None} for r in requests)
    assert all(r.justification == "Olivia moves to the platform team." for r in requests)
    page = response.content.decode()
    for r in requests:
        assert f"request #{r.pk}" in page
    assert Credential.objects.get(pk=second.pk).owner == personas.owner  # a request, not the change itself


def test_the_single_form_and_the_bulk_form_file_the_same_request(client, personas, estate, policy):
    client.force_login(personas.owner)
    _bulk(client, "workflow", "retirement", [estate["workflow"].pk], reason="Replaced by the new pipeline.")
    bulk = ApprovalRequest.objects.get(action="retirement")
    assert bulk.target_object_id == str(estate["workflow"].pk) and bulk.payload == {}
    # the single-object form now refuses the same request: it is the same one, already pending
    single = client.post(f"/approvals/new/retirement/?object=workflow:{estate['workflow'].pk}",
                         {"justification": "Replaced by the new pipeline."})
    assert single.status_code == 200 and "already pending" in single.content.decode()


def test_bulk_retirement_reports_each_refusal_with_the_service_s_message(client, personas, estate, policy):
    client.force_login(personas.owner)
    revoked = CredentialFactory(name="payments-old-key", system=estate["system"], owner=personas.owner,
                                team=personas.team, status="revoked")
    viewer_only = CredentialFactory(name="platform-shared", system=estate["other_system"], owner=personas.approver,
                                    team=personas.other_team)
    assign_perm("view_credential", personas.owner, viewer_only)  # may see it, may not change it
    first = _bulk(client, "credential", "retirement", [estate["credential"].pk], reason="Decommissioned.")
    assert first.status_code == 200
    rows = [estate["credential"].pk, revoked.pk, viewer_only.pk, estate["other_credential"].pk]
    response = _bulk(client, "credential", "retirement", rows, reason="Decommissioned.")
    outcomes = {o.row_id: o for o in response.context["outcomes"]}
    assert [o.row_id for o in response.context["outcomes"]] == rows  # every row answered, none skipped
    assert "already pending" in outcomes[estate["credential"].pk].refused
    assert "already revoked" in outcomes[revoked.pk].refused
    assert "Only the owner or team of platform-shared" in outcomes[viewer_only.pk].refused
    assert outcomes[estate["other_credential"].pk].refused == "No such credential (or you may not see it)."
    assert outcomes[estate["other_credential"].pk].label == f"#{estate['other_credential'].pk}"  # no name leaks
    assert ApprovalRequest.objects.filter(action="retirement").count() == 1
    assert "1 request filed" not in response.content.decode() and "0 requests filed, 4 refused" in \
        response.content.decode()


def test_an_outsider_cannot_act_on_rows_they_cannot_see(client, personas, estate, policy):
    client.force_login(personas.outsider)
    response = _bulk(client, "workflow", "ownership_transfer", [estate["workflow"].pk, estate["other_workflow"].pk],
                     new_owner=personas.outsider.pk, reason="Mine now.")
    assert response.status_code == 200
    assert all(o.refused.startswith("No such workflow") for o in response.context["outcomes"])
    assert "payments-deploy" not in response.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_auditors_file_nothing_and_bad_input_loses_nothing(client, personas, estate, policy):
    client.force_login(personas.auditor)
    assert _bulk(client, "credential", "retirement", [estate["credential"].pk], reason="x").status_code == 404
    client.force_login(personas.owner)
    missing = _bulk(client, "credential", "ownership_transfer", [estate["credential"].pk], reason="Moving on.")
    assert missing.status_code == 200 and missing.context["form"].errors["new_owner"]
    page = missing.content.decode()
    assert "Moving on." in page and f'name="row" value="{estate["credential"].pk}"' in page
    nothing = client.post(reverse("credential-bulk-retire"), {"reason": "x", "next": "/credentials/"})
    assert nothing.status_code == 302 and nothing.url == "/credentials/"
    assert not ApprovalRequest.objects.exists()


def test_the_lists_offer_row_selection_and_select_all(client, personas, estate):
    client.force_login(personas.owner)
    page = client.get(reverse("credential-list")).content.decode()
    assert 'type="checkbox" name="row"' in page and "Request ownership transfer" in page and "data-select-all" in page
    assert "checked" not in re.search(r'<input type="checkbox" name="row"[^>]*>', page).group(0)
    ticked = client.get(reverse("workflow-list") + "?select=page").content.decode()
    assert re.search(r'<input type="checkbox" name="row"[^>]*checked', ticked)
    client.force_login(personas.auditor)
    assert 'name="row"' not in client.get(reverse("credential-list")).content.decode()


def test_findings_bulk_acknowledge_keeps_working_with_select_all(client, personas, estate):
    from governance.services.sweep import sweep_run  # findings come from a sweep of the estate

    sweep_run(trigger="test")
    client.force_login(personas.owner)
    response = client.get(reverse("finding-list") + "?select=page")
    page = response.content.decode()
    boxes = re.findall(r'<input type="checkbox" name="finding"[^>]*>', page)
    assert boxes and all(" checked" in box for box in boxes) and "data-select-all" in page
    ids = [int(re.search(r'value="(\d+)"', box).group(1)) for box in boxes]
    done = client.post(reverse("finding-acknowledge"), {"finding": ids, "comment": "", "next": "/findings/"})
    assert done.status_code == 302
    assert not any(f.state == "open" for f in Finding.objects.filter(pk__in=ids))
