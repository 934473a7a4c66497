"""The demo's discovery (governance.demo_discovery): the planted repository and the demo OpenBao as sources,
read once, fill the queue with workflows, undeclared identities, hard-coded secrets and every discovery
check's findings; no planted value reaches the database; adopting an item registers it."""

import pytest
from django.db import connection

from governance.audit import Actor
from governance.demo_discovery import (
    OPENBAO_SOURCE,
    REPOSITORY_SOURCE,
    planted_secrets,
    seed_demo_discovery,
    seed_demo_discovery_openbao,
    write_demo_repository,
)
from governance.demo_lifecycle import KV_STORE
from governance.discovery.review import adoption_initial, discovered_item_adopt
from governance.discovery.services import DISCOVERY_CHECKS
from governance.models.checks import Finding, FindingState
from governance.models.discovery import DiscoveredItem, DiscoveredKind, Reconciliation, ReviewState
from governance.services import inventory as inventory_services
from governance.services.sweep import sweep_run
from tests.factories import CredentialFactory, SecretStoreFactory, SystemFactory
from tests.governance.connectors.conftest import TOKEN_ENV, unique  # the openbao fixture: conftest.py

pytestmark = pytest.mark.django_db


@pytest.fixture
def payments(personas):
    return SystemFactory(name="payments-api", owner=personas.owner, team=personas.team)


def test_the_demo_repository_is_found_with_four_workflows_and_three_secrets(payments, personas, tmp_path):
    summary = seed_demo_discovery(var_dir=tmp_path)
    assert summary["status"] == "succeeded", summary["errors"]
    assert (tmp_path / "demo" / "repositories" / "payments-api.git" / "HEAD").exists()
    items = DiscoveredItem.objects.filter(source__name=REPOSITORY_SOURCE)
    workflows = items.filter(kind=DiscoveredKind.WORKFLOW)
    assert {w.facts["platform"] for w in workflows} == {"GitHub Actions", "GitLab CI", "Jenkins", "Kubernetes"}
    assert workflows.count() == 4
    deploy = workflows.get(natural_key=".github/workflows/deploy.yml")
    assert "DEPLOY_TOKEN" in deploy.facts["secrets"] and deploy.privileged
    assert "nexus-deployer" in workflows.get(natural_key="Jenkinsfile").facts["secrets"]
    secrets = items.filter(kind=DiscoveredKind.HARD_CODED_SECRET)
    assert secrets.count() == 3
    assert {s.facts["path"] for s in secrets} == {"config/aws.yml", ".github/workflows/deploy.yml", ".env"}
    assert secrets.get(facts__path=".env").facts["in_head"] is False  # removed, still in the history
    assert items.filter(kind=DiscoveredKind.SERVICE_ACCOUNT, privileged=True,
                        reconciliation=Reconciliation.UNDECLARED).count() == 1
    assert set(items.values_list("owner", flat=True)) == {personas.owner.pk}

    again = seed_demo_discovery(var_dir=tmp_path)  # seeding twice: the same commits, nothing new
    assert again["items"] == summary["items"]
    assert write_demo_repository(tmp_path / "again.git") == write_demo_repository(tmp_path / "again.git")


def test_with_the_demo_openbao_every_discovery_check_has_a_finding_and_no_value_is_kept(
        payments, personas, tmp_path, openbao):
    store = SecretStoreFactory(name=KV_STORE, kind="openbao_kv", address=openbao.address,
                               settings={"mount": "secret"}, credential_env_var=TOKEN_ENV)
    lost = CredentialFactory(name="ledger signing key", system=payments, store=store,
                             store_path=f"secret/data/{unique('demo-gone')}", owner=personas.owner,
                             team=personas.team)
    seed_demo_discovery(var_dir=tmp_path)
    found = seed_demo_discovery_openbao()
    assert found["skipped"] is False and found["status"] == "succeeded", found
    assert DiscoveredItem.objects.get(source__name=OPENBAO_SOURCE, reconciliation=Reconciliation.MISSING,
                                      linked_credential=lost)
    sweep_run(checks=DISCOVERY_CHECKS, trigger="test")
    for code in DISCOVERY_CHECKS:
        assert Finding.objects.filter(failed_check__code=code).exclude(state=FindingState.RESOLVED).exists(), code

    with connection.cursor() as cursor:
        dumps = []
        for table in ("governance_discovereditem", "governance_discoveryrun", "governance_discoverysource",
                      "governance_auditevent", "governance_finding", "governance_outboxmessage"):
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")  # noqa: S608 - fixed table names
            dumps += [row[0] for row in cursor.fetchall()]
    everything = "\n".join(dumps)
    for value in planted_secrets().values():
        assert value not in everything


def test_the_openbao_source_is_skipped_when_openbao_does_not_answer(db):
    SecretStoreFactory(name=KV_STORE, kind="openbao_kv", address="http://127.0.0.1:9", credential_env_var=TOKEN_ENV)
    assert seed_demo_discovery_openbao()["skipped"] is True


def test_adopting_a_demo_workflow_registers_it(payments, personas, tmp_path):
    seed_demo_discovery(var_dir=tmp_path)
    item = DiscoveredItem.objects.get(source__name=REPOSITORY_SOURCE,
                                      natural_key=".gitlab-ci.yml#nightly-ledger-export")
    data = {k: v for k, v in adoption_initial(item).items() if k in ("name", "kind", "platform", "description")}
    data.update(owner=personas.owner, team=personas.team, systems=[payments])
    workflow, item = discovered_item_adopt(actor=Actor.for_user(personas.owner), item=item, data=data,
                                           register=inventory_services.workflow_create)
    assert workflow.platform == "GitLab CI" and workflow.systems.get() == payments
    assert item.review == ReviewState.ADOPTED and item.linked_workflow == workflow
    assert item.reconciliation == Reconciliation.MATCHED
