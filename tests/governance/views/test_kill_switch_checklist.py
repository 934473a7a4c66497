"""The kill switch as a checklist (#19, 6): steps by hand marked done or waived from the portal, and the
workflow page's warning while a bound credential is still live after a kill switch."""

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.models import AuditEvent
from governance.models.lifecycle import KillSwitchActivation, KillSwitchStep

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def activation(personas, estate):
    """A kill switch of the owner's workflow whose connector hid Steward's copy; revoking it at the issuer is
    left to a person (the shape a KV-only key leaves behind)."""
    credential = estate["credential"]
    credential.status = "suspended"
    credential.save(update_fields=["status"])
    activation = KillSwitchActivation.objects.create(
        workflow=estate["workflow"], mode="activate", status="awaiting_manual", actor_label="olivia.owner",
        workflow_status_before="active", started_at=timezone.now(), reason="Token leaked")
    KillSwitchStep.objects.create(activation=activation, position=1, action="suspend_credential",
                                  credential=credential, label="Suspend credential", status="succeeded")
    activation.manual = KillSwitchStep.objects.create(
        activation=activation, position=2, action="manual_issuer", credential=credential, status="awaiting",
        label=f"Revoke {credential.name} where it is accepted, by hand", assignee=personas.backup_owner)
    return activation


def test_each_step_by_hand_shows_its_assignee_and_a_mark_done_form(client, personas, activation):
    client.force_login(personas.owner)
    body = client.get(activation.get_absolute_url()).content.decode()
    assert "Checklist: steps done by hand" in body and str(personas.backup_owner) in body
    assert reverse("killswitch-step-done", args=[activation.pk, activation.manual.pk]) in body
    assert "Mark done" in body and "Waive" not in body  # waiving is a security admin's
    client.force_login(personas.secadmin)
    body = client.get(activation.get_absolute_url()).content.decode()
    assert reverse("killswitch-step-waive", args=[activation.pk, activation.manual.pk]) in body


def test_mark_done_needs_a_comment_and_changes_nothing_without_one(client, personas, activation):
    client.force_login(personas.backup_owner)
    url = reverse("killswitch-step-done", args=[activation.pk, activation.manual.pk])
    response = client.post(url, {"comment": "  "})
    assert response.status_code == 400 and "Say what was done" in response.content.decode()
    activation.manual.refresh_from_db()
    assert activation.manual.status == "awaiting"
    response = client.post(url, {"comment": "Revoked at the issuer, ticket SEC-42"})
    assert response.status_code == 302
    activation.manual.refresh_from_db()
    activation.refresh_from_db()
    assert activation.manual.status == "marked_done" and activation.manual.closed_by == personas.backup_owner
    assert activation.status != "awaiting_manual"  # its last step closed the activation
    assert AuditEvent.objects.filter(action="killswitch.step_done").exists()


def test_only_a_security_admin_may_waive_and_needs_a_reason(client, personas, activation):
    url = reverse("killswitch-step-waive", args=[activation.pk, activation.manual.pk])
    client.force_login(personas.owner)
    response = client.post(url, {"reason": "not needed"})
    assert response.status_code == 400 and "Only a security admin may waive" in response.content.decode()
    client.force_login(personas.secadmin)
    assert "Say why this step is waived" in client.post(url, {"reason": ""}).content.decode()
    activation.manual.refresh_from_db()
    assert activation.manual.status == "awaiting"
    assert client.post(url, {"reason": "The issuer was decommissioned"}).status_code == 302
    activation.manual.refresh_from_db()
    assert activation.manual.status == "waived"


def test_a_step_of_another_activation_or_an_unseen_one_answers_404(client, personas, activation, estate):
    other = KillSwitchActivation.objects.create(
        workflow=estate["other_workflow"], mode="activate", status="awaiting_manual", actor_label="ada",
        workflow_status_before="active", started_at=timezone.now())
    client.force_login(personas.owner)
    assert client.post(reverse("killswitch-step-done", args=[other.pk, activation.manual.pk]),
                       {"comment": "x"}).status_code == 404
    client.force_login(personas.outsider)
    assert client.post(reverse("killswitch-step-done", args=[activation.pk, activation.manual.pk]),
                       {"comment": "x"}).status_code == 404


def test_workflow_page_warns_while_a_bound_credential_is_still_live(client, personas, activation, estate):
    client.force_login(personas.owner)
    url = reverse("workflow-detail", args=[estate["workflow"].pk])
    body = client.get(url).content.decode()
    assert "Still live after the kill switch" in body and estate["credential"].name in body
    client.force_login(personas.backup_owner)
    client.post(reverse("killswitch-step-done", args=[activation.pk, activation.manual.pk]),
                {"comment": "Revoked at the issuer"})
    assert "Still live after the kill switch" not in client.get(url).content.decode()


def test_a_drill_never_warns(client, personas, estate):
    KillSwitchActivation.objects.create(workflow=estate["workflow"], mode="drill", status="completed",
                                        actor_label="olivia.owner", workflow_status_before="active",
                                        started_at=timezone.now(), finished_at=timezone.now())
    client.force_login(personas.owner)
    body = client.get(reverse("workflow-detail", args=[estate["workflow"].pk])).content.decode()
    assert "Still live after the kill switch" not in body
