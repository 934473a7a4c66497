"""Cursor pagination for every list: stable under inserts, no COUNT(*), constant cost per page."""

from rest_framework.pagination import CursorPagination


class StewardCursorPagination(CursorPagination):
    """Ordered by a unique column (the view's cursor_ordering, default "pk")."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "pk"

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", self.ordering)
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def get_page_size(self, request):
        size = super().get_page_size(request)
        return max(1, size or self.page_size)
