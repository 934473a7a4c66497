"""restrict(): owners and their team see and change theirs; auditors read all; admins manage all."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.models import AuditEvent, Binding, Credential, System, Workflow
from governance.permissions import CHANGE, VIEW, restrict

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def names(model, user, action=VIEW):
    return set(restrict(model.objects.all(), user, action).values_list("name", flat=True))


def test_owner_and_team_see_and_change_their_own(personas, estate):
    for user in (personas.owner, personas.backup_owner):
        assert names(Workflow, user) == {"payments-deploy"}
        assert names(Workflow, user, CHANGE) == {"payments-deploy"}
        assert names(Credential, user) == {"payments-deploy-key"}
        assert names(System, user) == {"payments-db"}


def test_outsider_sees_nothing(personas, estate):
    for model in (Workflow, Credential, System, Binding, AuditEvent):
        assert not restrict(model.objects.all(), personas.outsider, VIEW).exists()


def test_auditor_reads_everything_and_changes_nothing(personas, estate):
    assert names(Workflow, personas.auditor) == {"payments-deploy", "platform-sync"}
    assert names(Workflow, personas.auditor, CHANGE) == set()
    assert restrict(AuditEvent.objects.all(), personas.auditor, VIEW).query is not None


def test_security_admin_manages_everything(personas, estate):
    assert names(Credential, personas.secadmin, CHANGE) == {"payments-deploy-key", "platform-token"}


def test_grants_are_per_team_not_per_person(personas, estate):
    from governance.models import WorkflowGroupObjectPermission, WorkflowUserObjectPermission

    assert WorkflowUserObjectPermission.objects.count() == 0
    assert WorkflowGroupObjectPermission.objects.filter(group=personas.team.group).count() == 2  # view, change


def test_anonymous_sees_nothing(estate):
    from django.contrib.auth.models import AnonymousUser

    assert not restrict(Workflow.objects.all(), AnonymousUser(), VIEW).exists()


def test_restrict_is_one_query_whatever_the_estate(personas, estate):
    from tests.factories import WorkflowFactory

    for i in range(20):
        WorkflowFactory(name=f"bulk-{i}", owner=personas.owner, team=personas.team)
    with CaptureQueriesContext(connection) as ctx:
        rows = list(restrict(Workflow.objects.all(), personas.backup_owner, VIEW))
    assert len(rows) == 21
    # One query for the role lookup (cached afterwards), one for the rows.
    assert len(ctx.captured_queries) <= 2
