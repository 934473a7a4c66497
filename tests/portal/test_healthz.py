import pytest
from django.urls import reverse

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_healthz_reports_database_and_broker(client):
    response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 200, body
    assert body["database"]["ok"] and body["broker"]["ok"]


def test_healthz_is_503_when_the_broker_does_not_answer(client, monkeypatch):
    from portal.celery import app

    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(app.conf.changes, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["broker"]["ok"] is False and body["database"]["ok"] is True
