"""Owners at filing time count: whoever owned the object, or managed its backup team, at any time while a
request on it was pending may not approve it (unless the policy lets owners), whatever path moved it."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction

from governance.models.approvals import ApprovalRequest
from governance.selectors.approvals import attach_targets, owners_while_pending
from governance.services import approvals, people
from governance.services.approvals import decision_blockers
from governance.services.common import record
from tests.conftest import actor
from tests.factories import CredentialFactory, PersonFactory, TeamFactory
from tests.factories_approvals import make_policy

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def policy(personas):
    return make_policy(groups=[personas.other_team.group])


def _scope_change(personas, estate):
    return approvals.approval_request_file(
        actor=actor(personas.backup_owner), action="privileged_scope_change", target=estate["credential"],
        payload={"scopes": ["deploy:write", "deploy:admin"], "privilege_level": "admin"},
        justification="The release job must manage deploy keys")


def test_transfer_away_approve_take_back(personas, estate, policy):
    """Reproduction: a person transferred a credential away, approved a request on it, and took it back."""
    owner = personas.owner
    owner.groups.add(personas.other_team.group)  # she is an approver too
    rita = PersonFactory(username="rita.receiver", teams=[personas.team])
    pending = _scope_change(personas, estate)
    away = approvals.approval_request_file(
        actor=actor(owner), action="ownership_transfer", target=estate["credential"],
        payload={"new_owner": rita.pk}, justification="Rita takes the deploy key")
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=away.pk)
    estate["credential"].refresh_from_db()
    assert estate["credential"].owner == rita

    with pytest.raises(PermissionDenied, match="owned it or managed its backup team while this request was pending"):
        approvals.approval_request_approve(actor=actor(owner), request_id=pending.pk)
    back = approvals.approval_request_file(
        actor=actor(rita), action="ownership_transfer", target=estate["credential"],
        payload={"new_owner": owner.pk}, justification="Back to Olivia")
    approvals.approval_request_approve(actor=actor(personas.approver), request_id=back.pk)
    pending.refresh_from_db()
    assert pending.status == "pending" and not pending.decisions.exists()
    assert decision_blockers(person=owner, requests=[pending])[pending.pk]  # the queue page says so too


def test_any_audited_write_path_counts_a_security_admin_transfer_too(personas, estate, policy):
    personas.owner.groups.add(personas.other_team.group)
    pending = _scope_change(personas, estate)
    people.ownership_transfer(actor=actor(personas.secadmin), obj=estate["credential"], new_owner=personas.approver,
                              reason="reorganisation")
    # the former owner, and the new one, may not approve
    for person in (personas.owner, personas.approver):
        with pytest.raises(PermissionDenied, match="owns or would receive|own or would receive"):
            approvals.approval_request_approve(actor=actor(person), request_id=pending.pk)


def test_the_backup_teams_manager_while_pending_counts(personas, estate, policy):
    """The credential moves from Payments (managed by the backup owner) to a new team; the former manager
    may not approve, nor the new team's manager, nor the person who managed the team during the request."""
    personas.backup_owner.groups.add(personas.other_team.group)
    filer = PersonFactory(username="carl.teammate", teams=[personas.team])
    pending = approvals.approval_request_file(
        actor=actor(filer), action="privileged_scope_change", target=estate["credential"],
        payload={"scopes": ["deploy:admin"], "privilege_level": "admin"}, justification="needed")
    assert set(pending.owners_at_filing) == {personas.owner.pk, personas.backup_owner.pk}
    nina = PersonFactory(username="nina.newmanager")
    new_team = TeamFactory(name="Release", manager=nina)
    people.ownership_transfer(actor=actor(personas.secadmin), obj=estate["credential"], new_owner=personas.owner,
                              new_team=new_team, reason="Release engineering owns deploy keys")
    victor = PersonFactory(username="victor.interim")
    with transaction.atomic():  # a manager change of the new team, audited in its transaction
        previous = new_team.manager_id
        new_team.manager = victor
        new_team.save(update_fields=["manager"])
        record(actor=actor(personas.secadmin), action="team.update", instance=new_team, summary="interim manager",
               before={"manager": previous}, after={"manager": victor.pk})
    [request] = attach_targets([ApprovalRequest.objects.get(pk=pending.pk)])
    assert {personas.owner.pk, personas.backup_owner.pk, nina.pk, victor.pk} <= owners_while_pending([request])[
        pending.pk]
    with pytest.raises(PermissionDenied, match="managed its backup team"):
        approvals.approval_request_approve(actor=actor(personas.backup_owner), request_id=pending.pk)


def test_changes_before_filing_or_after_the_decision_do_not_count(personas, estate, policy):
    former = PersonFactory(username="former.owner", teams=[personas.team])
    former.groups.add(personas.other_team.group)
    people.ownership_transfer(actor=actor(personas.secadmin), obj=estate["credential"], new_owner=former,
                              reason="for a while")
    people.ownership_transfer(actor=actor(personas.secadmin), obj=estate["credential"], new_owner=personas.owner,
                              reason="back")
    pending = _scope_change(personas, estate)
    [request] = attach_targets([pending])
    assert former.pk not in owners_while_pending([request])[pending.pk]
    approvals.approval_request_approve(actor=actor(former), request_id=pending.pk)


def test_the_queue_page_reads_owners_for_many_requests_in_constant_queries(personas, estate, policy,
                                                                         django_assert_max_num_queries):
    requests = []
    for n in range(6):
        credential = CredentialFactory(name=f"key-{n}", system=estate["system"], owner=personas.owner,
                                       team=personas.team)
        requests.append(approvals.approval_request_file(
            actor=actor(personas.backup_owner), action="privileged_scope_change", target=credential,
            payload={"scopes": ["x:admin"], "privilege_level": "admin"}, justification="needed"))
        people.ownership_transfer(actor=actor(personas.secadmin), obj=credential, new_owner=personas.backup_owner,
                                  reason="moves")
    fresh = list(ApprovalRequest.objects.filter(pk__in=[r.pk for r in requests]).select_related("policy"))
    with django_assert_max_num_queries(9):
        reasons = decision_blockers(person=personas.approver, requests=fresh)
    assert all(reason is None for reason in reasons.values())

