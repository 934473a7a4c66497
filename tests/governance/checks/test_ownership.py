"""owner-named, owner-active, attestation: pass, fail, scope and threshold edges."""

import datetime as dt

import pytest
from django.utils import timezone

from governance.checks import Context
from governance.choices import CredentialStatus, PersonStatus, WorkflowStatus
from governance.models import Credential, System, Workflow
from tests.factories import CredentialFactory, PersonFactory, SystemFactory, TeamFactory, WorkflowFactory
from tests.factories_checks import evaluated, evidence, failing

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.mark.embedded
def test_owner_named_fails_orphaned_objects_of_every_kind():
    owner, team = PersonFactory(), TeamFactory(name="Ops")
    orphan_workflow = WorkflowFactory(owner=None, team=team)
    owned_workflow = WorkflowFactory(owner=owner)
    orphan_credential = CredentialFactory(owner=None)
    orphan_system = SystemFactory(owner=None)
    assert failing("owner-named", Workflow) == {orphan_workflow.pk}
    assert orphan_credential.pk in failing("owner-named", Credential)
    assert orphan_system.pk in failing("owner-named", System)
    assert owned_workflow.pk not in failing("owner-named", Workflow)
    assert evidence("owner-named", orphan_workflow) == {"team_name": "Ops"}


def test_owner_named_ignores_retired_and_revoked_objects():
    retired = WorkflowFactory(owner=None, status=WorkflowStatus.RETIRED, retired_at=NOW)
    revoked = CredentialFactory(owner=None, status=CredentialStatus.REVOKED)
    suspended = CredentialFactory(owner=None, status=CredentialStatus.SUSPENDED)
    retired_system = SystemFactory(owner=None, lifecycle="retired", retired_at=NOW)
    assert retired.pk not in evaluated("owner-named", Workflow)
    assert revoked.pk not in evaluated("owner-named", Credential)
    assert suspended.pk in failing("owner-named", Credential)  # a suspended secret still exists
    assert retired_system.pk not in evaluated("owner-named", System)


@pytest.mark.embedded
def test_owner_active_fails_departed_and_disabled_owners():
    departed = PersonFactory(status=PersonStatus.DEPARTED, departed_at=NOW - dt.timedelta(days=3), is_active=False)
    disabled = PersonFactory(is_active=False)
    active = PersonFactory()
    bad_workflow = WorkflowFactory(owner=departed)
    disabled_credential = CredentialFactory(owner=disabled)
    good = WorkflowFactory(owner=active)
    orphan = WorkflowFactory(owner=None)
    assert failing("owner-active", Workflow) == {bad_workflow.pk}
    assert failing("owner-active", Credential) == {disabled_credential.pk}
    assert good.pk in evaluated("owner-active", Workflow)
    assert orphan.pk not in evaluated("owner-active", Workflow)  # owner-named reports it instead
    facts = evidence("owner-active", bad_workflow)
    assert facts["owner_username"] == departed.username and facts["owner_status"] == "departed"
    assert facts["owner_can_sign_in"] is False


@pytest.mark.embedded
def test_attestation_due_after_the_period_from_the_last_attestation(settings):
    period = settings.STEWARD_THRESHOLDS["attestation_period_days"]
    ctx = Context.current(NOW)
    just_inside = WorkflowFactory(last_attested_at=NOW - dt.timedelta(days=period) + dt.timedelta(minutes=1))
    at_the_limit = WorkflowFactory(last_attested_at=NOW - dt.timedelta(days=period))
    just_outside = WorkflowFactory(last_attested_at=NOW - dt.timedelta(days=period, minutes=1))
    assert failing("attestation", Workflow, ctx) == {just_outside.pk}
    assert {just_inside.pk, at_the_limit.pk} <= evaluated("attestation", Workflow, ctx)
    facts = evidence("attestation", just_outside)
    assert set(facts) == {"last_attested_at", "due_at"}


def test_never_attested_objects_are_due_a_period_after_registration(settings):
    period = settings.STEWARD_THRESHOLDS["attestation_period_days"]
    new = CredentialFactory()
    old = CredentialFactory()
    Credential.objects.filter(pk=old.pk).update(created_at=NOW - dt.timedelta(days=period + 1))
    assert failing("attestation", Credential) == {old.pk}
    assert evidence("attestation", old)["last_attested_at"] is None
    assert new.pk in evaluated("attestation", Credential)


def test_attestation_period_is_configurable(settings):
    workflow = WorkflowFactory(last_attested_at=NOW - dt.timedelta(days=40))
    settings.STEWARD_THRESHOLDS = {**settings.STEWARD_THRESHOLDS, "attestation_period_days": 30}
    assert failing("attestation", Workflow) == {workflow.pk}
    settings.STEWARD_THRESHOLDS = {**settings.STEWARD_THRESHOLDS, "attestation_period_days": 45}
    assert failing("attestation", Workflow) == set()


def test_attestation_evaluates_running_workflows_and_active_credentials_only():
    old = NOW - dt.timedelta(days=1000)
    proposed = WorkflowFactory(status=WorkflowStatus.PROPOSED, last_attested_at=old)
    suspended = WorkflowFactory(status=WorkflowStatus.SUSPENDED, last_attested_at=old)
    revoked = CredentialFactory(status=CredentialStatus.REVOKED, last_attested_at=old)
    assert failing("attestation", Workflow) == {suspended.pk}
    assert proposed.pk not in evaluated("attestation", Workflow)
    assert revoked.pk not in evaluated("attestation", Credential)


def test_a_campaign_item_that_lapsed_fails_until_the_object_is_attested_again(personas):
    from tests.factories_attestation import item_for, open_campaign

    workflow = WorkflowFactory(owner=personas.owner, team=personas.team, last_attested_at=NOW - dt.timedelta(days=5))
    campaign = open_campaign(personas)
    item = item_for(campaign, workflow)
    assert workflow.pk not in failing("attestation", Workflow)
    type(item).objects.filter(pk=item.pk).update(
        consequence_applied_at=NOW - dt.timedelta(days=1), consequence="finding")
    assert workflow.pk in failing("attestation", Workflow)
    Workflow.objects.filter(pk=workflow.pk).update(last_attested_at=NOW)
    assert workflow.pk not in failing("attestation", Workflow)
