"""Database constraints hold even when code bypasses the services."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.models import Credential, Person, SecretStore, System, Workflow
from tests.factories import CredentialFactory, SecretStoreFactory, SystemFactory

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def _violates(callable_):
    with pytest.raises(IntegrityError), transaction.atomic():
        callable_()


def test_status_values_are_constrained():
    system = SystemFactory()
    _violates(lambda: System.objects.filter(pk=system.pk).update(lifecycle="exploded"))
    credential = CredentialFactory()
    _violates(lambda: Credential.objects.filter(pk=credential.pk).update(status="lost"))
    _violates(lambda: Workflow.objects.create(name="w", kind="teleport", platform="x"))


def test_credential_identifier_is_unique_per_system():
    credential = CredentialFactory(identifier="svc-deploy")
    _violates(lambda: Credential.objects.create(name="dup", kind="api_key", system=credential.system,
                                                identifier="svc-deploy"))
    Credential.objects.create(name="other system", kind="api_key", system=SystemFactory(), identifier="svc-deploy")


def test_retired_system_needs_a_retirement_date():
    _violates(lambda: System.objects.create(name="gone", lifecycle="retired"))
    System.objects.create(name="gone", lifecycle="retired", retired_at=timezone.now())


def test_credential_in_a_store_needs_a_path():
    store = SecretStoreFactory()
    _violates(lambda: Credential.objects.create(name="c", kind="api_key", system=SystemFactory(), identifier="i",
                                                store=store, store_path=""))


def test_store_credential_is_an_environment_variable_name():
    _violates(lambda: SecretStore.objects.create(name="s", kind="openbao_kv", credential_env_var="hvs.abcdef"))
    SecretStore.objects.create(name="s", kind="openbao_kv", credential_env_var="STEWARD_OPENBAO_TOKEN")


def test_departed_person_has_a_departure_date():
    _violates(lambda: Person.objects.create(username="x", status="departed"))
    _violates(lambda: Person.objects.create(username="y", status="active", departed_at=timezone.now()))


def test_binding_pairs_are_unique(estate):
    from governance.models import Binding

    _violates(lambda: Binding.objects.create(workflow=estate["workflow"], credential=estate["credential"],
                                             purpose="again"))
