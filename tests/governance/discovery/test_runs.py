"""Discovery runs end to end on the database: record, reconcile, findings, review, and no secret value kept."""

import datetime as dt
import json
import logging
import shutil

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from governance.audit import Actor
from governance.discovery.review import (
    adoption_initial,
    discovered_item_adopt,
    discovered_item_dismiss,
    discovered_item_link,
)
from governance.discovery.services import (
    DISCOVERY_CHECKS,
    discovery_run_execute,
    discovery_run_request,
    discovery_runs_schedule,
    discovery_source_create,
)
from governance.models import AuditEvent
from governance.models.checks import Finding, FindingState
from governance.models.discovery import (
    DiscoveredItem,
    DiscoveredKind,
    DiscoveryRun,
    DiscoveryRunStatus,
    Reconciliation,
    ReviewState,
)
from governance.models.outbox import OutboxMessage
from governance.permissions import restrict
from governance.services import inventory as inventory_services
from governance.services.sweep import sweep_run
from tests.factories import CredentialFactory, SystemFactory, WorkflowFactory
from tests.governance.discovery.gitrepo import make_repo
from tests.governance.discovery.test_repository_source import repository_commits

pytestmark = pytest.mark.django_db


@pytest.fixture
def repo(tmp_path):
    commits, token, password, key = repository_commits()
    make_repo(tmp_path / "payments", commits)
    return {"path": tmp_path / "payments", "token": token, "password": password, "key": key}


@pytest.fixture
def system(personas):
    return SystemFactory(name="payments", owner=personas.owner, team=personas.team)


@pytest.fixture
def repo_source(personas, repo, system):
    return discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "payments repository", "kind": "repository", "settings": {"path": str(repo["path"])},
        "system": system})


def run_now(source, trigger="test"):
    run = discovery_run_request(actor=Actor.system(task_id="test"), source=source, trigger=trigger)
    return discovery_run_execute(run_id=run.pk, task_id="test")


def findings(code):
    return Finding.objects.filter(failed_check__code=code).exclude(state=FindingState.RESOLVED)


def test_a_run_records_workflows_identities_and_secrets_and_the_sweep_opens_findings(repo_source, personas):
    run = run_now(repo_source)
    assert run.status == DiscoveryRunStatus.SUCCEEDED, run.errors
    assert run.counts["new"] == run.counts["items"] == 8
    assert run.counts["files"] == 6 and run.counts["commits"] == 3
    items = DiscoveredItem.objects.filter(source=repo_source)
    assert items.filter(kind=DiscoveredKind.WORKFLOW, reconciliation=Reconciliation.UNDECLARED).count() == 4
    assert items.filter(reconciliation=Reconciliation.HARD_CODED_SECRET).count() == 3
    assert set(items.values_list("owner", flat=True)) == {personas.owner.pk}  # the system's owner
    repo_source.refresh_from_db()
    assert repo_source.last_success_at is not None and repo_source.last_error == ""

    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    assert findings("discovery-hard-coded-secret").count() == 3
    assert findings("discovery-hard-coded-secret").first().failed_check.severity == "critical"
    assert findings("discovery-undeclared-workflow").count() == 4
    assert findings("discovery-undeclared-identity").count() == 1  # the Kubernetes service account
    assert findings("discovery-privileged-undeclared-identity").count() == 3  # SA, its CronJob, the deploy


def test_running_again_changes_nothing(repo_source):
    run_now(repo_source)
    second = run_now(repo_source)
    assert second.counts["new"] == 0 and second.counts["changed"] == 0 and second.counts["unchanged"] == 8
    assert second.counts["reconciled_changes"] == 0
    assert DiscoveredItem.objects.count() == 8


def test_a_declared_workflow_is_matched_by_name(repo_source, personas):
    WorkflowFactory(name="payments: Deploy payments", owner=personas.owner, team=personas.team)
    run_now(repo_source)
    item = DiscoveredItem.objects.get(natural_key=".github/workflows/deploy.yml")
    assert item.reconciliation == Reconciliation.MATCHED and item.linked_workflow.name == "payments: Deploy payments"


def test_a_source_that_cannot_be_read_fails_visibly(personas, system, tmp_path):
    source = discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "gone", "kind": "repository", "settings": {"path": str(tmp_path / "gone")}, "system": system})
    run = run_now(source)
    assert run.status == DiscoveryRunStatus.FAILED and "not a directory" in run.errors[0]
    source.refresh_from_db()
    assert source.last_error and source.last_error_at and source.last_success_at is None


def test_one_open_run_per_source_and_the_request_is_outbox_work(repo_source, personas):
    first = discovery_run_request(actor=Actor.for_user(personas.secadmin), source=repo_source)
    again = discovery_run_request(actor=Actor.for_user(personas.owner), source=repo_source)  # the system's owner
    assert again.pk == first.pk
    assert OutboxMessage.objects.filter(task_name="governance.discovery.run", kwargs={"run_id": first.pk}).count() == 1
    with pytest.raises(PermissionDenied):
        discovery_run_request(actor=Actor.for_user(personas.outsider), source=repo_source)
    discovery_run_execute(run_id=first.pk)
    assert discovery_run_execute(run_id=first.pk).status == DiscoveryRunStatus.SUCCEEDED  # redelivery: no change
    assert DiscoveryRun.objects.filter(source=repo_source).count() == 1


def test_the_schedule_requests_due_runs_only(repo_source):
    assert discovery_runs_schedule() == [DiscoveryRun.objects.get().pk]
    assert discovery_runs_schedule() == []  # an open run already
    run = discovery_run_execute(run_id=DiscoveryRun.objects.get().pk)
    assert discovery_runs_schedule(now=run.finished_at + dt.timedelta(minutes=5)) == []
    assert len(discovery_runs_schedule(now=run.finished_at + dt.timedelta(hours=7))) == 1


def test_sources_are_for_security_admins_and_settings_hold_no_secret(personas, system):
    with pytest.raises(PermissionDenied):
        discovery_source_create(actor=Actor.for_user(personas.owner), data={
            "name": "x", "kind": "repository", "settings": {"path": "/srv/x"}})
    with pytest.raises(ValidationError) as error:
        discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
            "name": "x", "kind": "openbao", "settings": {"address": "http://bao:8200",
                                                          "token": "hvs.CAESIFAKEFAKEFAKEFAKEFAKEFAKE0123"}})
    assert "settings" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
            "name": "x", "kind": "postgres", "settings": {}})
    assert "host" in error.value.message_dict["settings"][0]


def test_dismissal_hides_until_the_item_changes_or_the_expiry_passes(repo_source, personas, repo):
    run_now(repo_source)
    item = DiscoveredItem.objects.get(natural_key=".github/workflows/deploy.yml")
    with pytest.raises(ValidationError):
        discovered_item_dismiss(actor=Actor.for_user(personas.owner), item=item, reason="",
                                until=timezone.now() + dt.timedelta(days=30))
    with pytest.raises(PermissionDenied):
        discovered_item_dismiss(actor=Actor.for_user(personas.auditor), item=item, reason="x",
                                until=timezone.now() + dt.timedelta(days=30))
    discovered_item_dismiss(actor=Actor.for_user(personas.owner), item=item, reason="Sandbox deploy, no prod access",
                            until=timezone.now() + dt.timedelta(days=30))
    assert AuditEvent.objects.filter(action="discovery.item_dismiss", object_id=str(item.pk)).exists()
    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    assert not findings("discovery-undeclared-workflow").filter(object_id=item.pk).exists()

    run_now(repo_source)  # nothing changed: still dismissed
    assert DiscoveredItem.objects.get(pk=item.pk).review == ReviewState.DISMISSED
    commits, *_ = repository_commits()
    deploy = commits[1][".github/workflows/deploy.yml"].replace("PAYMENTS_DB_PASSWORD", "LEDGER_DB_PASSWORD")
    shutil.rmtree(repo["path"])  # the same history plus one commit that changes the workflow's secrets
    make_repo(repo["path"], [*commits, {".github/workflows/deploy.yml": deploy}])
    run_now(repo_source)
    item.refresh_from_db()
    assert item.review == ReviewState.PENDING  # it changed: back in the queue
    assert AuditEvent.objects.filter(action="discovery.item_resurfaced", object_id=str(item.pk)).exists()

    discovered_item_dismiss(actor=Actor.for_user(personas.owner), item=item, reason="Still a sandbox",
                            until=timezone.now() + dt.timedelta(days=1))
    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    assert not findings("discovery-undeclared-workflow").filter(object_id=item.pk).exists()
    DiscoveredItem.objects.filter(pk=item.pk).update(dismissed_until=timezone.now() - dt.timedelta(seconds=1))
    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    assert findings("discovery-undeclared-workflow").filter(object_id=item.pk).exists()  # expired: back


def test_adopting_a_workflow_registers_it_through_the_normal_registration(repo_source, personas):
    run_now(repo_source)
    item = DiscoveredItem.objects.get(natural_key="Jenkinsfile")
    initial = adoption_initial(item)
    assert initial["name"] == "payments: Jenkinsfile" and initial["platform"] == "Jenkins"
    assert "nexus-deployer" in initial["description"]
    data = {**{k: v for k, v in initial.items() if k not in ("system",)}, "owner": personas.owner,
            "team": personas.team}
    data["systems"] = [repo_source.system]
    workflow, item = discovered_item_adopt(actor=Actor.for_user(personas.owner), item=item, data=data,
                                           register=inventory_services.workflow_create)
    assert item.review == ReviewState.ADOPTED and item.linked_workflow == workflow
    assert item.reconciliation == Reconciliation.MATCHED
    assert AuditEvent.objects.filter(action="discovery.item_adopt").exists()
    run_now(repo_source)
    assert DiscoveredItem.objects.get(pk=item.pk).reconciliation == Reconciliation.MATCHED


def test_linking_a_secret_links_the_same_secret_wherever_it_is_found(personas, system, tmp_path):
    from tests.governance.discovery.gitrepo import fake_password

    password = fake_password("shared")
    for name in ("one", "two"):
        make_repo(tmp_path / name, [{"app.env": f"DB_PASSWORD={password}\n"}])
    sources = [discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": name, "kind": "repository", "settings": {"path": str(tmp_path / name)}, "system": system})
        for name in ("one", "two")]
    run_now(sources[0])
    credential = CredentialFactory(name="ledger-db", system=system, owner=personas.owner, team=personas.team)
    discovered_item_link(actor=Actor.for_user(personas.owner), item=DiscoveredItem.objects.get(source=sources[0]),
                         target=credential)
    run_now(sources[1])
    second = DiscoveredItem.objects.get(source=sources[1])
    assert second.linked_credential == credential and second.reconciliation == Reconciliation.HARD_CODED_SECRET


def test_owners_see_their_systems_items_and_security_admins_all(repo_source, personas):
    run_now(repo_source)
    assert restrict(DiscoveredItem.objects.all(), personas.owner).count() == 8
    assert restrict(DiscoveredItem.objects.all(), personas.auditor).count() == 8
    assert restrict(DiscoveredItem.objects.all(), personas.outsider).count() == 0
    assert restrict(DiscoveredItem.objects.all(), personas.auditor, "change").count() == 0
    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    visible = restrict(Finding.objects.filter(object_type="governance.discovereditem"), personas.owner)
    assert visible.count() == Finding.objects.filter(object_type="governance.discovereditem").count() > 0
    assert not restrict(Finding.objects.filter(object_type="governance.discovereditem"), personas.outsider).exists()


def test_missing_declared_credentials_and_matched_kv_paths(personas, system, openbao, kv_store):
    from tests.governance.connectors.conftest import TOKEN_ENV, kv_put, unique

    present, absent = f"disc/{unique('here')}", f"disc/{unique('gone')}"
    kv_put(openbao, present, {"value": "v1"})
    found = CredentialFactory(name="here", system=system, store=kv_store, store_path=f"secret/data/{present}",
                              owner=personas.owner, team=personas.team)
    lost = CredentialFactory(name="gone", system=system, store=kv_store, store_path=absent, owner=personas.owner,
                             team=personas.team)
    source = discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "bao", "kind": "openbao", "settings": {"address": openbao.address, "kv_mounts": ["secret"],
                                                         "token_accessors": False},
        "credential_env_var": TOKEN_ENV, "store": kv_store, "system": system})
    run = run_now(source)
    assert run.status == DiscoveryRunStatus.SUCCEEDED, run.errors
    assert DiscoveredItem.objects.get(natural_key=f"secret/{present}").linked_credential == found
    missing = DiscoveredItem.objects.get(reconciliation=Reconciliation.MISSING)
    assert missing.linked_credential == lost and missing.natural_key == f"secret/{absent}"
    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    assert list(findings("discovery-declared-missing").values_list("object_id", flat=True)) == [lost.pk]
    kv_put(openbao, absent, {"value": "back"})
    run_now(source)
    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    assert not findings("discovery-declared-missing").exists()
    assert DiscoveredItem.objects.get(natural_key=f"secret/{absent}").reconciliation == Reconciliation.MATCHED


def test_no_secret_value_reaches_the_database_the_logs_or_the_audit_trail(repo_source, repo, personas, caplog,
                                                                          openbao, kv_store):
    from tests.governance.connectors.conftest import TOKEN_ENV, kv_put, unique

    kv_value = "kv-" + unique("value")
    tag_token = "gh" + "p_" + "FAKEtagTOKEN0" * 3
    path = f"disc/{unique('tagged')}"
    kv_put(openbao, path, {"password": kv_value})
    openbao.client().secrets.kv.v2.update_metadata(path=path, mount_point="secret",
                                                   custom_metadata={"owner": "payments", "note": tag_token})
    bao = discovery_source_create(actor=Actor.for_user(personas.secadmin), data={
        "name": "bao", "kind": "openbao", "settings": {"address": openbao.address, "kv_mounts": ["secret"]},
        "credential_env_var": TOKEN_ENV, "system": repo_source.system})
    caplog.set_level(logging.DEBUG)
    run_now(repo_source)
    run_now(bao)
    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    item = DiscoveredItem.objects.filter(source=repo_source, kind=DiscoveredKind.HARD_CODED_SECRET).first()
    discovered_item_dismiss(actor=Actor.for_user(personas.owner), item=item, reason="rotated already",
                            until=timezone.now() + dt.timedelta(days=3))
    tagged = DiscoveredItem.objects.get(source=bao, natural_key=f"secret/{path}")
    assert tagged.facts["custom_metadata"]["owner"] == "payments"
    assert tagged.facts["custom_metadata"]["note"].startswith("[withheld")

    values = [repo["token"], repo["password"], "FAKEKEYDATA", kv_value, tag_token, openbao.token]
    with connection.cursor() as cursor:
        dumps = []
        for table in ("governance_discovereditem", "governance_discoveryrun", "governance_discoverysource",
                      "governance_auditevent", "governance_finding", "governance_outboxmessage"):
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")  # noqa: S608 - fixed table names
            dumps += [row[0] for row in cursor.fetchall()]
    everything = "\n".join(dumps) + caplog.text + json.dumps([r.getMessage() for r in caplog.records])
    assert AuditEvent.objects.filter(action__startswith="discovery.").exists()
    for value in values:
        assert value not in everything
