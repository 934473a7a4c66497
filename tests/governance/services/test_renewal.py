# ruff: noqa: F811  (the lifecycle fixtures are imported by name from tests/governance/connectors/conftest.py)
"""Renewal against a real OpenBao PKI: the superseded certificate is revoked after the overlap, the
lifetime comes from the policy, names are held to the system's declared hosts, and the new certificate
is announced. The hosts themselves are set by security admins only, on every write path."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit import Actor, verify_chain
from governance.choices import CredentialStatus
from governance.connectors.registry import pki_connector
from governance.models import AuditEvent, Credential, System
from governance.models.integrations import WebhookDelivery
from governance.models.lifecycle import RotationJob, RotationStatus
from governance.models.notifications import Notification
from governance.models.renewal import CertificateSupersession
from governance.services import inventory, provisioning, renewal, rotation
from tests.factories import SecretStoreFactory, SystemFactory
from tests.factories_integrations import make_endpoint
from tests.governance.connectors.conftest import (  # noqa: F401  (fixtures)
    TOKEN_ENV,
    eager_celery,
    fresh_connectors,
    make_credential,
    openbao,
    pki_store,
    ref,
    unique,
)

pytestmark = [pytest.mark.django_db(transaction=False)]
HOUR = dt.timedelta(hours=1)


def certificate(personas, pki_store, *, hosts, common="ingress", **extra):
    """A credential for a certificate OpenBao issued (CN <common>.test.internal) on a system declaring hosts."""
    name = unique(common).replace("_", "-")
    issued = pki_connector(pki_store).issue(ref(name=name, kind="certificate", max_age_days=10))
    system = SystemFactory(name=unique("system"), owner=personas.owner, team=personas.team,
                           hosts=[h.format(name=name) for h in hosts])
    credential = make_credential(personas, store=pki_store, path=issued.store_path, kind="certificate",
                                 system=system, identifier=issued.identifier, expires_at=issued.expires_at, **extra)
    return credential, issued


def renew(personas, credential, capture):
    with capture(execute=True):
        job = rotation.rotation_request(actor=Actor.for_user(personas.owner), credential=credential)
    job.refresh_from_db()
    credential.refresh_from_db()
    return job


def test_the_superseded_certificate_stays_valid_for_the_overlap_then_is_revoked_with_proof(
        personas, pki_store, openbao, eager_celery, settings, django_capture_on_commit_callbacks):
    settings.STEWARD_CERT_REVOKE_OVERLAP_HOURS = 2
    settings.STEWARD_CERT_LIFETIME_DAYS = 20
    settings.STEWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    make_endpoint(owner=personas.owner, url="http://127.0.0.1:9/steward", event_types=["certificate.renewed"])
    credential, issued = certificate(personas, pki_store, hosts=["{name}.test.internal"])
    pki = pki_connector(pki_store)

    job = renew(personas, credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.SUCCEEDED, job.last_error
    assert credential.identifier != issued.identifier
    # No policy of its own: the lifetime is STEWARD_CERT_LIFETIME_DAYS, not the 397-day maximum.
    assert abs(credential.expires_at - timezone.now() - dt.timedelta(days=20)) < dt.timedelta(minutes=5)

    row = CertificateSupersession.objects.get(credential=credential)
    assert (row.serial, row.superseded_by, row.status) == (issued.identifier.lower(), credential.identifier.lower(),
                                                          "pending")
    assert abs(row.revoke_after - row.superseded_at - 2 * HOUR) < dt.timedelta(seconds=1)
    announced = WebhookDelivery.objects.get(event_type="certificate.renewed").payload["data"]
    assert announced["serial"] == credential.identifier.lower()
    assert announced["superseded_serial"] == issued.identifier.lower()
    assert announced["store_path"] == credential.store_path

    # Inside the overlap both certificates are valid: consumers switch over.
    assert renewal.superseded_certificates_revoke(now=timezone.now()) == {"revoked": 0, "failed": 0, "skipped": 0}
    assert pki.observe(ref(kind="certificate", identifier=issued.identifier, store_path=issued.store_path)
                       ).state == "active"

    later = timezone.now() + 3 * HOUR
    assert renewal.superseded_certificates_revoke(now=later)["revoked"] == 1
    row.refresh_from_db()
    assert row.status == "revoked" and row.revoked_at is not None
    assert "listed in the CRL" in row.proof[0]
    assert pki.crl_contains(issued.identifier)
    assert pki.observe(ref(kind="certificate", identifier=credential.identifier,
                           store_path=credential.store_path)).state == "active"  # the new one is untouched
    # A second sweep (or a redelivered task) finds nothing left to do.
    assert renewal.superseded_certificates_revoke(now=later)["revoked"] == 0
    assert renewal.superseded_certificate_revoke(supersession_id=row.pk) == "skipped"
    assert AuditEvent.objects.filter(action="certificate.superseded_revoke").count() == 1
    assert verify_chain().intact


def test_a_renewal_recorded_twice_supersedes_once(personas, pki_store, openbao, eager_celery,
                                                  django_capture_on_commit_callbacks):
    credential, issued = certificate(personas, pki_store, hosts=["{name}.test.internal"])
    before = type(credential).objects.get(pk=credential.pk)
    result = pki_connector(pki_store).rotate(ref(name=credential.name, kind="certificate",
                                                 identifier=issued.identifier, store_path=issued.store_path,
                                                 max_age_days=10))
    first = renewal.renewal_record(credential=before, result=result, job_id=1)
    again = renewal.renewal_record(credential=before, result=result, job_id=1)
    assert first.pk == again.pk and CertificateSupersession.objects.filter(credential=credential).count() == 1


def test_a_credential_no_longer_active_has_its_superseded_certificate_revoked_at_once(
        personas, pki_store, openbao, eager_celery, settings, django_capture_on_commit_callbacks):
    settings.STEWARD_CERT_REVOKE_OVERLAP_HOURS = 48
    credential, issued = certificate(personas, pki_store, hosts=["{name}.test.internal"])
    assert renew(personas, credential, django_capture_on_commit_callbacks).status == RotationStatus.SUCCEEDED
    type(credential).objects.filter(pk=credential.pk).update(status="suspended")  # an incident
    assert renewal.superseded_certificates_revoke(now=timezone.now())["revoked"] == 1
    assert pki_connector(pki_store).crl_contains(issued.identifier)


@pytest.mark.parametrize("hosts, refusal", [
    (["other.test.internal"], "is not among the hosts its system declares"),
    ([], "declares no host names"),
])
def test_a_certificate_for_a_name_the_system_does_not_declare_is_refused(
        personas, pki_store, openbao, eager_celery, django_capture_on_commit_callbacks, hosts, refusal):
    credential, issued = certificate(personas, pki_store, hosts=hosts)
    job = renew(personas, credential, django_capture_on_commit_callbacks)
    assert job.status == RotationStatus.FAILED and refusal in job.last_error
    assert credential.identifier == issued.identifier  # nothing issued, nothing recorded
    assert not CertificateSupersession.objects.filter(credential=credential).exists()
    assert RotationJob.objects.filter(credential=credential).count() == 1


def test_a_failed_revocation_is_recorded_told_and_tried_again(personas, pki_store, openbao, eager_celery, mailoutbox,
                                                              django_capture_on_commit_callbacks):
    credential, issued = certificate(personas, pki_store, hosts=["{name}.test.internal"])
    row = CertificateSupersession.objects.create(
        credential=credential, serial="0a:0b:0c:0d", superseded_by=issued.identifier.lower(),
        superseded_at=timezone.now() - 2 * HOUR, revoke_after=timezone.now() - HOUR)
    with django_capture_on_commit_callbacks(execute=True):
        assert renewal.superseded_certificates_revoke()["failed"] == 1
    row.refresh_from_db()
    assert row.status == "failed" and row.attempt_count == 1 and "does not exist" in row.last_error
    assert any("still valid" in message.subject for message in mailoutbox)
    assert list(Notification.objects.filter(kind="certificate_not_revoked").values_list("recipient", "dedupe_key")) == [
        (personas.owner.pk, f"supersession:{row.pk}:failed:1")]
    for _ in range(renewal.MAX_ATTEMPTS):
        renewal.superseded_certificates_revoke()
    row.refresh_from_db()
    assert row.attempt_count == renewal.MAX_ATTEMPTS  # then it stops, failed, for a person to act on


# The host names: a security admin's declaration, on every write path --------------------------------

def test_only_a_security_admin_sets_a_systems_hosts_and_it_is_audited(personas):
    system = SystemFactory(name=unique("system"), owner=personas.owner, team=personas.team)
    with pytest.raises(PermissionDenied):
        inventory.system_hosts_set(actor=Actor.for_user(personas.owner), system=system, hosts=["a.example.com"],
                                   reason="mine")
    with pytest.raises(ValidationError) as error:
        inventory.system_hosts_set(actor=Actor.for_user(personas.secadmin), system=system, hosts=["not a host"],
                                   reason="typo")
    assert "hosts" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        inventory.system_hosts_set(actor=Actor.for_user(personas.secadmin), system=system, hosts=["a.example.com"],
                                   reason=" ")
    assert "reason" in error.value.message_dict
    inventory.system_hosts_set(actor=Actor.for_user(personas.secadmin), system=system,
                               hosts=["Orders.Example.com.", "*.orders.example.com", "orders.example.com"],
                               reason="CHG-1042")
    system.refresh_from_db()
    assert system.hosts == ["*.orders.example.com", "orders.example.com"]
    event = AuditEvent.objects.get(action="system.hosts_set", object_id=system.pk)
    assert event.changes["hosts"]["after"] == system.hosts and "CHG-1042" in event.summary
    # A plain edit cannot widen them, even a security admin's: the operation is named.
    with pytest.raises(ValidationError) as error:
        inventory.system_update(actor=Actor.for_user(personas.secadmin), system=system, data={"hosts": ["x.com"]})
    assert "/hosts/" in error.value.message_dict["hosts"][0]
    # An owner does not declare them when registering either.
    with pytest.raises(ValidationError) as error:
        inventory.system_create(actor=Actor.for_user(personas.owner), data={
            "name": unique("new"), "environment": "prod", "criticality": "medium", "team": personas.team,
            "hosts": ["bank.example.com"]})
    assert "hosts" in error.value.message_dict


def test_the_api_and_the_portal_hold_the_same_rule(personas, client):
    system = SystemFactory(name=unique("system"), owner=personas.owner, team=personas.team)
    api = APIClient()
    url = f"/api/v1/systems/{system.pk}/hosts/"
    api.force_authenticate(personas.owner)
    assert api.post(url, {"hosts": ["a.example.com"], "reason": "mine"}, format="json").status_code == 403
    response = api.patch(f"/api/v1/systems/{system.pk}/", {"hosts": ["a.example.com"]}, format="json")
    assert response.status_code == 400 and "/hosts/" in str(response.json()["fields"]["hosts"])
    api.force_authenticate(personas.secadmin)
    response = api.post(url, {"hosts": ["a.example.com", "no such host!"], "reason": "CHG-7"}, format="json")
    assert response.status_code == 400 and "hosts" in str(response.json())
    response = api.post(url, {"hosts": ["a.example.com"], "reason": "CHG-7"}, format="json")
    assert response.status_code == 200 and response.json()["hosts"] == ["a.example.com"]
    assert System.objects.get(pk=system.pk).hosts == ["a.example.com"]

    client.force_login(personas.owner)
    response = client.post(reverse("system-create"), {
        "name": unique("portal"), "environment": "prod", "criticality": "medium", "owner": personas.owner.pk,
        "team": personas.team.pk, "hosts": '["bank.example.com"]'})
    assert response.status_code == 200 and "/hosts/" in response.content.decode()
    assert not System.objects.filter(hosts__contains=["bank.example.com"]).exists()


# Provisioning a certificate: from a role held to the system's names, active only after proof ----------

@pytest.mark.parametrize("declared, outcome", [(True, "succeeded"), (False, "failed")])
def test_a_provisioned_certificate_is_active_only_after_proof(personas, openbao, declared, outcome):
    store = SecretStoreFactory(name=unique("pki-keys"), kind="openbao_pki", address=openbao.address,
                               credential_env_var=TOKEN_ENV,
                               settings={"mount": "pki", "role": "services", "domain": "test.internal",
                                         "key_mount": "secret"})
    name = unique("orders").replace("_", "-")
    system = SystemFactory(name=unique("system"), owner=personas.owner, team=personas.team,
                           hosts=[f"{name}.test.internal"] if declared else ["elsewhere.test.internal"])
    credential = Credential.objects.create(name=name, kind="certificate", system=system, identifier="", store=store,
                                           store_path="pki", owner=personas.owner, team=personas.team,
                                           status=CredentialStatus.PROVISIONING)
    run = provisioning.provisioning_start(actor=Actor.system(task_id="test"), credential=credential)
    assert provisioning.provisioning_execute(provisioning_id=run.pk) == outcome
    credential.refresh_from_db()
    run.refresh_from_db()
    if declared:
        assert credential.status == CredentialStatus.ACTIVE and credential.store_path.startswith("pki/cert/")
        assert abs(credential.expires_at - timezone.now() - dt.timedelta(days=47)) < dt.timedelta(minutes=5)
        assert any("verifies against the pki CA" in line for line in run.proof)
    else:
        assert credential.status == CredentialStatus.PROVISIONING_FAILED
        assert "not among the hosts its system declares" in run.reason and run.steps == []


def test_the_portal_form_sets_the_hosts_for_security_admins_only(personas, client):
    system = SystemFactory(name=unique("system"), owner=personas.owner, team=personas.team)
    url = reverse("system-hosts", args=[system.pk])
    client.force_login(personas.owner)
    assert client.get(url).status_code in (403, 404)
    assert client.post(url, {"hosts": "a.example.com", "reason": "mine"}).status_code in (403, 404)
    client.force_login(personas.secadmin)
    response = client.post(url, {"hosts": "a.example.com\nnot a host!", "reason": "CHG-9"})
    assert response.status_code == 200 and "Not a host name" in response.content.decode()
    response = client.post(url, {"hosts": "a.example.com\n*.a.example.com", "reason": "CHG-9"})
    assert response.status_code == 302
    assert System.objects.get(pk=system.pk).hosts == ["*.a.example.com", "a.example.com"]
    assert "a.example.com" in client.get(reverse("system-detail", args=[system.pk])).content.decode()
