"""Incident-response operations over the API (issue 16's "API" bullet, issue 19's "sweep now"), against a real
OpenBao: kill switch preview and activation, drill, rotate now, revoke, sweep now. Each: its scope, on behalf
of with separation of duties, Idempotency-Key, 404 for what the caller may not see, and the work done."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import pytest
from django.utils import timezone

from governance.choices import CredentialStatus, DrillResult, PrivilegeLevel, WorkflowStatus
from governance.models import Binding
from governance.models.approvals import ApprovalAction, ApprovalRequest
from governance.models.checks import SweepRun
from governance.models.lifecycle import CredentialRevocation, KillSwitchActivation, KillSwitchStep, RotationJob
from governance.services.sweep import sweep_run_resume
from tests.factories import PersonFactory, WorkflowFactory
from tests.factories_approvals import make_policy
from tests.factories_integrations import bearer, delegate, make_integration
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

OPS_SCOPES = ["read", "lifecycle:killswitch", "lifecycle:drill", "lifecycle:rotate", "lifecycle:revoke"]
SCOPE_OF = {"kill_switch": "lifecycle:killswitch", "drill": "lifecycle:drill", "rotate": "lifecycle:rotate",
            "revoke": "lifecycle:revoke", "sweep": "sweep:run"}


@pytest.fixture
def kv_credential(personas, kv_store, openbao):
    path = f"app/{unique('ops')}"
    kv_put(openbao, path, {"value": "initial-secret"})
    credential = make_credential(personas, store=kv_store, path=f"secret/data/{path}")
    credential.kv_path = path
    return credential


@pytest.fixture
def flow(personas, kv_credential):
    workflow = WorkflowFactory(name=unique("ops-etl"), owner=personas.owner, team=personas.team,
                               status=WorkflowStatus.ACTIVE, shutdown_procedure="Stop the DAG.")
    Binding.objects.create(workflow=workflow, credential=kv_credential, purpose="etl")
    return workflow


@pytest.fixture
def soar(personas):
    """The owner's SOAR integration with every operation's scope."""
    return make_integration(owner=personas.owner, scopes=OPS_SCOPES, name="soar", team=personas.team)[1]


def post(api, url, body, token, *, key=None, on_behalf_of=None, capture=None):
    headers = bearer(token, on_behalf_of)
    if key:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    if capture is None:
        return api.post(url, body, format="json", **headers)
    with capture(execute=True):
        return api.post(url, body, format="json", **headers)


def operations(flow, credential):
    return {
        "kill_switch": (f"/api/v1/workflows/{flow.pk}/kill-switch/activate/", {"reason": "leaked token"}),
        "drill": (f"/api/v1/workflows/{flow.pk}/drill/", {}),
        "rotate": (f"/api/v1/credentials/{credential.pk}/rotate/", {}),
        "revoke": (f"/api/v1/credentials/{credential.pk}/revoke/", {"reason": "leaked"}),
        "sweep": ("/api/v1/sweep-runs/", {}),
    }


def nothing_queued():
    return not (KillSwitchActivation.objects.exists() or RotationJob.objects.exists()
                or CredentialRevocation.objects.exists() or SweepRun.objects.exists())


# The work really happens ------------------------------------------------------------------------

@pytest.mark.embedded
def test_kill_switch_preview_then_activate_suspends_in_openbao_once_per_idempotency_key(
        api, personas, flow, kv_credential, kv, soar, eager_celery, django_capture_on_commit_callbacks):
    preview = api.get(f"/api/v1/workflows/{flow.pk}/kill-switch/preview/", **bearer(soar))
    assert preview.status_code == 200, preview.json()
    body = preview.json()
    assert body["may_activate"] is True and body["workflow"]["id"] == flow.pk and body["needs_choice"] is False
    row = body["credentials"][0]
    assert row["connector"] == "openbao_kv" and row["needs_manual_step"] is True  # KV hides Steward's copy only
    assert [plan["shared_choice"] for plan in body["plans"]] == [""]
    assert [(s["action"], s["manual"]) for s in body["plans"][0]["steps"]] == [
        ("suspend_workflow", False), ("suspend_credential", False), ("manual_issuer", True)]
    assert not KillSwitchActivation.objects.exists()  # a preview changes nothing

    url = f"/api/v1/workflows/{flow.pk}/kill-switch/activate/"
    first = post(api, url, {"reason": "token leaked in a CI log"}, soar, key="inc-42",
                 capture=django_capture_on_commit_callbacks)
    assert first.status_code == 202, first.json()
    assert first["Location"] == first.json()["status_url"]
    replay = post(api, url, {"reason": "token leaked in a CI log"}, soar, key="inc-42",
                  capture=django_capture_on_commit_callbacks)
    assert replay.status_code == 202 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert KillSwitchActivation.objects.count() == 1

    status = api.get(first.json()["status_url"], **bearer(soar)).json()
    assert status["mode"] == "activate" and status["activated_by"] == personas.owner.pk
    assert status["status"] == "awaiting_manual"  # the connector steps ran; the issuer step is a person's
    assert status["progress"] == {"done": 2, "total": 3, "manual_open": 1, "finished": False}
    flow.refresh_from_db()
    kv_credential.refresh_from_db()
    assert flow.status == WorkflowStatus.SUSPENDED and kv_credential.status == CredentialStatus.SUSPENDED
    assert kv.read_value(kv_credential.kv_path) is None  # Steward's stored copy is no longer readable

    manual = next(step for step in status["steps"] if step["status"] == "awaiting")
    assert manual["assignee"] == personas.owner.pk
    done_url = f"/api/v1/kill-switch-steps/{manual['id']}/mark-done/"
    assert post(api, done_url, {"comment": ""}, soar).json()["fields"]["comment"]
    done = post(api, done_url, {"comment": "Key revoked in the vendor console, INC-42"}, soar, key="inc-42-step")
    assert done.status_code == 200, done.json()
    assert done.json()["status"] == "completed" and done.json()["progress"]["finished"] is True
    again = post(api, done_url, {"comment": "Key revoked in the vendor console, INC-42"}, soar, key="inc-42-step")
    assert again["Idempotent-Replayed"] == "true" and again.json() == done.json()
    assert post(api, done_url, {"comment": "twice"}, soar).status_code == 400  # already done

    again = api.get(f"/api/v1/workflows/{flow.pk}/kill-switch/preview/", **bearer(soar)).json()
    assert again["may_activate"] is False and "suspended" in again["blocker"]
    refused = post(api, url, {"reason": "again"}, soar)
    assert refused.status_code == 400 and "nothing to stop" in refused.json()["fields"]["status"][0]


@pytest.fixture
def shared(personas, flow, kv_credential, estate):
    """The flow's key is also used by a team mate's workflow and by another team's (counted, not named)."""
    mate = WorkflowFactory(name="payments-report", owner=personas.owner, team=personas.team,
                           status=WorkflowStatus.ACTIVE)
    Binding.objects.create(workflow=mate, credential=kv_credential, purpose="report")
    Binding.objects.create(workflow=estate["other_workflow"], credential=kv_credential, purpose="sync")
    return mate


def test_the_preview_lists_the_other_workflows_and_a_plan_per_choice(api, flow, kv_credential, soar, shared):
    url = f"/api/v1/workflows/{flow.pk}/kill-switch/preview/"
    body = api.get(url, **bearer(soar)).json()
    row = body["credentials"][0]
    assert row["shared_with"] == [{"id": shared.pk, "name": shared.name, "status": shared.status}]
    assert row["shared_hidden"] == 1
    assert body["needs_choice"] is True
    assert [plan["shared_choice"] for plan in body["plans"]] == ["suspend_anyway", "rotate_isolate"]
    isolate = api.post(url, {"shared_choice": "rotate_isolate"}, format="json", **bearer(soar)).json()["plans"]
    assert [plan["shared_choice"] for plan in isolate] == ["rotate_isolate"]
    assert "isolate_credential" in [step["action"] for step in isolate[0]["steps"]]
    bad = api.get(url + "?shared_choice=maybe", **bearer(soar))
    assert bad.status_code == 400 and bad.json()["fields"]["shared_choice"]


@pytest.mark.embedded
def test_a_shared_credential_needs_a_choice_and_rotate_isolate_keeps_the_others_running(
        api, flow, kv_credential, kv, soar, shared, eager_celery, django_capture_on_commit_callbacks):
    url = f"/api/v1/workflows/{flow.pk}/kill-switch/activate/"
    refused = post(api, url, {"reason": "leaked"}, soar)
    assert refused.status_code == 400 and "payments-report" in refused.json()["fields"]["shared_choice"][0]
    assert not KillSwitchActivation.objects.exists()
    response = post(api, url, {"reason": "leaked", "shared_choice": "rotate_isolate"}, soar,
                    capture=django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.json()
    activation = response.json()
    assert activation["shared_choice"] == "rotate_isolate"
    assert {w["name"] for entry in activation["shared_with"] for w in entry["workflows"]} >= {"payments-report"}
    kv_credential.refresh_from_db()
    shared.refresh_from_db()
    assert kv_credential.status == CredentialStatus.ACTIVE and kv_credential.store_version == "2"
    assert kv.read_value(kv_credential.kv_path)["value"] != "initial-secret"  # a new secret for the others
    assert shared.status == WorkflowStatus.ACTIVE
    assert Binding.objects.get(workflow=flow, credential=kv_credential).suspended_at is not None


def test_only_a_security_admin_waives_a_step_done_by_hand(api, personas, flow, soar):
    activation = KillSwitchActivation.objects.create(
        workflow=flow, mode="activate", status="awaiting_manual", actor_label="olivia.owner",
        workflow_status_before="active", started_at=timezone.now())
    step = KillSwitchStep.objects.create(activation=activation, position=1, action="manual_issuer",
                                         status="awaiting", label="Revoke the key at the vendor",
                                         assignee=personas.owner)
    url = f"/api/v1/kill-switch-steps/{step.pk}/waive/"
    assert post(api, url, {"reason": "never deployed"}, soar).status_code == 403  # the owner, through soar
    _, sec = make_integration(owner=personas.secadmin, scopes=["lifecycle:killswitch"], name="sec-soar")
    assert post(api, url, {"reason": ""}, sec).json()["fields"]["reason"]
    _, other = make_integration(owner=personas.approver, scopes=["lifecycle:killswitch"], name="other-soar")
    assert post(api, f"/api/v1/kill-switch-steps/{step.pk}/mark-done/", {"comment": "x"}, other).status_code == 404
    waived = post(api, url, {"reason": "never deployed"}, sec)
    assert waived.status_code == 200, waived.json()
    assert waived.json()["status"] == "completed"  # its last open step
    assert next(s for s in waived.json()["steps"] if s["id"] == step.pk)["status"] == "waived"


@pytest.mark.embedded
def test_drill_proves_the_shutdown_path_and_changes_nothing(api, flow, kv_credential, kv, soar, eager_celery,
                                                            django_capture_on_commit_callbacks):
    response = post(api, f"/api/v1/workflows/{flow.pk}/drill/", {}, soar, key="drill-1",
                    capture=django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.json()
    status = api.get(response.json()["status_url"], **bearer(soar)).json()
    assert status["mode"] == "drill" and status["status"] == "completed"
    flow.refresh_from_db()
    kv_credential.refresh_from_db()
    assert flow.last_drill_result == DrillResult.PASSED and flow.status == WorkflowStatus.ACTIVE
    assert kv_credential.status == CredentialStatus.ACTIVE
    assert kv.read_value(kv_credential.kv_path)["value"] == "initial-secret"


@pytest.mark.embedded
def test_rotate_now_writes_a_new_version_in_openbao_once_per_key(api, kv_credential, kv, soar, eager_celery,
                                                                django_capture_on_commit_callbacks):
    url = f"/api/v1/credentials/{kv_credential.pk}/rotate/"
    first = post(api, url, {}, soar, key="rot-1", capture=django_capture_on_commit_callbacks)
    assert first.status_code == 202, first.json()
    assert first.json()["approval_request"] is None
    replay = post(api, url, {}, soar, key="rot-1", capture=django_capture_on_commit_callbacks)
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    job = api.get(first.json()["status_url"], **bearer(soar)).json()
    assert job["status"] == "succeeded" and job["new_version"] == "2"
    assert RotationJob.objects.count() == 1
    kv_credential.refresh_from_db()
    assert kv_credential.store_version == "2"
    assert kv.read_value(kv_credential.kv_path)["value"] != "initial-secret"


@pytest.mark.embedded
def test_revoke_destroys_the_secret_with_proof_and_is_refused_afterwards(
        api, kv_credential, kv, soar, eager_celery, django_capture_on_commit_callbacks):
    url = f"/api/v1/credentials/{kv_credential.pk}/revoke/"
    first = post(api, url, {"reason": "leaked in a ticket"}, soar, key="rev-1",
                 capture=django_capture_on_commit_callbacks)
    assert first.status_code == 202, first.json()
    replay = post(api, url, {"reason": "leaked in a ticket"}, soar, key="rev-1")
    assert replay["Idempotent-Replayed"] == "true" and CredentialRevocation.objects.count() == 1
    revocation = api.get(first.json()["status_url"], **bearer(soar)).json()
    assert revocation["status"] == "succeeded" and revocation["proof"]
    kv_credential.refresh_from_db()
    assert kv_credential.status == CredentialStatus.REVOKED
    assert kv.read_value(kv_credential.kv_path) is None
    again = post(api, url, {"reason": "again"}, soar)
    assert again.status_code == 400 and "already revoked" in again.json()["fields"]["status"][0]
    rotate = post(api, f"/api/v1/credentials/{kv_credential.pk}/rotate/", {}, soar)
    assert rotate.status_code == 400 and "only an active credential" in rotate.json()["fields"]["status"][0]


# Scopes, visibility, bad input ------------------------------------------------------------------

@pytest.mark.parametrize("operation", sorted(SCOPE_OF))
def test_each_operation_needs_its_own_scope(api, personas, flow, kv_credential, operation):
    """Every other scope but admin (which holds them all) is not enough."""
    everything_else = [s for s in ["read", "file_requests", "decide_requests", *SCOPE_OF.values()]
                       if s != SCOPE_OF[operation]]
    owner = personas.secadmin if operation == "sweep" else personas.owner
    _, token = make_integration(owner=owner, scopes=everything_else, name="narrow")
    url, body = operations(flow, kv_credential)[operation]
    response = post(api, url, body, token)
    assert response.status_code == 403 and "scope" in response.json()["message"], response.json()
    assert nothing_queued()


def test_the_preview_needs_the_kill_switch_scope(api, personas, flow):
    _, token = make_integration(owner=personas.owner, scopes=["read", "lifecycle:drill"], name="drill-only")
    response = api.get(f"/api/v1/workflows/{flow.pk}/kill-switch/preview/", **bearer(token))
    assert response.status_code == 403 and "lifecycle:killswitch" in response.json()["message"]


@pytest.mark.parametrize("operation", ["kill_switch", "drill", "rotate", "revoke"])
def test_objects_the_caller_may_not_see_answer_404(api, personas, flow, kv_credential, operation):
    _, token = make_integration(owner=personas.approver, scopes=OPS_SCOPES, name="other-team-bot")
    url, body = operations(flow, kv_credential)[operation]
    assert post(api, url, body, token).status_code == 404
    assert api.get(f"/api/v1/workflows/{flow.pk}/kill-switch/preview/", **bearer(token)).status_code == 404
    assert nothing_queued()


def test_the_auditor_sees_the_workflow_but_may_not_stop_it(api, personas, flow):
    api.force_login(personas.auditor)
    response = api.post(f"/api/v1/workflows/{flow.pk}/kill-switch/activate/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    assert api.get(f"/api/v1/workflows/{flow.pk}/kill-switch/preview/").status_code == 403
    flow.refresh_from_db()
    assert flow.status == WorkflowStatus.ACTIVE and nothing_queued()


@pytest.mark.parametrize(("operation", "body", "field"), [
    ("kill_switch", {}, "reason"), ("kill_switch", {"reason": "   "}, "reason"),
    ("revoke", {"reason": ""}, "reason"), ("sweep", {"checks": ["no-such-check"]}, "checks"),
    ("sweep", {"checks": "rotation-age"}, "checks"),
])
def test_bad_input_gets_a_field_message_and_changes_nothing(api, personas, flow, kv_credential, soar, operation,
                                                            body, field):
    token = soar
    if operation == "sweep":
        _, token = make_integration(owner=personas.secadmin, scopes=["sweep:run"], name="sweeper")
    url, _ = operations(flow, kv_credential)[operation]
    response = post(api, url, body, token)
    assert response.status_code == 400, response.json()
    assert response.json()["fields"][field]
    flow.refresh_from_db()
    assert flow.status == WorkflowStatus.ACTIVE and nothing_queued()


# On behalf of, with separation of duties ----------------------------------------------------------

@pytest.mark.parametrize("operation", ["kill_switch", "drill", "rotate", "revoke"])
def test_on_behalf_of_a_person_who_did_not_delegate_is_refused(api, personas, flow, kv_credential, soar,
                                                               operation):
    url, body = operations(flow, kv_credential)[operation]
    response = post(api, url, body, soar, on_behalf_of=personas.backup_owner.username)
    assert response.status_code == 403 and "delegated" in response.json()["message"]
    assert nothing_queued()


def test_an_integration_acts_with_its_persons_rights_not_its_owners(api, personas, flow, kv_credential):
    """A security admin's integration acting for the outsider (who delegated) gets the outsider's rights."""
    integration, token = make_integration(owner=personas.secadmin, scopes=[*OPS_SCOPES, "sweep:run"],
                                          name="sec-soar")
    delegate(personas.outsider, integration)
    for operation, (url, body) in operations(flow, kv_credential).items():
        response = post(api, url, body, token, on_behalf_of=personas.outsider.username)
        assert response.status_code == (403 if operation == "sweep" else 404), (operation, response.json())
    assert nothing_queued()


def test_a_privileged_rotation_filed_through_an_integration_cannot_be_approved_by_its_owner(
        api, personas, kv_credential, django_capture_on_commit_callbacks):
    """Ada (an approver) rotates Olivia's privileged credential through Ada's own integration, for Olivia: the
    request is Olivia's, and neither Ada nor Ada's integration may approve it; someone else does."""
    make_policy(name="Platform", groups=[personas.other_team.group], actions=[ApprovalAction.PRIVILEGED_ROTATION])
    kv_credential.privilege_level = PrivilegeLevel.ADMIN
    kv_credential.save(update_fields=["privilege_level"])
    integration, token = make_integration(owner=personas.approver, name="ada-soar",
                                          scopes=[*OPS_SCOPES, "decide_requests"])
    delegate(personas.owner, integration)
    url = f"/api/v1/credentials/{kv_credential.pk}/rotate/"

    without_reason = post(api, url, {}, token, on_behalf_of=personas.owner.username)
    assert without_reason.status_code == 400 and "privileged" in without_reason.json()["fields"]["reason"][0]
    assert not RotationJob.objects.exists()  # the refused call left nothing behind

    response = post(api, url, {"reason": "INC-7: rotate before the audit"}, token, key="priv-1",
                    on_behalf_of=personas.owner.username)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "awaiting_approval" and body["approval_request"]["status"] == "pending"
    request = ApprovalRequest.objects.get(pk=body["approval_request"]["id"])
    assert request.requested_by == personas.owner and request.filed_by_integration_owner == personas.approver
    assert post(api, url, {"reason": "INC-7: rotate before the audit"}, token,
                on_behalf_of=personas.owner.username).json()["approval_request"]["id"] == request.pk  # one request

    approve = f"/api/v1/approval-requests/{request.pk}/approve/"
    assert post(api, approve, {}, token).status_code == 403  # Ada's integration, for Ada
    api.force_login(personas.approver)
    refused = api.post(approve, {}, format="json")
    assert refused.status_code == 403 and "You own" in refused.json()["message"]
    mate = PersonFactory(username="carl.platform", teams=[personas.other_team])
    api.force_login(mate)
    with django_capture_on_commit_callbacks(execute=False):
        assert api.post(approve, {}, format="json").status_code == 200
    assert RotationJob.objects.get(pk=body["id"]).status == "pending"  # released, queued for a worker


# Sweep now --------------------------------------------------------------------------------------

@pytest.mark.embedded
def test_sweep_now_is_queued_runs_once_and_refuses_a_second_concurrent_sweep(
        api, personas, eager_celery, django_capture_on_commit_callbacks):
    _, token = make_integration(owner=personas.secadmin, scopes=["sweep:run", "read"], name="sweeper")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = post(api, "/api/v1/sweep-runs/", {"checks": ["owner-active"]}, token, key="sweep-1")
    assert first.status_code == 202, first.json()
    run = first.json()
    assert run["status"] == "running" and run["progress"] == {"done": 0, "total": 1, "started": False,
                                                               "finished": False}
    second = post(api, "/api/v1/sweep-runs/", {}, token)
    assert second.status_code == 409 and second.json()["code"] == "sweep_running"
    assert f"Sweep #{run['id']}" in second.json()["message"] and run["status_url"] in second.json()["message"]
    replay = post(api, "/api/v1/sweep-runs/", {"checks": ["owner-active"]}, token, key="sweep-1")
    assert replay.status_code == 202 and replay.json() == run  # the same run, not a refusal
    assert SweepRun.objects.count() == 1

    for callback in queued:  # the outbox publishes; the worker runs it
        callback()
    done = api.get(run["status_url"], **bearer(token)).json()
    assert done["status"] == "succeeded" and done["progress"]["done"] == done["progress"]["total"] == 1
    assert "owner-active" in done["counts"]
    assert sweep_run_resume(run_id=run["id"]).status == "succeeded"  # a second delivery changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        assert post(api, "/api/v1/sweep-runs/", {}, token).status_code == 202  # the next one may start


def test_sweep_now_is_for_security_admins(api, personas):
    for person in (personas.owner, personas.auditor, personas.approver):
        api.force_login(person)
        assert api.post("/api/v1/sweep-runs/", {}, format="json").status_code == 403
    assert not SweepRun.objects.exists()
