"""Integrations: the token lifecycle, the mirror credential, the on-behalf-of rule, the command."""

import datetime as dt
import hashlib
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit import Actor, verify_chain
from governance.choices import CredentialKind, CredentialStatus
from governance.models import AuditEvent, Credential
from governance.models.integrations import Delegation, Integration, IntegrationToken
from governance.services import delegations
from governance.services import integrations as services
from tests.factories import PersonFactory
from tests.factories_integrations import bearer, delegate, make_integration

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami/"


def status_with(token, on_behalf_of=None):
    return APIClient().get(WHOAMI, **bearer(token, on_behalf_of)).status_code


@pytest.mark.embedded
def test_token_is_shown_once_and_stored_only_as_a_hash_with_a_visible_prefix(personas):
    integration, token = make_integration(owner=personas.owner, scopes=["read"], name="ci")
    stored = IntegrationToken.objects.get(integration=integration)
    assert token.startswith(stored.prefix + "_") and stored.prefix.startswith("stw_")
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    secret_part = token[len(stored.prefix) + 1:]
    for row in IntegrationToken.objects.values():
        assert all(secret_part not in str(value) for value in row.values())
    for event in AuditEvent.objects.all():
        assert secret_part not in str(event.changes) and secret_part not in event.summary
    assert status_with(token) == 200
    assert status_with(token[:-1] + ("A" if token[-1] != "A" else "B")) == 401


def test_mirror_credential_lets_the_checks_see_the_integration(personas):
    integration, _ = make_integration(owner=personas.owner, scopes=["read", "file_requests"], name="jira")
    credential = Credential.objects.get(pk=integration.credential_id)
    token = IntegrationToken.objects.get(integration=integration)
    assert credential.kind == CredentialKind.ACCESS_TOKEN
    assert credential.system.name == services.STEWARD_API_SYSTEM
    assert credential.identifier == token.prefix
    assert (credential.owner, credential.team) == (personas.owner, personas.team)
    assert credential.status == CredentialStatus.ACTIVE and credential.privilege_level == "write"
    assert credential.last_rotated_at == token.created_at
    # the team grant makes it visible to the backup owner like any other credential of the team
    from governance import permissions

    assert permissions.can(personas.backup_owner, "view", credential)
    assert not permissions.can(personas.outsider, "view", credential)


@pytest.mark.embedded
def test_rotation_overlap_then_revocation(personas):
    integration, old = make_integration(owner=personas.owner, scopes=["read"], name="rotating")
    token, new = services.integration_token_rotate(actor=Actor.for_user(personas.owner), integration=integration,
                                                   overlap=dt.timedelta(hours=2))
    assert status_with(old) == 200 and status_with(new) == 200  # both work during the overlap
    old_row = IntegrationToken.objects.exclude(pk=token.pk).get(integration=integration)
    assert old_row.overlap_until is not None and old_row.revoked_at is None
    credential = Credential.objects.get(pk=integration.credential_id)
    assert credential.identifier == token.prefix and credential.last_rotated_at == token.created_at

    IntegrationToken.objects.filter(pk=old_row.pk).update(overlap_until=timezone.now() - dt.timedelta(seconds=1))
    assert status_with(old) == 401  # refused as soon as the overlap ends, even before the sweep
    assert services.integration_tokens_sweep() == 1
    assert services.integration_tokens_sweep() == 0  # compare-and-set: a rerun changes nothing
    old_row.refresh_from_db()
    assert old_row.revoked_at is not None
    assert status_with(new) == 200
    assert verify_chain().intact


def test_rotation_without_overlap_revokes_at_once_and_revocation_stops_a_token(personas):
    integration, old = make_integration(owner=personas.owner, scopes=["read"], name="strict")
    token, new = services.integration_token_rotate(actor=Actor.for_user(personas.backup_owner),
                                                   integration=integration, overlap=dt.timedelta(0))
    assert status_with(old) == 401 and status_with(new) == 200
    services.integration_token_revoke(actor=Actor.for_user(personas.owner), token=token)
    assert status_with(new) == 401
    credential = Credential.objects.get(pk=integration.credential_id)
    assert credential.status == CredentialStatus.REVOKED  # no usable token left
    with pytest.raises(ValidationError):
        services.integration_token_revoke(actor=Actor.for_user(personas.owner), token=token)


def test_only_owner_team_or_security_admin_may_rotate(personas):
    integration, _ = make_integration(owner=personas.owner, scopes=["read"], name="guarded")
    for person in (personas.approver, personas.outsider, personas.auditor):
        with pytest.raises(PermissionDenied):
            services.integration_token_rotate(actor=Actor.for_user(person), integration=integration)
    services.integration_token_rotate(actor=Actor.for_user(personas.secadmin), integration=integration)


def test_expired_tokens_and_integrations_are_refused(personas):
    integration, token = make_integration(owner=personas.owner, scopes=["read"], name="short")
    IntegrationToken.objects.filter(integration=integration).update(expires_at=timezone.now() - dt.timedelta(1))
    assert status_with(token) == 401
    integration2, token2 = make_integration(owner=personas.owner, scopes=["read"], name="lapsed")
    Integration.objects.filter(pk=integration2.pk).update(expires_at=timezone.now() - dt.timedelta(1))
    assert status_with(token2) == 401
    services.integration_tokens_sweep()
    assert Credential.objects.get(pk=integration2.credential_id).status == CredentialStatus.EXPIRED


def test_disable_revokes_every_token(personas):
    integration, token = make_integration(owner=personas.owner, scopes=["read"], name="doomed")
    _, token2 = services.integration_token_rotate(actor=Actor.for_user(personas.owner), integration=integration)
    with pytest.raises(ValidationError):
        services.integration_disable(actor=Actor.for_user(personas.owner), integration=integration, reason=" ")
    services.integration_disable(actor=Actor.for_user(personas.owner), integration=integration, reason="leak")
    assert status_with(token) == 401 and status_with(token2) == 401
    assert not IntegrationToken.objects.filter(integration=integration, revoked_at__isnull=True).exists()
    with pytest.raises(ValidationError):
        services.integration_token_rotate(actor=Actor.for_user(personas.owner), integration=integration)


def test_registration_is_for_security_admins_and_validated(personas):
    owner = personas.owner
    with pytest.raises(PermissionDenied):
        services.integration_create(actor=Actor.for_user(owner), name="mine", owner=owner, scopes=["read"])
    admin = Actor.for_user(personas.secadmin)
    with pytest.raises(ValidationError) as bad_scope:
        services.integration_create(actor=admin, name="x", owner=owner, scopes=["root"])
    assert "scopes" in bad_scope.value.message_dict
    with pytest.raises(ValidationError) as too_long:
        services.integration_create(actor=admin, name="x", owner=owner, scopes=["read"],
                                    expires_at=timezone.now() + dt.timedelta(days=1000))
    assert "expires_at" in too_long.value.message_dict
    departed = PersonFactory(username="gone", status="departed", departed_at=timezone.now(), is_active=False)
    with pytest.raises(ValidationError) as bad_owner:
        services.integration_create(actor=admin, name="x", owner=departed, scopes=["read"])
    assert "owner" in bad_owner.value.message_dict
    integration, _ = services.integration_create(actor=admin, name="ok", owner=owner, scopes=["read"])
    assert integration.team == personas.team  # defaults to the owner's team
    with pytest.raises(PermissionDenied):  # widening scopes is for security admins
        services.integration_update(actor=Actor.for_user(owner), integration=integration, data={"scopes": ["admin"]})
    services.integration_update(actor=Actor.for_user(owner), integration=integration, data={"description": "CI"})


class TestOnBehalfOf:
    """The rule: the owner by default; else an active person who delegated to the integration themself, in
    force (not expired, not revoked). Team membership is not consent. Anyone else is refused with a 403."""

    def test_default_is_the_owner(self, personas):
        _, token = make_integration(owner=personas.owner, scopes=["read"], name="obo")
        response = APIClient().get(WHOAMI, **bearer(token))
        assert response.json()["username"] == personas.owner.username
        assert status_with(token, personas.owner.username) == 200  # naming the owner is the same

    def test_team_membership_alone_is_not_consent(self, personas):
        """Old rule: a member of the integration's team could be named in X-On-Behalf-Of without asking."""
        _, token = make_integration(owner=personas.owner, scopes=["read"], name="obo-team", team=personas.team)
        assert status_with(token, personas.backup_owner.username) == 403

    def test_a_person_who_delegated_is_acted_for(self, personas):
        _, token = make_integration(owner=personas.owner, scopes=["read"], name="obo2",
                                    delegated_by=[personas.backup_owner, personas.approver])
        for person in (personas.backup_owner, personas.approver):
            response = APIClient().get(WHOAMI, **bearer(token, person.username))
            assert response.status_code == 200 and response.json()["username"] == person.username

    def test_an_expired_or_revoked_delegation_is_not_consent(self, personas):
        integration, token = make_integration(owner=personas.owner, scopes=["read"], name="obo-ended",
                                              delegated_by=[personas.backup_owner, personas.approver])
        revoked = Delegation.objects.get(person=personas.backup_owner, integration=integration)
        delegations.delegation_revoke(actor=Actor.for_user(personas.backup_owner), delegation=revoked)
        past = timezone.now() - dt.timedelta(seconds=1)
        Delegation.objects.filter(person=personas.approver).update(created_at=past - dt.timedelta(days=1),
                                                                   expires_at=past)
        assert status_with(token, personas.backup_owner.username) == 403
        assert status_with(token, personas.approver.username) == 403

    def test_admin_scoped_token_acting_as_a_team_security_admin(self, personas):
        """Reproduction: with a security admin in the team, the owner's admin-scoped token acted as them."""
        personas.secadmin.groups.add(personas.team.group)
        _, token = make_integration(owner=personas.owner, scopes=["admin"], name="obo-admin", team=personas.team)
        response = APIClient().get(WHOAMI, **bearer(token, personas.secadmin.username))
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
        store = APIClient().post("/api/v1/secret-stores/", {"name": "via-admin", "kind": "openbao_kv"},
                                 format="json", **bearer(token, personas.secadmin.username))
        assert store.status_code == 403

    def test_outsiders_unknown_and_departed_people_are_refused(self, personas):
        _, token = make_integration(owner=personas.owner, scopes=["read"], name="obo3")
        departed = PersonFactory(username="left", teams=[personas.team])
        delegate(departed, Integration.objects.get(name="obo3"))
        departed.status, departed.departed_at, departed.is_active = "departed", timezone.now(), False
        departed.save()
        for name in (personas.outsider.username, personas.secadmin.username, "nobody", departed.username):
            response = APIClient().get(WHOAMI, **bearer(token, name))
            assert response.status_code == 403, name
            assert response.json()["code"] == "permission_denied"

    def test_departed_owner_stops_the_integration(self, personas):
        from governance.services.people import person_mark_departed

        integration, token = make_integration(owner=personas.owner, scopes=["read"], name="obo4",
                                              delegated_by=[personas.backup_owner])
        person_mark_departed(actor=Actor.for_user(personas.secadmin), person=personas.owner)
        assert status_with(token) == 403
        assert status_with(token, personas.backup_owner.username) == 200  # she delegated to it herself

    def test_rights_are_those_of_the_person_acted_for(self, personas, estate):
        _, token = make_integration(owner=personas.owner, scopes=["read"], name="obo5",
                                    delegated_by=[personas.approver])
        client = APIClient()
        own = client.get(f"/api/v1/systems/{estate['system'].pk}/", **bearer(token))
        theirs = client.get(f"/api/v1/systems/{estate['system'].pk}/", **bearer(token, personas.approver.username))
        assert (own.status_code, theirs.status_code) == (200, 404)

    def test_allowed_people_is_gone_from_the_api(self, personas):
        integration, _ = make_integration(owner=personas.owner, scopes=["read"], name="obo6")
        api = APIClient()
        api.force_authenticate(personas.secadmin)
        response = api.patch(f"/api/v1/integrations/{integration.pk}/", {"allowed_people": [personas.approver.pk]},
                             format="json")
        assert response.status_code == 400 and "allowed_people" in str(response.json())
        assert not Delegation.objects.exists()


def test_create_integration_command_prints_the_token_once(personas):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_integration", "servicenow", owner=personas.owner.username, scopes="read,file_requests",
                 stdout=out, stderr=err)
    token = out.getvalue().strip()
    integration = Integration.objects.get(name="servicenow")
    assert integration.scopes == ["read", "file_requests"] and integration.owner == personas.owner
    assert status_with(token) == 200
    assert "shown once" in err.getvalue() and token not in err.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_integration", "bad", owner="nobody", scopes="read", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("create_integration", "bad", owner=personas.owner.username, scopes="root",
                     stdout=io.StringIO())


def test_the_sweep_task_revokes_ended_overlaps_and_forgets_old_idempotency_keys(personas):
    from governance.models.integrations import IdempotencyRecord
    from governance.tasks.integrations import integrations_sweep

    integration, old = make_integration(owner=personas.owner, scopes=["read"], name="swept")
    services.integration_token_rotate(actor=Actor.for_user(personas.owner), integration=integration)
    IntegrationToken.objects.filter(overlap_until__isnull=False).update(overlap_until=timezone.now())
    record = IdempotencyRecord.objects.create(key="old", principal="person:1", method="POST", path="/x",
                                              request_hash="0" * 64, response_status=201)
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    result = integrations_sweep.apply().get()
    assert result["tokens_revoked"] == 1 and result["idempotency_records_deleted"] == 1
    assert result["deliveries_requeued"] == 0


def test_only_security_admins_widen_or_move_an_integration(personas):
    integration, _ = make_integration(owner=personas.owner, scopes=["read"], name="narrow")
    for data in ({"team": personas.other_team},
                 {"expires_at": timezone.now() + dt.timedelta(days=300)}, {"owner": personas.backup_owner}):
        with pytest.raises(PermissionDenied):
            services.integration_update(actor=Actor.for_user(personas.owner), integration=integration, data=data)
    services.integration_update(actor=Actor.for_user(personas.secadmin), integration=integration,
                                data={"team": personas.other_team})
    integration.refresh_from_db()
    assert Credential.objects.get(pk=integration.credential_id).team == personas.other_team
