"""Credential checks: managed store, rotation, certificate expiry, least privilege, reuse, human use, vendors."""

import datetime as dt

import pytest
from django.utils import timezone

from governance.checks import Context
from governance.choices import CredentialKind, CredentialStatus, PrivilegeLevel, SecretStoreKind, WorkflowStatus
from governance.models import Binding
from tests.factories import CredentialFactory, SecretStoreFactory, SystemFactory, WorkflowFactory
from tests.factories_checks import aware, evaluated, evidence, failing

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY = dt.timedelta(days=1)
MINUTE = dt.timedelta(minutes=1)


@pytest.mark.embedded
def test_secret_in_vault_fails_unmanaged_and_missing_stores():
    managed = CredentialFactory()
    in_config = CredentialFactory(store=SecretStoreFactory(kind=SecretStoreKind.CONFIG_FILE), store_path="app.ini")
    nowhere = CredentialFactory(store=None, store_path="")
    revoked = CredentialFactory(store=None, store_path="", status=CredentialStatus.REVOKED)
    assert failing("secret-in-vault") == {in_config.pk, nowhere.pk}
    assert managed.pk in evaluated("secret-in-vault") and revoked.pk not in evaluated("secret-in-vault")
    facts = evidence("secret-in-vault", in_config)
    assert facts == {"store_name": in_config.store.name, "store_kind": "config_file", "store_path": "app.ini"}


@pytest.mark.parametrize("kind", [SecretStoreKind.OPENBAO_PKI, SecretStoreKind.AWS_SECRETS_MANAGER,
                                  SecretStoreKind.KUBERNETES_SECRET, SecretStoreKind.CYBERARK])
def test_every_managed_store_kind_passes(kind):
    credential = CredentialFactory(store=SecretStoreFactory(kind=kind))
    assert credential.pk not in failing("secret-in-vault")


@pytest.mark.embedded
def test_rotation_uses_the_kinds_default_age_at_the_edge(settings):
    ctx = Context.current(NOW)
    limit = settings.STEWARD_THRESHOLDS["rotation_max_age_days"]["api_key"]
    inside = CredentialFactory(kind=CredentialKind.API_KEY, last_rotated_at=NOW - limit * DAY + MINUTE)
    exactly = CredentialFactory(kind=CredentialKind.API_KEY, last_rotated_at=NOW - limit * DAY)
    outside = CredentialFactory(kind=CredentialKind.API_KEY, last_rotated_at=NOW - limit * DAY - MINUTE)
    token_limit = settings.STEWARD_THRESHOLDS["rotation_max_age_days"]["access_token"]
    token = CredentialFactory(kind=CredentialKind.ACCESS_TOKEN, last_rotated_at=NOW - (token_limit + 1) * DAY)
    assert failing("rotation-age", ctx=ctx) == {outside.pk, token.pk}
    assert {inside.pk, exactly.pk} <= evaluated("rotation-age", ctx=ctx)
    facts = evidence("rotation-age", outside)
    assert facts["max_age_days"] == limit and facts["kind"] == "api_key"
    assert aware(facts["due_at"]) == outside.last_rotated_at + limit * DAY


def test_rotation_prefers_the_credentials_own_policy():
    strict = CredentialFactory(rotation_max_age_days=30, last_rotated_at=NOW - 31 * DAY)
    lenient = CredentialFactory(rotation_max_age_days=365, last_rotated_at=NOW - 200 * DAY)
    assert failing("rotation-age") == {strict.pk}
    assert lenient.pk in evaluated("rotation-age")
    assert evidence("rotation-age", strict)["max_age_days"] == 30


def test_rotation_age_counts_from_issue_then_registration_when_never_rotated():
    issued_long_ago = CredentialFactory(last_rotated_at=None, issued_at=NOW - 100 * DAY)
    never_dated = CredentialFactory(last_rotated_at=None, issued_at=None)
    assert failing("rotation-age") == {issued_long_ago.pk}
    assert never_dated.pk in evaluated("rotation-age")


def test_rotation_defaults_are_configurable(settings):
    credential = CredentialFactory(kind=CredentialKind.SSH_KEY, last_rotated_at=NOW - 100 * DAY)
    assert failing("rotation-age") == set()  # ssh keys: 180 days by default
    settings.STEWARD_THRESHOLDS = {**settings.STEWARD_THRESHOLDS,
                                   "rotation_max_age_days": {"ssh_key": 60}}  # others keep their defaults
    assert failing("rotation-age") == {credential.pk}


def test_rotation_ignores_inactive_credentials():
    credential = CredentialFactory(status=CredentialStatus.SUSPENDED, last_rotated_at=NOW - 900 * DAY)
    assert credential.pk not in evaluated("rotation-age")


def _certificate(**kwargs):
    return CredentialFactory(kind=CredentialKind.CERTIFICATE, **kwargs)


@pytest.mark.embedded
def test_certificate_expiry_window_edges(settings):
    ctx = Context.current(NOW)
    window = settings.STEWARD_THRESHOLDS["certificate_warning_days"]
    beyond = _certificate(expires_at=NOW + window * DAY + MINUTE)
    at_edge = _certificate(expires_at=NOW + window * DAY)
    expired = _certificate(expires_at=NOW - 2 * DAY)
    unknown = _certificate(expires_at=None)
    token = CredentialFactory(kind=CredentialKind.ACCESS_TOKEN, expires_at=NOW + DAY)
    assert failing("cert-expiry", ctx=ctx) == {at_edge.pk, expired.pk, unknown.pk}
    assert beyond.pk in evaluated("cert-expiry", ctx=ctx)
    assert token.pk not in evaluated("cert-expiry", ctx=ctx)  # not a certificate
    assert set(evidence("cert-expiry", expired)) == {"expires_at", "identifier"}


def test_certificate_warning_window_is_configurable(settings):
    certificate = _certificate(expires_at=NOW + 45 * DAY)
    assert failing("cert-expiry") == set()
    settings.STEWARD_THRESHOLDS = {**settings.STEWARD_THRESHOLDS, "certificate_warning_days": 60}
    assert failing("cert-expiry") == {certificate.pk}


@pytest.mark.embedded
def test_least_privilege_fails_admin_wildcard_and_admin_scopes():
    admin = CredentialFactory(privilege_level=PrivilegeLevel.ADMIN, scopes=["read"])
    wildcard = CredentialFactory(scopes=["repo:*"])
    star = CredentialFactory(scopes=["*"])
    admin_scope = CredentialFactory(scopes=["read", "admin:org"])
    org_admin = CredentialFactory(scopes=["org:admin"])
    narrow = CredentialFactory(scopes=["repo:read", "administrative-notes:read"], privilege_level="write")
    assert failing("least-privilege") == {admin.pk, wildcard.pk, star.pk, admin_scope.pk, org_admin.pk}
    assert narrow.pk in evaluated("least-privilege")
    assert evidence("least-privilege", wildcard) == {"privilege_level": "read", "scopes": ["repo:*"]}


@pytest.mark.embedded
def test_reuse_counts_the_workflows_still_in_use():
    shared, single, with_retired = CredentialFactory(), CredentialFactory(), CredentialFactory()
    a, b = WorkflowFactory(name="alpha"), WorkflowFactory(name="beta")
    retired = WorkflowFactory(name="gamma", status=WorkflowStatus.RETIRED, retired_at=NOW)
    for workflow, credential in ((a, shared), (b, shared), (a, single), (a, with_retired), (retired, with_retired)):
        Binding.objects.create(workflow=workflow, credential=credential, purpose="deploy")
    assert failing("no-reuse") == {shared.pk}
    assert evidence("no-reuse", shared) == {"workflow_count": 2}


@pytest.mark.embedded
def test_human_use_of_a_machine_credential_fails():
    used = CredentialFactory(human_use_detected=True, human_use_evidence="Interactive console login from a laptop")
    clean = CredentialFactory()
    assert failing("human-use") == {used.pk}
    assert clean.pk in evaluated("human-use")
    assert evidence("human-use", used)["observed"] == "Interactive console login from a laptop"


@pytest.mark.embedded
def test_third_party_credentials_reviewed_within_the_period(settings):
    ctx = Context.current(NOW)
    days = settings.STEWARD_THRESHOLDS["third_party_review_days"]
    vendor = SystemFactory(third_party=True, vendor="Stripe")
    inside = CredentialFactory(system=vendor, third_party_reviewed_at=NOW - days * DAY)
    outside = CredentialFactory(system=vendor, third_party_reviewed_at=NOW - days * DAY - MINUTE)
    never = CredentialFactory(system=vendor, third_party_reviewed_at=None)
    own_system = CredentialFactory(third_party_reviewed_at=None)
    assert failing("vendor-creds-reviewed", ctx=ctx) == {outside.pk, never.pk}
    assert inside.pk in evaluated("vendor-creds-reviewed", ctx=ctx)
    assert own_system.pk not in evaluated("vendor-creds-reviewed", ctx=ctx)
    assert evidence("vendor-creds-reviewed", never) == {
        "system_name": vendor.name, "vendor": "Stripe", "third_party_reviewed_at": None}


def test_third_party_review_period_is_configurable(settings):
    credential = CredentialFactory(system=SystemFactory(third_party=True), third_party_reviewed_at=NOW - 100 * DAY)
    assert failing("vendor-creds-reviewed") == set()
    settings.STEWARD_THRESHOLDS = {**settings.STEWARD_THRESHOLDS, "third_party_review_days": 90}
    assert failing("vendor-creds-reviewed") == {credential.pk}
