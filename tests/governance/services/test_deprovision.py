"""Deprovisioning with proof, and observed truth (reconciliation), against real servers."""
# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)

import datetime as dt

import pytest
from django.utils import timezone

from governance.audit import Actor
from governance.checks.base import Context
from governance.choices import CredentialStatus
from governance.lifecycle_checks import CredentialSourceResolves
from governance.models import Binding
from governance.models.lifecycle import CredentialRevocation, ObservationState, RevocationStatus
from governance.services import deprovision, inventory
from governance.services.lifecycle import credentials_reconcile
from tests.factories import WorkflowFactory
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    dead_store,
    eager_celery,
    fresh_connectors,
    kv,
    kv_put,
    kv_store,
    make_credential,
    openbao,
    pg_cluster,
    pg_login,
    pg_role,
    pg_system,
    redis_admin,
    redis_auth,
    redis_system,
    redis_user,
    unique,
)

pytestmark = [pytest.mark.django_db]


def test_an_approved_retirement_revokes_the_systems_credentials_with_proof(
        personas, pg_system, pg_role, pg_cluster, kv_store, eager_celery, django_capture_on_commit_callbacks):
    """The registered retirement action (no test wiring): retire the system, then revoke what only it used."""
    from governance.models.approvals import ApprovalAction
    from governance.services import approvals
    from tests.factories_approvals import make_policy

    credential = make_credential(personas, store=kv_store, path=pg_role["path"], system=pg_system, kind="password",
                                 identifier=pg_role["name"])
    make_policy(groups=[personas.other_team.group])
    request = approvals.approval_request_file(actor=Actor.for_user(personas.owner), action=ApprovalAction.RETIREMENT,
                                              target=pg_system, payload={}, justification="Replaced by the new ledger")
    with django_capture_on_commit_callbacks(execute=True):
        approvals.approval_request_approve(actor=Actor.for_user(personas.approver), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == "executed", request.failure_reason
    revocation = CredentialRevocation.objects.get(credential=credential)
    credential.refresh_from_db()
    assert revocation.status == RevocationStatus.SUCCEEDED and credential.status == CredentialStatus.REVOKED
    assert not pg_login(pg_cluster, pg_role["name"], pg_role["password"])
    assert any("refused" in line for line in revocation.proof) and revocation.performed_at
    assert revocation.subject_type == "governance.system" and revocation.subject_id == pg_system.pk
    pg_system.refresh_from_db()
    assert pg_system.lifecycle == "retired"


def test_retiring_a_workflow_keeps_credentials_other_workflows_use(personas, kv_store, openbao, kv, eager_celery,
                                                                    django_capture_on_commit_callbacks):
    flow = WorkflowFactory(name=unique("old-flow"), owner=personas.owner, team=personas.team)
    other = WorkflowFactory(name=unique("other-flow"), owner=personas.owner, team=personas.team)
    only, shared = f"app/{unique('only')}", f"app/{unique('shared')}"
    kv_put(openbao, only, {"value": "a"})
    kv_put(openbao, shared, {"value": "b"})
    only_cred = make_credential(personas, store=kv_store, path=only)
    shared_cred = make_credential(personas, store=kv_store, path=shared)
    for workflow, credential in ((flow, only_cred), (flow, shared_cred), (other, shared_cred)):
        Binding.objects.create(workflow=workflow, credential=credential, purpose="x")
    inventory.workflow_retire(actor=Actor.for_user(personas.secadmin), workflow=flow, reason="Decommissioned")
    flow.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        revocations = deprovision.deprovision_start(actor=Actor.for_user(personas.owner), subject=flow)
    assert [r.credential_id for r in revocations] == [only_cred.pk]
    only_cred.refresh_from_db()
    shared_cred.refresh_from_db()
    assert only_cred.status == CredentialStatus.REVOKED and shared_cred.status == CredentialStatus.ACTIVE
    assert kv.read_value(only) is None and kv.read_value(shared) == {"value": "b"}
    again = deprovision.deprovision_start(actor=Actor.system(), subject=flow)
    assert again == []  # nothing is revoked twice


def test_redis_revocation_with_proof(personas, redis_system, redis_user, redis_admin, kv_store, eager_celery,
                                     django_capture_on_commit_callbacks):
    credential = make_credential(personas, store=kv_store, path=redis_user["path"], system=redis_system,
                                 kind="password", identifier=redis_user["name"])
    with django_capture_on_commit_callbacks(execute=True):
        revocation = deprovision.credential_revoke(actor=Actor.for_user(personas.owner), credential=credential,
                                                   reason="No longer needed")
    revocation.refresh_from_db()
    assert revocation.status == RevocationStatus.SUCCEEDED
    assert redis_admin.acl_getuser(redis_user["name"]) is None
    assert not redis_auth(redis_user["name"], redis_user["password"])
    redis_admin.execute_command("ACL", "SETUSER", redis_user["name"])  # for the fixture's teardown


def test_a_failed_revocation_leaves_the_credential_as_it_was(personas, dead_store, eager_celery, mailoutbox,
                                                             django_capture_on_commit_callbacks):
    credential = make_credential(personas, store=dead_store, path="secret/data/app/z")
    with django_capture_on_commit_callbacks(execute=True):
        revocation = deprovision.credential_revoke(actor=Actor.for_user(personas.owner), credential=credential,
                                                   reason="Leaked")
    revocation.refresh_from_db()
    credential.refresh_from_db()
    assert revocation.status == RevocationStatus.FAILED and credential.status == CredentialStatus.ACTIVE
    assert "did not answer" in revocation.error


@pytest.mark.embedded
def test_reconciliation_records_observed_truth_and_broken_references(personas, kv_store, openbao):
    path = f"app/{unique('observed')}"
    kv_put(openbao, path, {"value": "1"})
    kv_put(openbao, path, {"value": "2"})
    stale = timezone.now() - dt.timedelta(days=400)
    resolving = make_credential(personas, store=kv_store, path=path, last_rotated_at=stale)
    broken = make_credential(personas, store=kv_store, path="secret/data/app/moved-away")
    counts = credentials_reconcile(credential_ids=[resolving.pk, broken.pk])
    # Version 2 was written outside Steward (which recorded version 1): observed, and reported as drift.
    assert counts == {"drifted": 1, "broken": 1}
    resolving.refresh_from_db()
    broken.refresh_from_db()
    assert resolving.observation.observed_version == "2"
    assert resolving.observation.observed_rotated_at > timezone.now() - dt.timedelta(minutes=5)
    assert broken.observation.state == ObservationState.BROKEN and broken.observation.broken_since
    failures = CredentialSourceResolves().evaluate(Context.current()).failures
    assert set(failures) == {("governance.credential", broken.pk)}
    from governance.models import Credential
    from governance.selectors.lifecycle import with_observed_rotation

    effective = with_observed_rotation(Credential.objects.filter(pk=resolving.pk)).get()
    assert effective.effective_rotated_at == resolving.observation.observed_rotated_at
    credentials_reconcile(credential_ids=[broken.pk])  # unchanged: no second audit event
    from governance.models import AuditEvent

    assert AuditEvent.objects.filter(action="credential.observe", object_id=str(broken.pk)).count() == 1


def test_an_unreachable_store_keeps_the_last_observation(personas, dead_store):
    credential = make_credential(personas, store=dead_store, path="secret/data/app/q")
    assert credentials_reconcile(credential_ids=[credential.pk]) == {"unreachable": 1}
