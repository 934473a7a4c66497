"""Discovery over the API: discovered items (list, detail, dismiss, link), sources (run now) and runs.

The items come from a real run over a git repository with planted fake secrets; no secret value is in
any answer, an outsider sees nothing, the auditor reads but reviews nothing, bad input answers 400 with
the field, and tokens need file_requests (review) or discovery:run (run now)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit import Actor
from governance.discovery.services import discovery_run_execute, discovery_run_request, discovery_source_create
from governance.models.discovery import DiscoveredItem, DiscoveredKind, DiscoveryRun, DiscoveryRunStatus, ReviewState
from governance.models.outbox import OutboxMessage
from tests.factories import CredentialFactory, SystemFactory
from tests.factories_integrations import bearer, make_integration
from tests.governance.discovery.gitrepo import make_repo
from tests.governance.discovery.test_repository_source import repository_commits

pytestmark = pytest.mark.django_db


@pytest.fixture
def planted(personas, tmp_path):
    commits, token, password, key = repository_commits()
    make_repo(tmp_path / "payments", commits)
    system = SystemFactory(name="payments", owner=personas.owner, team=personas.team)
    source = discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "payments repository", "kind": "repository", "settings": {"path": str(tmp_path / "payments")},
        "system": system})
    run = discovery_run_execute(run_id=discovery_run_request(actor=Actor.system(task_id="t"), source=source).pk)
    assert run.status == DiscoveryRunStatus.SUCCEEDED
    return {"source": source, "run": run, "system": system, "values": [token, password, "FAKEKEYDATA"]}


def session(user):
    client = APIClient()
    client.force_login(user)
    return client


def rows(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_items_list_filter_and_detail_without_any_secret_value(personas, planted):
    client = session(personas.owner)
    url = reverse("v1:discovereditem-list")
    listed = rows(client.get(url))
    assert len(listed) == 8
    secrets = rows(client.get(url, {"reconciliation": "hard_coded_secret"}))
    assert len(secrets) == 3 and all(len(s["fingerprint"]) == 64 for s in secrets)
    workflows = rows(client.get(url, {"kind": "workflow", "source": planted["source"].pk}))
    assert {w["natural_key"] for w in workflows} >= {"Jenkinsfile", ".github/workflows/deploy.yml"}
    detail = client.get(reverse("v1:discovereditem-detail", args=[secrets[0]["id"]]))
    assert detail.status_code == 200 and detail.json()["facts"]["detector"]
    everything = client.get(url).content.decode() + detail.content.decode()
    for value in planted["values"]:
        assert value not in everything
    assert rows(session(personas.outsider).get(url)) == []
    assert session(personas.outsider).get(reverse("v1:discovereditem-detail", args=[secrets[0]["id"]])
                                          ).status_code == 404


def test_dismiss_validates_the_expiry_and_the_auditor_may_not(personas, planted):
    item = DiscoveredItem.objects.get(source=planted["source"], natural_key="Jenkinsfile")
    url = reverse("v1:discovereditem-dismiss", args=[item.pk])
    past = (timezone.now() - dt.timedelta(days=1)).isoformat()
    response = session(personas.owner).post(url, {"reason": "sandbox", "until": past}, format="json")
    assert response.status_code == 400 and "until" in response.content.decode()
    assert session(personas.auditor).post(url, {"reason": "no", "until": (
        timezone.now() + dt.timedelta(days=5)).isoformat()}, format="json").status_code == 403
    item.refresh_from_db()
    assert item.review == ReviewState.PENDING
    until = timezone.now() + dt.timedelta(days=30)
    response = session(personas.owner).post(url, {"reason": "Sandbox only", "until": until.isoformat()},
                                            format="json")
    assert response.status_code == 200 and response.json()["review"] == "dismissed"
    item.refresh_from_db()
    assert item.review == ReviewState.DISMISSED and item.dismissed_until == until


def test_link_a_secret_to_a_credential_and_tokens_need_file_requests(personas, planted, estate):
    item = DiscoveredItem.objects.filter(source=planted["source"], kind=DiscoveredKind.HARD_CODED_SECRET).first()
    credential = CredentialFactory(name="ledger-db", system=planted["system"], owner=personas.owner,
                                   team=personas.team)
    url = reverse("v1:discovereditem-link", args=[item.pk])
    _, reader = make_integration(owner=personas.owner, scopes=["read"], name="disc-reader")
    assert APIClient().post(url, {"credential": credential.pk}, format="json",
                            **bearer(reader)).status_code == 403
    client = session(personas.owner)
    assert client.post(url, {"credential": estate["other_credential"].pk}, format="json").status_code == 400
    assert client.post(url, {}, format="json").status_code == 400
    assert client.post(url, {"workflow": estate["workflow"].pk}, format="json").status_code == 400  # wrong kind
    _, filer = make_integration(owner=personas.owner, scopes=["read", "file_requests"], name="disc-filer")
    response = APIClient().post(url, {"credential": credential.pk}, format="json", **bearer(filer))
    assert response.status_code == 200, response.content
    assert response.json()["linked_credential"] == credential.pk and response.json()["review"] == "linked"


def test_sources_show_errors_and_run_now_queues_a_run(personas, planted, tmp_path):
    broken = discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "gone", "kind": "repository", "settings": {"path": str(tmp_path / "gone")},
        "system": planted["system"]})
    discovery_run_execute(run_id=discovery_run_request(actor=Actor.system(task_id="t"), source=broken).pk)
    sources = {s["name"]: s for s in rows(session(personas.owner).get(reverse("v1:discoverysource-list")))}
    assert "not a directory" in sources["gone"]["last_error"] and sources["gone"]["last_error_at"]
    assert sources["payments repository"]["latest_run_status"] == "succeeded"
    assert sources["payments repository"]["item_count"] == 8

    url = reverse("v1:discoverysource-run", args=[planted["source"].pk])
    assert session(personas.auditor).post(url).status_code == 403
    assert session(personas.outsider).post(url).status_code == 404
    _, without = make_integration(owner=personas.secadmin, scopes=["read"], name="disc-no-run")
    assert APIClient().post(url, **bearer(without)).status_code == 403
    _, runner = make_integration(owner=personas.secadmin, scopes=["read", "discovery:run"], name="disc-runner")
    response = APIClient().post(url, **bearer(runner))
    assert response.status_code == 202, response.content
    run = DiscoveryRun.objects.get(pk=response.json()["id"])
    assert run.status == DiscoveryRunStatus.PENDING and run.trigger == "api"
    assert response["Location"] == reverse("v1:discoveryrun-detail", args=[run.pk])
    assert OutboxMessage.objects.filter(task_name="governance.discovery.run", kwargs={"run_id": run.pk}).exists()
    again = session(personas.secadmin).post(url)
    assert again.status_code == 202 and again.json()["id"] == run.pk  # one open run per source

    discovery_run_execute(run_id=run.pk)
    detail = session(personas.owner).get(response["Location"]).json()
    assert detail["status"] == "succeeded" and detail["counts"]["unchanged"] == 8
    assert detail["duration_seconds"] is not None
    runs = rows(session(personas.owner).get(reverse("v1:discoveryrun-list")))
    assert {r["id"] for r in runs} >= {run.pk, planted["run"].pk}
    assert rows(session(personas.outsider).get(reverse("v1:discoveryrun-list"))) == []
