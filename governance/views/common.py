"""What every portal list and detail page shares: restricted lookups, filtering, sorting, paging."""

from __future__ import annotations

import csv
import io
import json

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404

from governance import permissions
from governance.audit import jsonable
from governance.pagination import CappedPaginator

PAGE_SIZE = 50


def get_restricted_or_404(model, user, pk, action: str = permissions.VIEW):
    """Missing and forbidden look the same: 404."""
    return get_object_or_404(permissions.restrict(model.objects.all(), user, action), pk=pk)


def ensure_can_change_or_404(user, obj) -> None:
    if not permissions.can(user, permissions.CHANGE, obj):
        raise Http404("No such object.")


def filtered_page(request, queryset, filterset_class, *, sort_fields: dict[str, str], default_sort: str):
    """Apply the filterset, the ?sort= column and the (capped: governance.pagination) paginator; the context."""
    filterset = filterset_class(request.GET or None, queryset=queryset, request=request)
    rows = filterset.qs if filterset.is_bound and filterset.is_valid() else queryset
    sort = request.GET.get("sort", default_sort)
    key = sort.lstrip("-")
    if key not in sort_fields:
        sort, key = default_sort, default_sort.lstrip("-")
    order = sort_fields[key]
    # The primary key breaks ties in the same direction, so an index on (column, id) serves either way.
    descending = sort.startswith("-")
    rows = rows.order_by(f"-{order}" if descending else order, "-pk" if descending else "pk")
    page = CappedPaginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("select", None)  # "select all on this page" ticks one page, not the next (views/lists.py)
    query_without_sort = query.copy()
    query_without_sort.pop("sort", None)
    return {
        "filter": filterset,
        "page_obj": page,
        "rows": page.object_list,
        "sort": sort,
        "querystring": query.urlencode(),
        "querystring_without_sort": query_without_sort.urlencode(),
    }


def tabular_response(rows: list[dict], *, fmt: str, filename: str) -> HttpResponse:
    """Rows as a CSV or JSON download."""
    if fmt == "json":
        response = HttpResponse(json.dumps(jsonable(rows), indent=1), content_type="application/json")
    elif fmt == "csv":
        buffer = io.StringIO()
        columns = list(rows[0].keys()) if rows else []
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in jsonable(row).items()})
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    else:
        raise Http404("Unknown export format.")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


def deny_unless(condition: bool) -> None:
    if not condition:
        raise Http404("No such page.")


def detail_tabs(extra: tuple[tuple[str, str], ...] = (), counts: dict[str, int] | None = None) -> list[dict]:
    """A detail page's tabs: overview, the object type's own, history; counts show what needs attention."""
    counts = counts or {}
    return [{"key": "overview", "label": "Overview"},
            *({"key": key, "label": label, "count": counts.get(key)} for key, label in extra),
            {"key": "history", "label": "History"}]


__all__ = [
    "PermissionDenied",
    "deny_unless",
    "detail_tabs",
    "ensure_can_change_or_404",
    "filtered_page",
    "get_restricted_or_404",
    "tabular_response",
]
