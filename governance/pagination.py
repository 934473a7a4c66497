"""The portal lists' paginator: it counts at most a cap of rows, so a list of a million is not counted.

Django's Paginator counts every matching row on each page view (COUNT(*) over the whole filtered,
restricted set), which at a million credentials costs more than the page itself. CappedPaginator
counts with a LIMITed subquery (SELECT COUNT(*) FROM (... LIMIT cap + 1)): below the cap it is
Django's paginator, with the exact count and the number of pages; above it the count is "more than
<cap>", the number of pages is unknown, and each page fetches one row more than it shows to know
whether there is a next one. Previous and next keep working on every page, beyond the cap too.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import QuerySet
from django.db.models.sql.where import WhereNode
from django.utils.functional import cached_property


def rows_by_ids(queryset: QuerySet, ids: list) -> list:
    """The rows with these ids, in their order, read by key alone through queryset (so its select_related,
    annotations and prefetches) without its filters: the ids came from its filtered, restricted query.

    A page is cheapest as two queries: the ids in order (the restricted query, which needs no row), then
    the page's rows by primary key. In one query PostgreSQL reads every visible row (an owner's 5,500
    credentials) to sort them before it keeps fifty."""
    if not ids:
        return []
    rows = queryset.order_by()  # a clone: its select_related and annotations, none of its filters
    rows.query.where = WhereNode()
    rows.query.clear_limits()
    by_pk = {row.pk: row for row in rows.filter(pk__in=ids)}
    return [by_pk[pk] for pk in ids if pk in by_pk]


def count_cap() -> int:
    return settings.STEWARD_LIST_COUNT_CAP


class CappedPage(Page):
    """A page of a list whose length is not known: it knows only whether a next page exists."""

    def __init__(self, object_list, number, paginator, *, more: bool):
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more

    def next_page_number(self) -> int:
        return self.number + 1

    def end_index(self) -> int:
        return (self.number - 1) * self.paginator.per_page + len(self.object_list)


class CappedPaginator(Paginator):
    def __init__(self, object_list, per_page, *, cap: int | None = None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = count_cap() if cap is None else cap

    @cached_property
    def head_ids(self) -> list | None:
        """The ids of the first cap + 1 rows in the list's order (one query), or None for a plain list.

        The count and every page within the cap come from these ids, so the filtered and restricted
        query (the expensive part for a person who sees a few thousand of a million rows) runs once per
        page view; the page's rows are then read by primary key."""
        if not isinstance(self.object_list, QuerySet):
            return None
        return list(self.object_list.values_list("pk", flat=True)[: self.cap + 1])

    @cached_property
    def counted(self) -> int:
        """The number of rows, counted up to cap + 1 (one more says the list is longer than the cap)."""
        if self.head_ids is not None:
            return len(self.head_ids)
        return min(len(self.object_list), self.cap + 1)

    def rows_of(self, ids: list) -> list:
        return rows_by_ids(self.object_list, ids)

    def _page_from_head(self, number: int, bottom: int, top: int, *, capped: bool) -> Page:
        ids = self.head_ids[bottom: top + (1 if capped else 0)]
        rows = self.rows_of(ids[: self.per_page])
        if capped:
            return CappedPage(rows, number, self, more=len(ids) > self.per_page)
        return self._get_page(rows, number, self)

    @cached_property
    def capped(self) -> bool:
        return self.counted > self.cap

    @cached_property
    def count(self) -> int:
        """The exact count below the cap; the cap itself above it (the list has more: see `capped`)."""
        return min(self.counted, self.cap)

    @cached_property
    def num_pages(self) -> int:
        """Below the cap, Django's; above it the pages the cap covers (there are more)."""
        if not self.capped:
            return super().num_pages
        return math.ceil(self.cap / self.per_page)

    @property
    def count_label(self) -> str:
        return f"more than {self.cap:,}" if self.capped else f"{self.count:,}"

    def validate_number(self, number) -> int:
        if not self.capped:
            return super().validate_number(number)
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from exc
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number

    def page(self, number) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if self.head_ids is not None and top < len(self.head_ids) + (0 if self.capped else self.per_page):
            return self._page_from_head(number, bottom, top, capped=self.capped)
        if not self.capped:
            return super().page(number)
        rows = list(self.object_list[bottom: bottom + self.per_page + 1])  # beyond the head: an offset query
        return CappedPage(rows[: self.per_page], number, self, more=len(rows) > self.per_page)

    def get_page(self, number) -> Page:
        """A page of the list; past its end (beyond the cap) an empty page that still links back."""
        try:
            number = self.validate_number(number)
        except PageNotAnInteger:
            number = 1
        except EmptyPage:
            number = 1 if self.capped else self.num_pages
        return self.page(number)
