"""The inbox's notifications: each source tells the right person once, beside its mail (issue #19)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.audit import Actor
from governance.models.checks import Finding
from governance.models.notifications import Notification, NotificationKind
from governance.services import approvals, approvals_notify, approvals_sweep, attestation
from governance.services import notifications as svc
from governance.services.lifecycle import notify_owner
from governance.services.sweep import sweep_run
from portal.celery import app
from tests.conftest import actor
from tests.factories import CredentialFactory, PersonFactory
from tests.factories_approvals import A, file_request, make_policy
from tests.factories_attestation import item_for, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
H = dt.timedelta(hours=1)
K = NotificationKind


def told(kind=None, **filters):
    rows = Notification.objects.filter(**filters)
    rows = rows.filter(kind=kind) if kind else rows
    return sorted(rows.values_list("recipient__username", flat=True))


@pytest.fixture
def no_schedule(settings):
    settings.STEWARD_ATTESTATION_SCHEDULE = {"campaigns": []}


# Approval requests -------------------------------------------------------------------------------

@pytest.fixture
def filed(personas, estate):
    make_policy(groups=[personas.other_team.group], expiry_hours=72, reminder_before_hours=24)
    return file_request(actor(personas.owner), A.RETIREMENT, estate, personas)


def test_a_filed_request_tells_its_deciders_once(personas, filed):
    assert told(K.APPROVAL_WAITING) == [personas.approver.username]  # not the requester, not the others
    note = Notification.objects.get()
    assert note.link == f"/approvals/{filed.pk}/" and note.object_type == "governance.approvalrequest"
    assert note.object_id == filed.pk and note.subject.startswith(f"Approval request #{filed.pk}")
    assert note.read_at is None and "[Steward]" not in note.subject
    approvals_notify.notify_filed(filed)  # the task redelivered
    assert Notification.objects.count() == 1


def test_the_decision_tells_the_requester(personas, filed):
    approvals.approval_request_reject(actor=actor(personas.approver), request_id=filed.pk, reason="not now")
    assert told(K.APPROVAL_DECIDED) == [personas.owner.username]
    assert "rejected" in Notification.objects.get(kind=K.APPROVAL_DECIDED).subject


def test_the_sweeps_reminder_and_expiry_tell_once_each(personas, filed):
    t0 = filed.created_at
    approvals_sweep.approval_requests_sweep(now=t0 + 49 * H)
    approvals_sweep.approval_requests_sweep(now=t0 + 50 * H)
    assert told(K.APPROVAL_WAITING) == [personas.approver.username] * 2  # filed, reminded
    approvals_sweep.approval_requests_sweep(now=t0 + 72 * H)
    approvals_sweep.approval_requests_sweep(now=t0 + 73 * H)
    assert told(K.APPROVAL_DECIDED) == [personas.owner.username]
    assert Notification.objects.filter(dedupe_key=f"approval:{filed.pk}:expired").count() == 1


def test_suppressed_notices_write_no_notification(personas, estate):
    make_policy(groups=[personas.other_team.group])
    with approvals_notify.notifications_suppressed():
        file_request(actor(personas.owner), A.RETIREMENT, estate, personas)
    assert not Notification.objects.exists()


# Findings opened by the sweep ---------------------------------------------------------------------

def test_a_finding_opened_by_the_sweep_tells_the_objects_owner_once(personas):
    old = timezone.now() - dt.timedelta(days=400)
    bad = CredentialFactory(last_rotated_at=old, owner=personas.owner, team=personas.team)
    CredentialFactory(last_rotated_at=old, owner=None, team=personas.team)  # nobody owns it: nobody told
    sweep_run(checks=["rotation-age"], trigger="test")
    finding = Finding.objects.get(object_id=bad.pk)
    assert told(K.FINDING_OPENED) == [personas.owner.username]
    note = Notification.objects.get()
    assert (note.object_type, note.object_id) == ("governance.finding", finding.pk)
    assert note.link == f"/findings/{finding.pk}/"
    assert bad.name in note.subject
    sweep_run(checks=["rotation-age"], trigger="test")  # a second sweep opens nothing and tells no one
    assert Notification.objects.count() == 1
    # resolved, then failing again: the reopening is a new event
    type(bad).objects.filter(pk=bad.pk).update(last_rotated_at=timezone.now())
    sweep_run(checks=["rotation-age"], trigger="test")
    type(bad).objects.filter(pk=bad.pk).update(last_rotated_at=old)
    sweep_run(checks=["rotation-age"], trigger="test")
    assert told(K.FINDING_OPENED) == [personas.owner.username] * 2


def test_thousands_of_findings_are_told_in_a_constant_number_of_queries(personas):
    check = type("C", (), {"name": "Rotation age", "code": "rotation-age",
                           "get_severity_display": lambda self: "High"})()
    owners = [personas.owner, personas.approver, PersonFactory(is_active=False)]

    def findings(n, start):
        return [Finding(pk=start + i, object_type="governance.credential", object_id=start + i,
                        object_repr=f"key-{i}", owner_id=owners[i % 3].pk, reopened_count=0) for i in range(n)]

    with CaptureQueriesContext(connection) as few:
        svc.findings_opened_notify(check=check, findings=findings(30, 1))
    with CaptureQueriesContext(connection) as many:
        svc.findings_opened_notify(check=check, findings=findings(900, 1000))
    if connection.vendor == "postgresql":
        assert len(many) == len(few) <= 3  # the recipients, one insert (inside the savepoint)
    else:  # SQLite caps a statement's variables: Django splits the insert by that cap, not by row
        fields = [f for f in Notification._meta.concrete_fields if not f.primary_key]
        per_insert = connection.ops.bulk_batch_size(fields, [None] * 600)
        assert len(many) <= len(few) + math.ceil(600 / per_insert)
    assert Notification.objects.count() == 20 + 600  # the inactive person is told nothing
    svc.findings_opened_notify(check=check, findings=findings(900, 1000))  # run twice: told once
    assert Notification.objects.count() == 620


# Attestation ----------------------------------------------------------------------------------------

def test_an_opened_campaign_tells_each_assignee_once(personas, estate, no_schedule):
    campaign = open_campaign(personas)
    assignees = sorted({i.assignee.username for i in campaign.items.exclude(assignee=None)})
    assert told(K.ATTESTATION) == assignees and personas.owner.username in assignees
    note = Notification.objects.get(recipient=personas.owner)
    assert note.link == "/attestations/" and campaign.name in note.body
    assert open_campaign(personas).pk == campaign.pk  # opened again (the schedule twice): the same campaign
    assert told(K.ATTESTATION) == assignees


def test_reminders_and_escalations_tell_their_people_once(personas, estate, no_schedule):
    campaign = open_campaign(personas, due_in_days=3)
    Notification.objects.all().delete()
    attestation.attestation_campaigns_sweep(now=timezone.now())
    attestation.attestation_campaigns_sweep(now=timezone.now())
    assert told(K.ATTESTATION) == sorted([personas.owner.username, personas.approver.username])
    Notification.objects.all().delete()
    attestation.attestation_campaigns_sweep(now=campaign.due_at + H)
    attestation.attestation_campaigns_sweep(now=campaign.due_at + 2 * H)
    # overdue: the Payments manager, and the security admins for Platform (no manager)
    assert told(K.ATTESTATION) == sorted([personas.backup_owner.username, personas.secadmin.username])
    assert item_for(campaign, estate["workflow"]).escalated_to == personas.backup_owner


# Lifecycle failures (notify_owner) ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", [K.ROTATION_FAILED, K.PROVISIONING_FAILED, K.REVOCATION_FAILED,
                                  K.CERTIFICATE_NOT_REVOKED])
def test_a_lifecycle_failure_tells_the_owner_once(personas, estate, kind, mailoutbox,
                                                  django_capture_on_commit_callbacks):
    credential = estate["credential"]
    for _ in range(2):  # the task ran twice
        with django_capture_on_commit_callbacks(execute=True):
            notify_owner(credential, subject=f"[Steward] {kind.label}: {credential}", body="Reason: it broke",
                         kind=kind, dedupe_key=f"test:{kind}:1")
    assert told(kind) == [personas.owner.username]
    note = Notification.objects.get()
    assert note.subject == f"{kind.label}: {credential}" and note.link == credential.get_absolute_url()
    assert (note.object_type, note.object_id) == ("governance.credential", credential.pk)
    assert [m.to for m in mailoutbox] == [[personas.owner.email]] * 2  # the mail is as it was


def test_without_an_owner_the_team_manager_is_told_and_departed_people_never(personas, estate):
    credential = estate["credential"]
    credential.owner = None
    notify_owner(credential, subject="s", body="b", kind=K.ROTATION_FAILED, dedupe_key="k1")
    assert told() == [personas.backup_owner.username]
    gone = PersonFactory(status="departed", departed_at=timezone.now())
    credential.owner = gone
    notify_owner(credential, subject="s", body="b", kind=K.ROTATION_FAILED, dedupe_key="k2")
    assert told() == [personas.backup_owner.username]


def test_a_secret_value_never_reaches_a_notification(personas):
    svc.notification_send(recipient=personas.owner, kind=K.ROTATION_FAILED, dedupe_key="secret",
                          subject="Rotation failed", body="Reason: password=Sup3rS3cretValue!x9",
                          link="https://steward.example.com/credentials/1/")
    note = Notification.objects.get()
    assert note.body == svc.WITHHELD and "Sup3r" not in note.subject
    assert note.link == ""  # not a portal path (the base URL is not set here): dropped


def test_links_are_portal_paths(settings):
    settings.STEWARD_BASE_URL = "https://steward.example.com/"
    assert svc.portal_path("https://steward.example.com/credentials/1/") == "/credentials/1/"
    assert svc.portal_path("https://evil.example.com/x") == "" and svc.portal_path("//evil/x") == ""


# Marking read -------------------------------------------------------------------------------------------------

def test_marking_read_one_and_all_only_for_the_recipient(personas):
    for i in range(3):
        svc.notification_send(recipient=personas.owner, kind=K.ATTESTATION, subject=f"n{i}", dedupe_key=f"n{i}")
    svc.notification_send(recipient=personas.approver, kind=K.ATTESTATION, subject="theirs", dedupe_key="t")
    first = Notification.objects.filter(recipient=personas.owner).first()
    with pytest.raises(PermissionDenied):
        svc.notification_mark_read(actor=Actor.for_user(personas.approver), notification=first)
    assert svc.notification_mark_read(actor=Actor.for_user(personas.owner), notification=first) is True
    assert svc.notification_mark_read(actor=personas.owner, notification=first) is False  # already read
    assert svc.notifications_mark_all_read(actor=personas.owner) == 2
    assert not Notification.objects.filter(recipient=personas.owner, read_at=None).exists()
    assert Notification.objects.get(recipient=personas.approver).read_at is None


# Retention ------------------------------------------------------------------------------------------------

def test_the_purge_deletes_only_what_is_past_the_retention(personas, settings):
    settings.STEWARD_NOTIFICATION_RETENTION_DAYS = 30
    for i in range(4):
        svc.notification_send(recipient=personas.owner, kind=K.ATTESTATION, subject=f"n{i}", dedupe_key=f"n{i}")
    old = list(Notification.objects.order_by("id").values_list("id", flat=True)[:2])
    Notification.objects.filter(id__in=old).update(created_at=timezone.now() - dt.timedelta(days=31))
    assert svc.notifications_purge() == 2 and svc.notifications_purge() == 0
    assert sorted(Notification.objects.values_list("subject", flat=True)) == ["n2", "n3"]
    assert svc.notifications_purge(now=timezone.now() + dt.timedelta(days=31)) == 2


def test_the_purge_runs_daily_from_beat():
    entry = app.conf.beat_schedule["notifications-purge"]
    assert entry["task"] == "governance.notifications.purge" and entry["schedule"] == 24 * 3600.0
    assert "governance.notifications.purge" in app.tasks
