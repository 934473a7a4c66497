import pytest
from django.urls import reverse

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_search_finds_only_what_the_user_may_see(client, personas, estate):
    client.force_login(personas.owner)
    body = client.get(reverse("search"), {"q": "pay"}).content.decode()
    assert "payments-deploy" in body and "payments-deploy-key" in body
    body = client.get(reverse("search"), {"q": "platform"}).content.decode()
    assert "platform-sync" not in body and "platform-token" not in body


def test_search_by_identifier_and_person(client, personas, estate):
    client.force_login(personas.auditor)
    credential = estate["other_credential"]
    body = client.get(reverse("search"), {"q": credential.identifier}).content.decode()
    assert credential.name in body
    body = client.get(reverse("search"), {"q": "olivia"}).content.decode()
    assert "olivia.owner" in body


def test_short_queries_ask_for_more(client, personas):
    client.force_login(personas.owner)
    assert b"at least two characters" in client.get(reverse("search"), {"q": "a"}).content
