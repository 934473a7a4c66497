"""Owner attestation: opening campaigns, item assignment, answers and the requests they file, departures."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance import permissions
from governance.audit import Actor
from governance.choices import CredentialStatus, WorkflowStatus
from governance.models import AuditEvent, Credential, Workflow
from governance.models.attestation import AttestationCampaign, AttestationItem, ItemState
from governance.services import attestation as svc
from governance.services.people import person_mark_departed
from tests.factories import CredentialFactory, WorkflowFactory
from tests.factories_attestation import default_approval_policy, item_for, open_campaign

pytestmark = [pytest.mark.django_db]


def answer(person, item, answer, **kwargs):
    return svc.attestation_item_answer(actor=Actor.for_user(person), item_id=item.pk, answer=answer, **kwargs)


def approval_requests():
    from governance.models.approvals import ApprovalRequest

    return ApprovalRequest.objects.all()


# Opening campaigns


@pytest.mark.embedded
def test_opening_is_idempotent_per_scope_and_period(personas, estate):
    first = open_campaign(personas)
    again = open_campaign(personas, due_in_days=30)
    assert first.just_opened and not again.just_opened
    assert again.pk == first.pk and AttestationCampaign.objects.count() == 1
    assert first.items.count() == 4  # two workflows, two credentials
    assert AuditEvent.objects.filter(action="attestation.campaign_open").count() == 1
    later = open_campaign(personas, period_start=timezone.now().date() + dt.timedelta(days=200))
    assert later.pk != first.pk and later.just_opened


def test_only_security_admins_open_campaigns(personas):
    today = timezone.now().date()
    for person in (personas.owner, personas.auditor):
        with pytest.raises(PermissionDenied):
            svc.attestation_campaign_open(actor=Actor.for_user(person), scope_type="estate",
                                          period_start=today,
                                          period_end=today, due_at=timezone.now())
    with pytest.raises(ValidationError) as exc:
        open_campaign(personas, scope_type="team")
    assert "scope_id" in exc.value.message_dict


@pytest.mark.embedded
def test_items_go_to_the_owner_else_the_backup_manager_else_nobody(personas, estate):
    orphan = WorkflowFactory(name="orphan", owner=None, team=personas.team)
    lonely = WorkflowFactory(name="lonely", owner=None, team=None)
    WorkflowFactory(name="gone", status=WorkflowStatus.RETIRED, retired_at=timezone.now())
    CredentialFactory(name="revoked", status=CredentialStatus.REVOKED)
    campaign = open_campaign(personas)
    assert item_for(campaign, estate["workflow"]).assignee == personas.owner
    assert item_for(campaign, estate["other_credential"]).assignee == personas.approver
    orphan_item = item_for(campaign, orphan)
    assert orphan_item.assignee == personas.backup_owner and orphan_item.original_owner is None
    assert item_for(campaign, lonely).assignee is None
    assert campaign.items.count() == 6  # the retired workflow and revoked credential are not attested
    assert set(campaign.items.values_list("team__name", flat=True)) == {"Payments", "Platform", None}


def test_scopes_select_their_objects(personas, estate):
    Workflow.objects.filter(pk=estate["workflow"].pk).update(can_change=True)  # privileged automation
    estate["other_workflow"].systems.add(estate["other_system"])

    def objects(campaign):
        return set(campaign.items.values_list("object_repr", flat=True))

    payments = {"payments-deploy", "payments-deploy-key"}
    assert objects(open_campaign(personas, scope_type="privileged")) == payments
    assert objects(open_campaign(personas, scope_type="estate", exclude_privileged=True)) == {
        "platform-sync", "platform-token"}
    assert objects(open_campaign(personas, scope_type="team", scope_id=personas.team.pk)) == {
        "payments-deploy", "payments-deploy-key"}
    assert objects(open_campaign(personas, scope_type="system", scope_id=estate["other_system"].pk)) == {
        "platform-sync", "platform-token"}


# Answers


@pytest.mark.embedded
def test_confirm_stamps_last_attested_at_through_an_audited_write(personas, estate):
    item = item_for(open_campaign(personas), estate["workflow"])
    answer(personas.owner, item, "confirm")
    workflow = Workflow.objects.get(pk=estate["workflow"].pk)
    item.refresh_from_db()
    assert item.state == ItemState.ANSWERED and item.answer == "confirm"
    assert item.answered_by == personas.owner
    assert workflow.last_attested_at == item.answered_at
    event = AuditEvent.objects.get(action="workflow.attest", object_id=str(workflow.pk))
    assert event.actor_label == personas.owner.username
    assert event.changes["attestation_item"]["after"] == item.pk
    assert AuditEvent.objects.filter(action="attestation.answer", object_id=str(item.pk)).exists()
    with pytest.raises(ValidationError):
        answer(personas.owner, item, "confirm")


def test_only_the_assignee_answers(personas, estate):
    item = item_for(open_campaign(personas), estate["workflow"])
    for person in (personas.backup_owner, personas.secadmin, personas.auditor, personas.approver):
        with pytest.raises(PermissionDenied):
            answer(person, item, "confirm")
    with pytest.raises(PermissionDenied):
        svc.attestation_item_answer(actor=Actor.system(), item_id=item.pk, answer="confirm")
    assert AttestationItem.objects.get(pk=item.pk).state == ItemState.OPEN


def test_anything_but_confirm_needs_a_comment_without_secrets(personas, estate):
    item = item_for(open_campaign(personas), estate["credential"])
    with pytest.raises(ValidationError) as exc:
        answer(personas.owner, item, "flag_storage")
    assert "comment" in exc.value.message_dict
    with pytest.raises(ValidationError):
        answer(personas.owner, item, "flag_storage", comment="it is password=hunter2hunter2 in the wiki")
    assert AttestationItem.objects.get(pk=item.pk).state == ItemState.OPEN


@pytest.mark.embedded
def test_flag_storage_is_recorded_and_told_to_security_admins(personas, estate, mailoutbox,
                                                              django_capture_on_commit_callbacks):
    item = item_for(open_campaign(personas), estate["credential"])
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        answer(personas.owner, item, "flag_storage", comment="Still in a CI variable, not in the vault")
    item.refresh_from_db()
    assert item.answer == "flag_storage" and item.resulting_request_id is None
    assert Credential.objects.get(pk=estate["credential"].pk).last_attested_at is None
    assert [m.to for m in mailoutbox] == [[personas.secadmin.email]]
    assert "CI variable" in mailoutbox[0].body


@pytest.mark.embedded
def test_transfer_files_an_ownership_transfer_request(personas, estate):
    default_approval_policy(personas)
    item = item_for(open_campaign(personas), estate["workflow"])
    with pytest.raises(ValidationError) as exc:
        answer(personas.owner, item, "transfer", comment="Platform runs it now")
    assert "transfer_to" in exc.value.message_dict
    answer(personas.owner, item, "transfer", comment="Platform runs it now", transfer_to=personas.approver,
           transfer_team=personas.other_team, ticket={"system": "jira", "key": "OPS-7"})
    item.refresh_from_db()
    request = approval_requests().get(pk=item.resulting_request_id)
    assert request.action == "ownership_transfer" and request.target == estate["workflow"]
    assert request.payload == {"new_owner": personas.approver.pk, "new_team": personas.other_team.pk}
    assert request.requested_by == personas.owner and "Platform runs it now" in request.justification
    assert (request.ticket_key, item.ticket_key) == ("OPS-7", "OPS-7")
    assert Workflow.objects.get(pk=estate["workflow"].pk).owner == personas.owner  # until approved
    assert item.details["transfer_to"] == personas.approver.pk


def test_scope_change_files_a_privileged_scope_change_for_the_credential(personas, estate):
    default_approval_policy(personas)
    campaign = open_campaign(personas)
    answer(personas.owner, item_for(campaign, estate["workflow"]), "change_scopes",
           comment="Deploys need only read", requested_scopes=["repo:read"])
    request = approval_requests().get()
    assert request.action == "privileged_scope_change" and request.target == estate["credential"]
    assert request.payload == {"scopes": ["repo:read"], "privilege_level": "read"}
    credential_item = item_for(campaign, estate["credential"])
    with pytest.raises(ValidationError) as exc:  # the same scopes are no change at all
        answer(personas.owner, credential_item, "change_scopes", comment="fine", requested_scopes=[])
    assert "requested_scopes" in exc.value.message_dict


def test_revoke_files_a_retirement_request(personas, estate):
    default_approval_policy(personas)
    campaign = open_campaign(personas)
    answer(personas.owner, item_for(campaign, estate["workflow"]), "revoke", comment="Replaced by Argo")
    request = approval_requests().get()
    assert request.action == "retirement" and request.target == estate["workflow"]
    assert item_for(campaign, estate["workflow"]).resulting_request_id == request.pk


def test_revoking_a_credential_files_a_retirement_request_for_it(personas, estate):
    default_approval_policy(personas, actions=("retirement",))
    item = item_for(open_campaign(personas), estate["credential"])
    answer(personas.owner, item, "revoke", comment="Unused since March")
    request = approval_requests().get()
    assert request.action == "retirement" and request.target == estate["credential"]


def test_a_refused_request_rolls_the_answer_back(personas, estate):
    item = item_for(open_campaign(personas), estate["workflow"])  # no approval policy exists
    with pytest.raises(ValidationError):
        answer(personas.owner, item, "revoke", comment="Replaced by Argo")
    item.refresh_from_db()
    assert item.state == ItemState.OPEN and item.answer == ""
    assert not AuditEvent.objects.filter(action="attestation.answer").exists()


@pytest.mark.embedded
def test_confirm_seen_confirms_only_posted_open_own_items(personas, estate):
    extra = WorkflowFactory(name="payments-report", owner=personas.owner, team=personas.team)
    campaign = open_campaign(personas)
    seen, answered, hidden = (item_for(campaign, obj)
                              for obj in (estate["workflow"], extra, estate["credential"]))
    answer(personas.owner, answered, "flag_storage", comment="odd path")
    not_mine = item_for(campaign, estate["other_workflow"])
    result = svc.attestation_items_confirm_seen(actor=Actor.for_user(personas.owner),
                                                item_ids=[seen.pk, answered.pk, not_mine.pk, "x"])
    assert result.confirmed == 1 and result.left_out == 0
    states = dict(AttestationItem.objects.values_list("pk", "answer"))
    assert states[seen.pk] == "confirm" and states[answered.pk] == "flag_storage"
    assert states[hidden.pk] == "" and states[not_mine.pk] == ""
    assert Workflow.objects.get(pk=estate["workflow"].pk).last_attested_at is not None


# Departures


@pytest.mark.embedded
def test_a_leavers_open_items_move_to_the_backup_manager(personas, estate, mailoutbox,
                                                         django_capture_on_commit_callbacks):
    lonely = WorkflowFactory(name="lonely", owner=personas.owner, team=None)
    campaign = open_campaign(personas)
    done = item_for(campaign, estate["credential"])
    answer(personas.owner, done, "confirm")
    secadmin = Actor.for_user(personas.secadmin)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        person_mark_departed(actor=secadmin, person=personas.owner)
        # A no-op once person_mark_departed calls it itself.
        svc.attestation_items_reassign_for_departure(actor=secadmin, person=personas.owner)
    assert item_for(campaign, estate["workflow"]).assignee == personas.backup_owner
    assert item_for(campaign, estate["workflow"]).original_owner == personas.owner
    assert item_for(campaign, lonely).assignee is None
    assert item_for(campaign, estate["credential"]).assignee == personas.owner  # answered: history stays
    assert AuditEvent.objects.filter(action="attestation.item_reassigned").count() == 1
    assert AuditEvent.objects.filter(action="attestation.item_unassigned").count() == 1
    assert any(m.to == [personas.backup_owner.email] for m in mailoutbox)
    with pytest.raises(PermissionDenied):
        svc.attestation_items_reassign_for_departure(actor=Actor.for_user(personas.owner),
                                                     person=personas.owner)


# Who sees what


def test_items_are_visible_to_assignee_team_and_readers_and_answerable_by_the_assignee(personas, estate):
    campaign = open_campaign(personas)
    payments = {item_for(campaign, estate["workflow"]).pk, item_for(campaign, estate["credential"]).pk}

    def visible(person, action="view"):
        items = permissions.restrict(AttestationItem.objects.all(), person, action)
        return set(items.values_list("pk", flat=True))

    assert visible(personas.owner) == payments == visible(personas.backup_owner)
    assert visible(personas.owner, "change") == payments and visible(personas.backup_owner, "change") == set()
    assert visible(personas.approver) & payments == set() and visible(personas.outsider) == set()
    assert len(visible(personas.auditor)) == 4 and visible(personas.auditor, "change") == set()
    campaigns = AttestationCampaign.objects.all()
    assert permissions.restrict(campaigns, personas.owner).count() == 0
    assert permissions.restrict(campaigns, personas.auditor).count() == 1
