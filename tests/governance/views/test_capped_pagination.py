"""Lists count at most a cap of rows (governance.pagination): above it they say so and still page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.models import Credential
from governance.pagination import CappedPaginator
from governance.views import common
from tests.factories import CredentialFactory

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def twelve(estate, personas):
    CredentialFactory.create_batch(10, owner=personas.owner, team=personas.team, system=estate["system"])
    return Credential.objects.order_by("name", "pk")


def test_above_the_cap_the_count_is_more_than_and_every_page_still_works(twelve):
    paginator = CappedPaginator(twelve, 2, cap=5)
    with CaptureQueriesContext(connection) as captured:
        assert paginator.capped and paginator.count_label == "more than 5"
    assert len(captured.captured_queries) == 1 and "LIMIT 6" in captured.captured_queries[0]["sql"]
    names = list(twelve.values_list("name", flat=True))
    fourth = paginator.get_page(4)  # beyond the cap: 4 x 2 > 5
    assert [c.name for c in fourth] == names[6:8] and fourth.has_next() and fourth.has_previous()
    assert fourth.next_page_number() == 5 and fourth.previous_page_number() == 3
    assert (fourth.start_index(), fourth.end_index()) == (7, 8)
    last = paginator.get_page(6)
    assert [c.name for c in last] == names[10:12] and not last.has_next()
    past = paginator.get_page(9)
    assert list(past) == [] and not past.has_next() and past.has_previous()
    assert list(paginator.get_page("x")) == list(paginator.get_page(1)) == list(twelve[:2])


def test_below_the_cap_it_is_django_s_paginator(twelve):
    paginator = CappedPaginator(twelve, 5, cap=100)
    assert not paginator.capped and paginator.count == 12 and paginator.num_pages == 3
    assert paginator.count_label == "12"
    assert [c.pk for c in paginator.get_page(99)] == list(twelve.values_list("pk", flat=True))[10:]


def test_the_list_page_says_more_than_the_cap_and_pages_on(client, personas, twelve, settings, monkeypatch):
    settings.STEWARD_LIST_COUNT_CAP = 5
    monkeypatch.setattr(common, "PAGE_SIZE", 2)
    client.force_login(personas.owner)
    first = client.get(reverse("credential-list"), {"sort": "name"})
    assert first.status_code == 200
    text = first.content.decode()
    assert "more than 5 in all" in text and "page=2" in text and "Previous" not in text
    names = list(twelve.values_list("name", flat=True))
    beyond = client.get(reverse("credential-list"), {"sort": "name", "page": 5})
    assert [c.name for c in beyond.context["rows"]] == names[8:10]
    text = beyond.content.decode()
    assert "Page 5 · more than 5 in all" in text and "page=4" in text and "page=6" in text
    last = client.get(reverse("credential-list"), {"sort": "name", "page": 6})
    assert "page=7" not in last.content.decode() and "page=5" in last.content.decode()


def test_below_the_cap_the_page_gives_the_exact_count(client, personas, twelve, monkeypatch):
    monkeypatch.setattr(common, "PAGE_SIZE", 5)
    client.force_login(personas.owner)
    text = client.get(reverse("credential-list")).content.decode()
    assert "Page 1 of 3 · 11 in all" in text  # all but the other team's credential
