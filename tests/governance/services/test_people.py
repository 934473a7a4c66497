"""The departed-owner rule and ownership transfer."""

import pytest
from django.core.exceptions import ValidationError

from governance.audit import Actor
from governance.models import AuditEvent, Credential, System, Workflow
from governance.services import people as svc
from tests.factories import WorkflowFactory

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_departed_owner_objects_pass_to_backup_manager(personas, estate):
    counts = svc.person_mark_departed(actor=Actor.for_user(personas.secadmin), person=personas.owner)
    assert counts == {"reassigned": 3, "orphaned": 0}
    for model, key in ((Workflow, "workflow"), (Credential, "credential"), (System, "system")):
        assert model.objects.get(pk=estate[key].pk).owner == personas.backup_owner
    assert AuditEvent.objects.filter(action="workflow.reassigned").count() == 1
    personas.owner.refresh_from_db()
    assert personas.owner.is_departed and not personas.owner.is_active and personas.owner.departed_at


def test_objects_are_orphaned_when_no_backup_manager_can_take_them(personas, estate):
    lonely = WorkflowFactory(name="lonely", owner=personas.owner, team=None)
    managed_by_leaver = WorkflowFactory(name="self-managed", owner=personas.backup_owner, team=personas.team)
    svc.person_mark_departed(actor=Actor.for_user(personas.secadmin), person=personas.backup_owner)
    assert Workflow.objects.get(pk=managed_by_leaver.pk).owner is None
    assert Workflow.objects.get(pk=lonely.pk).owner == personas.owner
    event = AuditEvent.objects.get(action="workflow.orphaned")
    assert "orphaned" in event.summary


def test_only_security_admins_mark_departures_and_only_once(personas):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        svc.person_mark_departed(actor=Actor.for_user(personas.owner), person=personas.outsider)
    svc.person_mark_departed(actor=Actor.for_user(personas.secadmin), person=personas.outsider)
    with pytest.raises(ValidationError):
        svc.person_mark_departed(actor=Actor.for_user(personas.secadmin), person=personas.outsider)


def test_owners_file_a_request_instead_of_transferring_directly(personas, estate):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        svc.ownership_transfer(actor=Actor.for_user(personas.owner), obj=estate["workflow"],
                               new_owner=personas.approver, reason="handover")


def test_transfer_records_the_reason_and_moves_team_grants(personas, estate):
    workflow = svc.ownership_transfer(actor=Actor.for_user(personas.secadmin), obj=estate["workflow"],
                                      new_owner=personas.approver, new_team=personas.other_team,
                                      reason="platform takes over deployments")
    assert workflow.owner == personas.approver and workflow.team == personas.other_team
    assert not Workflow.objects.restrict(personas.backup_owner, "view").filter(pk=workflow.pk).exists()
    event = AuditEvent.objects.get(action="workflow.transfer")
    assert "platform takes over" in event.summary
    assert event.changes["owner"] == {"before": personas.owner.pk, "after": personas.approver.pk}


def test_transfer_to_a_departed_person_or_without_reason_is_refused(personas, estate):
    with pytest.raises(ValidationError):
        svc.ownership_transfer(actor=Actor.for_user(personas.secadmin), obj=estate["workflow"],
                               new_owner=personas.approver, reason="")
    svc.person_mark_departed(actor=Actor.for_user(personas.secadmin), person=personas.outsider)
    personas.outsider.refresh_from_db()
    with pytest.raises(ValidationError):
        svc.ownership_transfer(actor=Actor.for_user(personas.secadmin), obj=estate["workflow"],
                               new_owner=personas.outsider, reason="why not")
