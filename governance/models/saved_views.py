"""A person's saved views of a list: a name, the list's filters and sort (a query string), the columns."""

from django.db import models

from governance.choices import ListKey, check_in
from governance.models.people import Person

MAX_QUERY_LENGTH = 2000


class SavedView(models.Model):
    owner = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="saved_views")
    list_key = models.CharField(max_length=16, choices=ListKey.choices)
    name = models.CharField(max_length=80)
    # Validated against the list's filters and sorts (services.saved_views), never an arbitrary string.
    query = models.CharField(max_length=MAX_QUERY_LENGTH, blank=True)
    columns = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "list_key", "name"], name="saved_view_unique_name"),
            models.CheckConstraint(condition=check_in("list_key", ListKey), name="saved_view_list_key_valid"),
            models.CheckConstraint(condition=models.Q(name__regex=r"\S"), name="saved_view_name_not_blank"),
        ]

    def __str__(self):
        return self.name
