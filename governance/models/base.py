"""Shared abstract bases: timestamps, and the queryset whose restrict() is the permission choke point."""

from django.db import models


class RestrictedQuerySet(models.QuerySet):
    """A queryset that can be narrowed to what a user may do (see governance.permissions)."""

    def restrict(self, user, action: str = "view"):
        # cycle: governance.permissions imports the models
        from governance.permissions import restrict

        return restrict(self, user, action)


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        abstract = True


class LeasedModel(models.Model):
    """A unit of background work a worker holds while it runs: who holds it, with which token, until when.

    governance.leases claims, renews and releases these fields; the recovery task resumes or fails a
    running row whose lease lapsed (its worker was killed).
    """

    lease_owner = models.CharField(max_length=200, blank=True, help_text="Host, process and task holding it.")
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_takeovers = models.PositiveSmallIntegerField(
        default=0, help_text="How often the work was taken over after its worker was lost.")

    class Meta:
        abstract = True
