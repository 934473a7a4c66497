"""The discovery pages per persona: the review queue, an item and its actions, the sources and their runs."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.audit import Actor
from governance.discovery.services import discovery_run_execute, discovery_run_request, discovery_source_create
from governance.models import AuditEvent, Credential, Workflow
from governance.models.discovery import (
    DiscoveredItem,
    DiscoveredKind,
    DiscoveryRun,
    DiscoveryRunStatus,
    DiscoverySource,
    Reconciliation,
    ReviewState,
)
from governance.models.outbox import OutboxMessage
from tests.factories import CredentialFactory, SystemFactory
from tests.governance.discovery.gitrepo import make_repo
from tests.governance.discovery.test_repository_source import repository_commits

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(personas, tmp_path):
    commits, *_ = repository_commits()
    make_repo(tmp_path / "payments", commits)
    system = SystemFactory(name="payments", owner=personas.owner, team=personas.team)
    source = discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "payments repository", "kind": "repository", "settings": {"path": str(tmp_path / "payments")},
        "system": system})
    run = discovery_run_request(actor=Actor.system(task_id="test"), source=source)
    assert discovery_run_execute(run_id=run.pk).status == DiscoveryRunStatus.SUCCEEDED
    return source


@pytest.fixture
def workflow_item(source):
    return DiscoveredItem.objects.get(source=source, natural_key="Jenkinsfile")


@pytest.fixture
def secret_item(source):
    return DiscoveredItem.objects.filter(source=source, kind=DiscoveredKind.HARD_CODED_SECRET).order_by("pk").first()


def as_user(client, user):
    client.force_login(user)
    return client


def form_data(form) -> dict:
    """What a browser would post back for the form as the page rendered it."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value in (None, "", False, []):
            continue
        if value is True:
            data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(getattr(v, "pk", v)) for v in value]
        elif isinstance(value, dt.datetime):
            data[name] = value.strftime("%Y-%m-%dT%H:%M")
        else:
            data[name] = str(getattr(value, "pk", value))
    return data


def test_the_owner_sees_the_items_of_their_systems_and_can_filter(client, personas, source):
    page = as_user(client, personas.owner).get(reverse("discovery-queue"))
    assert page.status_code == 200
    assert page.context["page_obj"].paginator.count == DiscoveredItem.objects.filter(source=source).count() == 8
    assert "payments: Jenkinsfile" in page.content.decode()
    secrets = client.get(reverse("discovery-queue"), {"reconciliation": "hard_coded_secret"})
    assert {i.kind for i in secrets.context["rows"]} == {DiscoveredKind.HARD_CODED_SECRET}
    assert len(secrets.context["rows"]) == 3
    workflows = client.get(reverse("discovery-queue"), {"kind": "workflow", "source": source.pk, "review": "open"})
    assert len(workflows.context["rows"]) == 4


def test_an_outsider_sees_nothing_and_gets_404_on_another_teams_item(client, personas, workflow_item):
    as_user(client, personas.outsider)
    assert client.get(reverse("discovery-queue")).context["page_obj"].paginator.count == 0
    assert client.get(workflow_item.get_absolute_url()).status_code == 404
    assert client.get(reverse("discovery-source-list")).context["sources"] == []
    assert client.get(workflow_item.source.get_absolute_url()).status_code == 404
    as_user(client, personas.approver)  # another team
    assert client.get(workflow_item.get_absolute_url()).status_code == 404


def test_the_item_page_shows_facts_and_findings_and_offers_actions_to_those_who_may_change(
        client, personas, workflow_item, secret_item):
    from governance.discovery.services import DISCOVERY_CHECKS
    from governance.services.sweep import sweep_run

    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    page = as_user(client, personas.owner).get(workflow_item.get_absolute_url())
    body = page.content.decode()
    assert page.status_code == 200 and "Jenkins" in body and "nexus-deployer" in body
    assert "discovery-undeclared-workflow" in body
    for name in ("discovery-item-adopt", "discovery-item-link", "discovery-item-dismiss"):
        assert reverse(name, args=[workflow_item.pk]) in body
    secret_page = client.get(secret_item.get_absolute_url()).content.decode()
    assert secret_item.fingerprint in secret_page and "discovery-hard-coded-secret" in secret_page


def test_the_auditor_reads_but_has_no_actions_and_cannot_post(client, personas, workflow_item, source):
    as_user(client, personas.auditor)
    page = client.get(workflow_item.get_absolute_url())
    assert page.status_code == 200
    body = page.content.decode()
    assert reverse("discovery-item-dismiss", args=[workflow_item.pk]) not in body
    assert reverse("discovery-item-adopt", args=[workflow_item.pk]) not in body
    future = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    response = client.post(reverse("discovery-item-dismiss", args=[workflow_item.pk]),
                           {"reason": "audit says no", "until": future})
    assert response.status_code in (403, 404)
    assert client.post(reverse("discovery-source-run", args=[source.pk])).status_code in (403, 404)
    assert "Run now" not in client.get(reverse("discovery-source-list")).content.decode()
    workflow_item.refresh_from_db()
    assert workflow_item.review == ReviewState.PENDING
    assert DiscoveryRun.objects.filter(source=source).count() == 1


def test_adopting_a_workflow_through_the_page_registers_and_links_it(client, personas, workflow_item):
    as_user(client, personas.owner)
    url = reverse("discovery-item-adopt", args=[workflow_item.pk])
    form = client.get(url).context["form"]
    assert form["name"].value() == "payments: Jenkinsfile" and form["platform"].value() == "Jenkins"
    data = form_data(form)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors if response.context else None
    workflow = Workflow.objects.get(name="payments: Jenkinsfile")
    assert response["Location"] == workflow.get_absolute_url() and workflow.owner == personas.owner
    workflow_item.refresh_from_db()
    assert workflow_item.review == ReviewState.ADOPTED and workflow_item.linked_workflow == workflow
    assert workflow_item.reconciliation == Reconciliation.MATCHED
    assert AuditEvent.objects.filter(action="discovery.item_adopt", object_id=str(workflow_item.pk)).exists()
    assert client.post(url, data).status_code == 200  # adopted already: refused on the form, nothing new
    assert Workflow.objects.filter(name="payments: Jenkinsfile").count() == 1


def test_adopting_a_hard_coded_secret_registers_a_credential(client, personas, secret_item):
    as_user(client, personas.owner)
    url = reverse("discovery-item-adopt", args=[secret_item.pk])
    data = form_data(client.get(url).context["form"])
    assert data["fingerprint"] == secret_item.fingerprint
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors if response.context else None
    secret_item.refresh_from_db()
    assert secret_item.review == ReviewState.ADOPTED
    assert secret_item.linked_credential == Credential.objects.get(fingerprint=secret_item.fingerprint)
    assert secret_item.reconciliation == Reconciliation.HARD_CODED_SECRET  # still a leaked secret


def test_dismissing_with_a_past_date_shows_a_field_error_and_changes_nothing(client, personas, workflow_item):
    as_user(client, personas.owner)
    url = reverse("discovery-item-dismiss", args=[workflow_item.pk])
    past = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    response = client.post(url, {"reason": "sandbox", "until": past})
    assert response.status_code == 200
    assert "until" in response.context["form"].errors
    assert "future" in response.context["form"].errors["until"][0]
    response = client.post(url, {"reason": "", "until": "not a date"})
    assert set(response.context["form"].errors) == {"reason", "until"}
    workflow_item.refresh_from_db()
    assert workflow_item.review == ReviewState.PENDING and workflow_item.dismissed_until is None
    assert not AuditEvent.objects.filter(action="discovery.item_dismiss").exists()

    future = timezone.localdate() + dt.timedelta(days=30)
    response = client.post(url, {"reason": "Sandbox deploy, no production access", "until": future.isoformat()})
    assert response.status_code == 302
    workflow_item.refresh_from_db()
    assert workflow_item.review == ReviewState.DISMISSED
    assert timezone.localtime(workflow_item.dismissed_until).date() == future


def test_linking_offers_what_the_user_may_change_and_links(client, personas, secret_item, estate):
    credential = CredentialFactory(name="ledger-db", system=secret_item.source.system, owner=personas.owner,
                                   team=personas.team)
    as_user(client, personas.owner)
    url = reverse("discovery-item-link", args=[secret_item.pk])
    choices = set(client.get(url).context["form"].fields["target"].queryset)
    assert credential in choices and estate["other_credential"] not in choices
    response = client.post(url, {"target": estate["other_credential"].pk})  # another team's: not a choice
    assert response.status_code == 200 and "target" in response.context["form"].errors
    assert client.post(url, {"target": credential.pk}).status_code == 302
    secret_item.refresh_from_db()
    assert secret_item.review == ReviewState.LINKED and secret_item.linked_credential == credential


def test_run_now_queues_a_run_and_its_page_shows_it(client, personas, source):
    as_user(client, personas.secadmin)
    sources = client.get(reverse("discovery-source-list"))
    assert "Run now" in sources.content.decode()
    response = client.post(reverse("discovery-source-run", args=[source.pk]))
    run = DiscoveryRun.objects.get(source=source, status=DiscoveryRunStatus.PENDING)
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.requested_by == personas.secadmin and run.trigger == "manual"
    assert OutboxMessage.objects.filter(task_name="governance.discovery.run", kwargs={"run_id": run.pk}).exists()
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200 and b'http-equiv="refresh"' in page.content  # reloads while it is open
    client.post(reverse("discovery-source-run", args=[source.pk]))  # a second click: the same run
    assert DiscoveryRun.objects.filter(source=source, status=DiscoveryRunStatus.PENDING).count() == 1
    discovery_run_execute(run_id=run.pk)
    page = client.get(run.get_absolute_url())
    assert b'http-equiv="refresh"' not in page.content and b"unchanged" in page.content


def test_a_broken_source_shows_its_last_error_on_the_sources_page(client, personas, source, tmp_path):
    broken = discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "gone repository", "kind": "repository", "settings": {"path": str(tmp_path / "gone")},
        "system": source.system})
    run = discovery_run_request(actor=Actor.system(task_id="test"), source=broken)
    assert discovery_run_execute(run_id=run.pk).status == DiscoveryRunStatus.FAILED
    page = as_user(client, personas.owner).get(reverse("discovery-source-list"))
    body = page.content.decode()
    assert "not a directory" in body
    rows = {s.name: s for s in page.context["sources"]}
    assert rows["gone repository"].failing and not rows["payments repository"].failing
    assert "not a directory" in client.get(run.get_absolute_url()).content.decode()
    assert "Run now" in body  # the owner of the source's system may run it too


def test_security_admins_register_and_edit_sources_through_the_service(client, personas, source, tmp_path):
    as_user(client, personas.owner)
    assert client.get(reverse("discovery-source-create")).status_code == 404
    assert client.post(reverse("discovery-source-edit", args=[source.pk]), {"name": "x"}).status_code == 404
    as_user(client, personas.secadmin)
    url = reverse("discovery-source-create")
    base = {"name": "ops directory", "kind": "repository", "schedule_seconds": "3600", "enabled": "on"}
    response = client.post(url, {**base, "settings": "{}"})  # no path: the service names the setting
    assert response.status_code == 200 and "path" in str(response.context["form"].errors["settings"])
    token = "gh" + "p_" + "FAKEsettingsTOKEN0" * 2
    response = client.post(url, {**base, "settings": f'{{"path": "/srv/ops", "token": "{token}"}}'})
    assert response.status_code == 200 and "settings" in response.context["form"].errors
    response = client.post(url, {**base, "settings": '{"path": "%s"}' % (tmp_path / "ops"),
                                 "credential_env_var": "not a name"})
    assert response.status_code == 200 and "credential_env_var" in response.context["form"].errors
    assert not DiscoverySource.objects.filter(name="ops directory").exists()
    response = client.post(url, {**base, "settings": '{"path": "%s"}' % (tmp_path / "ops"),
                                 "system": source.system_id})
    created = DiscoverySource.objects.get(name="ops directory")
    assert response.status_code == 302 and response["Location"] == created.get_absolute_url()
    assert AuditEvent.objects.filter(action="discovery.source_create", object_id=str(created.pk)).exists()
    edit = reverse("discovery-source-edit", args=[created.pk])
    response = client.post(edit, {**base, "settings": '{"path": "%s"}' % (tmp_path / "ops"), "schedule_seconds": "5"})
    assert response.status_code == 200 and "schedule_seconds" in response.context["form"].errors
    assert client.post(edit, {**base, "settings": '{"path": "%s"}' % (tmp_path / "ops2")}).status_code == 302
    created.refresh_from_db()
    assert created.settings == {"path": str(tmp_path / "ops2")}
