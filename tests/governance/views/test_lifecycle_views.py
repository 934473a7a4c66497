"""The lifecycle pages: kill switch from confirm to progress, drill, rotate now, revoke; with real OpenBao."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import pytest
from django.urls import reverse

from governance.models import Binding
from governance.models.lifecycle import KillSwitchActivation, RotationJob
from tests.factories import WorkflowFactory
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    eager_celery,
    fresh_connectors,
    kv,
    kv_put,
    kv_store,
    make_credential,
    openbao,
    unique,
)

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def flow(personas, kv_store, openbao):
    workflow = WorkflowFactory(name=unique("deploy"), owner=personas.owner, team=personas.team)
    path = f"app/{unique('deploy-key')}"
    kv_put(openbao, path, {"value": "v"})
    credential = make_credential(personas, store=kv_store, path=path)
    Binding.objects.create(workflow=workflow, credential=credential, purpose="deploy")
    workflow.credential, workflow.path = credential, path
    return workflow


def test_kill_switch_confirm_activate_and_progress(client, personas, flow, kv, eager_celery,
                                                   django_capture_on_commit_callbacks):
    client.force_login(personas.owner)
    page = client.get(reverse("killswitch-confirm", args=[flow.pk]))
    assert page.status_code == 200 and flow.credential.name.encode() in page.content
    assert b"OpenBao KV: current version deleted" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("killswitch-confirm", args=[flow.pk]), {"reason": "Token leaked"})
    activation = KillSwitchActivation.objects.get(workflow=flow)
    assert response.status_code == 302 and response["Location"] == activation.get_absolute_url()
    progress = client.get(reverse("killswitch-progress", args=[activation.pk])).json()
    # A KV-only key: Steward's copy is hidden; revoking it where it is accepted is a step done by hand.
    assert not progress["finished"] and [s["status"] for s in progress["steps"]] == ["succeeded", "succeeded",
                                                                                     "awaiting"]
    detail = client.get(activation.get_absolute_url())
    assert b"Request reactivation" in detail.content
    link = f"/approvals/new/reactivation/?workflow={flow.pk}"
    assert link.encode() in detail.content
    form = client.get(link)  # the link opens a working form (it answered 404)
    assert form.status_code == 200 and b"justification" in form.content
    assert kv.read_value(flow.path) is None


def test_kill_switch_needs_a_reason(client, personas, flow):
    client.force_login(personas.owner)
    response = client.post(reverse("killswitch-confirm", args=[flow.pk]), {"reason": ""})
    assert response.status_code == 200 and not KillSwitchActivation.objects.exists()


def test_drill_from_the_page(client, personas, flow, eager_celery, django_capture_on_commit_callbacks):
    client.force_login(personas.secadmin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("killswitch-drill", args=[flow.pk]))
    flow.refresh_from_db()
    assert response.status_code == 302 and flow.last_drill_result == "passed"


def test_rotate_now_and_see_the_new_version(client, personas, flow, eager_celery,
                                            django_capture_on_commit_callbacks):
    client.force_login(personas.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("credential-rotate", args=[flow.credential.pk]))
    job = RotationJob.objects.get(credential=flow.credential)
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    page = client.get(job.get_absolute_url())
    assert b"version 2 is current" in page.content
    lifecycle = client.get(reverse("credential-lifecycle", args=[flow.credential.pk]))
    assert b"<code>2</code>" in lifecycle.content
    listing = client.get(reverse("rotation-list") + "?status=succeeded")
    assert f"#{job.pk}".encode() in listing.content


def test_others_cannot_rotate_or_stop_it(client, personas, flow):
    for person in (personas.outsider, personas.auditor):
        client.force_login(person)
        assert client.post(reverse("credential-rotate", args=[flow.credential.pk])).status_code == 404
        assert client.post(reverse("killswitch-confirm", args=[flow.pk]), {"reason": "x"}).status_code == 404
        assert client.post(reverse("killswitch-drill", args=[flow.pk])).status_code == 404
    assert not RotationJob.objects.exists() and not KillSwitchActivation.objects.exists()


def test_a_security_admin_sets_a_systems_connector(client, personas, estate):
    from governance.models.lifecycle import ConnectorTarget

    url = reverse("system-connector", args=[estate["system"].pk])
    client.force_login(personas.owner)
    assert client.get(url).status_code == 404
    client.force_login(personas.secadmin)
    refused = client.post(url, {"kind": "postgres_role", "settings": '{"host": "db", "admin_user_env_var": "x y"}'})
    assert refused.status_code == 200 and not ConnectorTarget.objects.exists()
    response = client.post(url, {"kind": "postgres_role", "settings": '{"host": "db.internal", "port": 5432, '
                                 '"admin_user_env_var": "PAYMENTS_DB_ADMIN_USER"}'})
    assert response.status_code == 302
    target = ConnectorTarget.objects.get(system=estate["system"])
    assert target.kind == "postgres_role" and target.settings["host"] == "db.internal"
