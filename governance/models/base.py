"""Shared abstract bases: timestamps, and the queryset whose restrict() is the permission choke point."""

from django.db import models


class RestrictedQuerySet(models.QuerySet):
    """A queryset that can be narrowed to what a user may do (see governance.permissions)."""

    def restrict(self, user, action: str = "view"):
        from governance.permissions import restrict

        return restrict(self, user, action)


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        abstract = True
