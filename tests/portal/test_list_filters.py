"""Issue #19 item 8: every list's filters read plainly: labels, "Any", Yes/No/Any, searchable long selects."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from governance.filtersets import CredentialFilterSet
from governance.filtersets.labels import LabelledFilterSet

pytestmark = [pytest.mark.django_db]

LISTS = ["credential-list", "workflow-list", "system-list", "secretstore-list", "person-list", "finding-list",
         "approval-queue", "approval-mine", "audit-log", "discovery-queue"]


def _filter_form(page: str) -> str:
    match = re.search(r'<form method="get" class="filters".*?</form>', page, re.S)
    assert match, "no filter form"
    return match.group(0)


@pytest.mark.parametrize("name", LISTS)
def test_no_list_shows_django_s_default_filter_words(client, personas, estate, name):
    client.force_login(personas.secadmin)
    response = client.get(reverse(name))
    assert response.status_code == 200
    form = _filter_form(response.content.decode())
    assert "---------" not in form
    assert not re.search(r">Unknown</option>\s*<option value=\"true\">", form)  # a boolean's "any"
    assert "is less than" not in form and "is greater than" not in form
    for label in re.findall(r"<label[^>]*>([^<]*)<", form):
        assert label.strip(), "a filter without a label"


def test_the_credential_filters_say_any_yes_no_and_on_or_before(client, personas, estate):
    client.force_login(personas.owner)
    form = _filter_form(client.get(reverse("credential-list")).content.decode())
    assert "Expires on or before" in form and 'type="date"' in form
    assert re.search(r'<select name="status"[^>]*>\s*<option value="" selected>Any</option>', form)
    assert re.search(r'<select name="orphaned"[^>]*>\s*<option value="unknown" selected>Any</option>\s*'
                     r'<option value="true">Yes</option>\s*<option value="false">No</option>', form)
    owner = re.search(r'<select [^>]*name="owner"[^>]*>', form).group(0)
    assert "data-searchable" in owner  # people, systems, teams and stores: searchable (static/js/longselect.js)
    assert '<option value="">Any</option>' in form


def test_the_control_filter_is_searchable(client, personas, estate):
    client.force_login(personas.owner)
    form = _filter_form(client.get(reverse("finding-list")).content.decode())
    assert re.search(r'<select [^>]*name="control"[^>]*data-searchable|<select [^>]*data-searchable[^>]*name="control"',
                     form)
    assert "Framework control" in form


def test_the_query_parameters_are_unchanged_for_the_api(personas, estate):
    from rest_framework.test import APIClient  # the API client, only in this test

    api = APIClient()
    api.force_login(personas.owner)
    response = api.get("/api/v1/credentials/", {"orphaned": "false",
                                                "owner": personas.owner.pk})
    assert response.status_code == 200, response.content[:500]
    names = {row["name"] for row in response.json()["results"]}
    assert "payments-deploy-key" in names
    assert set(CredentialFilterSet.base_filters) == {"q", "kind", "status", "privilege_level", "system", "store",
                                                     "owner", "team", "orphaned", "managed", "expires_before",
                                                     "lifecycle"}


def test_every_filterset_is_dressed_in_one_place():
    from governance.filtersets import approvals, checks, discovery, integrations  # noqa: F401 (load them all)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    import django_filters

    plain = [cls.__name__ for cls in subclasses(django_filters.FilterSet)
             if cls.__module__.startswith("governance") and not issubclass(cls, LabelledFilterSet)]
    assert plain == []
