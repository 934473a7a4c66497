"""A person's saved views: only their own, ever (someone else's id is missing)."""

from __future__ import annotations

from governance.models.saved_views import SavedView


def saved_views_of(*, owner, list_key: str):
    return SavedView.objects.filter(owner=owner, list_key=list_key).order_by("name")


def saved_view_of(*, owner, pk: int) -> SavedView | None:
    return SavedView.objects.filter(owner=owner, pk=pk).first()
