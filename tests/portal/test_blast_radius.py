"""The workflow detail page draws the workflow's blast radius as an inline SVG."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.choices import SecretStoreKind
from governance.models import Binding
from governance.selectors import workflow_bindings
from governance.selectors.blast_radius import workflow_blast_radius
from tests.factories import CredentialFactory, SecretStoreFactory, SystemFactory, WorkflowFactory

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def _svg(body: str) -> str:
    match = re.search(r"<svg\b.*?</svg>", body, re.S)
    assert match, "no inline SVG on the page"
    return match.group(0)


def _bind(workflow, personas, *, store=None, system=None, name=None):
    kwargs = {"owner": personas.owner, "team": personas.team}
    if store is not None:
        kwargs["store"] = store
    if system is not None:
        kwargs["system"] = system
    if name is not None:
        kwargs["name"] = name
    credential = CredentialFactory(**kwargs)
    Binding.objects.create(workflow=workflow, credential=credential, purpose="deploy")
    return credential


def test_page_draws_credentials_stores_and_systems_as_linked_nodes(client, personas, estate):
    workflow, credential = estate["workflow"], estate["credential"]
    client.force_login(personas.owner)
    body = client.get(reverse("workflow-detail", args=[workflow.pk])).content.decode()
    assert body.index("Blast radius") < body.index("<h2>Shutdown procedure</h2>")  # on the overview tab
    svg = _svg(body)
    assert 'role="group"' in svg  # a group: its nodes are links, which an img would hide
    assert 'aria-label="payments-deploy touches 1 credential in 1 store and 1 system"' in svg
    for name, url in [
        ("payments-deploy-key", reverse("credential-detail", args=[credential.pk])),
        (credential.store.name, reverse("secretstore-detail", args=[credential.store_id])),
        ("payments-db", reverse("system-detail", args=[estate["system"].pk])),
    ]:
        assert f'href="{url}"' in svg and name in svg
    assert "unmanaged" not in svg and "shared with" not in svg


def test_unmanaged_store_and_shared_credential_are_flagged(client, personas, estate):
    workflow = estate["workflow"]
    unmanaged = SecretStoreFactory(name="repo-env-files", kind=SecretStoreKind.SOURCE_CODE)
    leaky = _bind(workflow, personas, store=unmanaged, name="ci-token")
    for _ in range(2):
        Binding.objects.create(workflow=WorkflowFactory(owner=personas.owner, team=personas.team),
                               credential=leaky, purpose="reuse")
    client.force_login(personas.owner)
    svg = _svg(client.get(reverse("workflow-detail", args=[workflow.pk])).content.decode())
    store_node = re.search(r'<a href="[^"]*" class="br-node store unmanaged">.*?</a>', svg, re.S)
    assert store_node and "repo-env-files" in store_node.group(0) and "unmanaged store" in store_node.group(0)
    cred_node = re.search(r'<a href="[^"]*" class="br-node credential shared">.*?</a>', svg, re.S)
    assert cred_node and "ci-token" in cred_node.group(0)
    assert "shared with 2 others" in cred_node.group(0)
    assert "also bound to 2 other workflows" in cred_node.group(0)  # its tooltip
    assert 'class="br-node credential">' in svg  # payments-deploy-key is not shared


def test_labels_are_escaped(client, personas, estate):
    workflow = estate["workflow"]
    _bind(workflow, personas, name='<script>alert("x")</script>')
    client.force_login(personas.owner)
    svg = _svg(client.get(reverse("workflow-detail", args=[workflow.pk])).content.decode())
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_layout_has_edges_for_every_relation_and_grows_with_nodes(personas, estate):
    workflow = estate["workflow"]
    bindings = list(workflow_bindings(user=personas.owner, workflow=workflow))
    small = workflow_blast_radius(workflow=workflow, bindings=bindings)
    relations = {(e["from"].split("-")[0], e["to"].split("-")[0], e["label"]) for e in small["edges"]}
    assert relations == {("workflow", "credential", "uses"), ("credential", "store", "stored in"),
                         ("credential", "system", "opens"), ("workflow", "system", "acts on")}
    assert len([n for n in small["nodes"] if n["kind"] == "system"]) == 1  # deduplicated
    for _ in range(4):
        _bind(workflow, personas)
    workflow.systems.add(SystemFactory(owner=personas.owner, team=personas.team))
    bindings = list(workflow_bindings(user=personas.owner, workflow=workflow))
    big = workflow_blast_radius(workflow=workflow, bindings=bindings)
    assert big["height"] > small["height"]
    assert big["counts"] == {"workflow": 1, "credential": 5, "store": 5, "system": 6}
    positions = [(n["x"], n["y"]) for n in big["nodes"]]
    assert len(set(positions)) == len(positions)  # no two nodes on top of each other
    assert all(0 <= y and y + big["node_height"] <= big["height"] for _, y in positions)
    assert big == workflow_blast_radius(workflow=workflow, bindings=bindings)  # deterministic


def test_query_count_does_not_grow_with_bindings(personas, estate):
    workflow = estate["workflow"]
    shared_with = WorkflowFactory(owner=personas.owner, team=personas.team)

    def count_queries():
        bindings = list(workflow_bindings(user=personas.owner, workflow=workflow))
        with CaptureQueriesContext(connection) as ctx:
            workflow_blast_radius(workflow=workflow, bindings=bindings)
        return len(ctx.captured_queries)

    few = count_queries()
    for _ in range(6):
        credential = _bind(workflow, personas)
        Binding.objects.create(workflow=shared_with, credential=credential, purpose="reuse")
    assert count_queries() == few <= 2
