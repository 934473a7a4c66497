"""Factories for the domain. Owned objects get their team's grants, as the services give them."""

import datetime as dt

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from governance import permissions
from governance.choices import CredentialKind, SecretStoreKind, WorkflowKind
from governance.models import Binding, Credential, Person, SecretStore, System, Team, Workflow


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda p: f"{p.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        for team in extracted or ():
            self.groups.add(team.group)
        if create:
            self.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.LazyAttribute(lambda t: t.name.lower().replace(" ", "-"))
    group = factory.LazyAttribute(lambda t: Group.objects.get_or_create(name=t.name)[0])


class _OwnedFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True
        skip_postgeneration_save = True

    @factory.post_generation
    def grants(self, create, extracted, **kwargs):
        if create and self.team_id:
            permissions.grant_team(self, self.team)


class SystemFactory(_OwnedFactory):
    class Meta:
        model = System
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"system-{n}")


class SecretStoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SecretStore

    name = factory.Sequence(lambda n: f"store-{n}")
    kind = SecretStoreKind.OPENBAO_KV
    address = "http://127.0.0.1:8200"


class CredentialFactory(_OwnedFactory):
    class Meta:
        model = Credential
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"credential-{n}")
    kind = CredentialKind.API_KEY
    system = factory.SubFactory(SystemFactory)
    identifier = factory.Sequence(lambda n: f"key-id-{n}")
    store = factory.SubFactory(SecretStoreFactory)
    store_path = factory.Sequence(lambda n: f"secret/data/app/{n}")
    issued_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))
    last_rotated_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))


class WorkflowFactory(_OwnedFactory):
    class Meta:
        model = Workflow
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"workflow-{n}")
    kind = WorkflowKind.CICD_PIPELINE
    platform = "GitHub Actions"


class BindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Binding

    workflow = factory.SubFactory(WorkflowFactory)
    credential = factory.SubFactory(CredentialFactory)
    purpose = "deploy"
