"""People (Django users) and teams (Django groups with a manager)."""

from django.contrib.auth.models import AbstractUser, Group, UserManager
from django.db import models

from governance.choices import PersonStatus, check_in
from governance.models.base import RestrictedQuerySet


class PersonQuerySet(RestrictedQuerySet):
    def active(self):
        return self.filter(status=PersonStatus.ACTIVE)


class PersonManager(UserManager.from_queryset(PersonQuerySet)):
    pass


class Person(AbstractUser):
    """A human. Departed people own nothing: their objects pass to the backup or are orphaned."""

    status = models.CharField(max_length=16, choices=PersonStatus.choices, default=PersonStatus.ACTIVE)
    departed_at = models.DateTimeField(null=True, blank=True)
    job_title = models.CharField(max_length=120, blank=True)

    objects = PersonManager()

    class Meta:
        ordering = ["username"]
        verbose_name = "person"
        verbose_name_plural = "people"
        constraints = [
            models.CheckConstraint(condition=check_in("status", PersonStatus), name="person_status_valid"),
            models.CheckConstraint(
                condition=models.Q(status=PersonStatus.ACTIVE, departed_at__isnull=True)
                | models.Q(status=PersonStatus.DEPARTED, departed_at__isnull=False),
                name="person_departed_at_matches_status",
            ),
        ]

    def __str__(self):
        return self.get_full_name() or self.username

    @property
    def is_departed(self) -> bool:
        return self.status == PersonStatus.DEPARTED


class Team(models.Model):
    """A team is a Django group (so guardian grants go to it) with a manager."""

    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    manager = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="managed_teams"
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def members(self):
        return Person.objects.filter(groups=self.group_id)
