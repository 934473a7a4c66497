"""Saved views of a list: a person's name for a set of filters, a sort and columns (governance.lists).

The query string is checked against the list's own filter names and sorts, and its values against the
filters' forms: a view holds nothing the list would not understand. A person sees and changes only
their own views.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import QueryDict

from governance.lists import LISTS, SORT, ListSpec
from governance.models import Person
from governance.models.saved_views import MAX_QUERY_LENGTH, SavedView
from governance.services.duplicates import is_unique_violation

MAX_NAME_LENGTH = 80
MAX_VIEWS_PER_LIST = 50
DROPPED = {"page"}  # a view does not remember which page one was on


def list_spec(list_key: str) -> ListSpec:
    spec = LISTS.get(list_key)
    if spec is None:
        raise ValidationError({"list_key": "Views can be saved of the credential, workflow, system and findings "
                                           "lists only."})
    return spec


def saved_view_query_clean(*, spec: ListSpec, query: str) -> str:
    """The query string, normalised (empty values and the page dropped), or a ValidationError naming what is wrong."""
    query = (query or "").strip().lstrip("?")
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationError({"query": f"At most {MAX_QUERY_LENGTH} characters of filters."})
    params = QueryDict(query, mutable=True)
    for name in DROPPED:
        params.pop(name, None)
    unknown = sorted(set(params) - spec.query_parameters)
    if unknown:
        raise ValidationError({"query": f"Not a filter or sort of this list: {', '.join(unknown)}. "
                                        f"It knows {', '.join(sorted(spec.query_parameters))}."})
    sort = params.get(SORT, "")
    if sort and sort.lstrip("-") not in spec.sort_fields:
        raise ValidationError({"query": f"This list cannot be sorted by {sort!r}."})
    filterset = spec.filterset(params, queryset=spec.filterset._meta.model.objects.none())
    if not filterset.form.is_valid():
        problems = [f"{filterset.form.fields[name].label}: {' '.join(errors)}" if name in filterset.form.fields
                    else " ".join(errors) for name, errors in filterset.form.errors.items()]
        raise ValidationError({"query": "; ".join(problems)})
    clean = QueryDict(mutable=True)
    for name, values in params.lists():
        kept = [v for v in values if v.strip()]
        if kept:
            clean.setlist(name, kept)
    return clean.urlencode()


def saved_view_columns_clean(*, spec: ListSpec, columns) -> list[str]:
    columns = list(columns or [])
    unknown = sorted(set(columns) - set(spec.column_keys))
    if unknown:
        raise ValidationError({"columns": f"Not a column of this list: {', '.join(unknown)}."})
    return [c.key for c in spec.chosen(columns)]


def saved_view_save(*, owner: Person, list_key: str, name: str, query: str, columns) -> SavedView:
    """Save the view under a name of the owner's own (one name per list and person)."""
    spec = list_spec(list_key)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the view a name."})
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError({"name": f"At most {MAX_NAME_LENGTH} characters."})
    clean_query = saved_view_query_clean(spec=spec, query=query)
    clean_columns = saved_view_columns_clean(spec=spec, columns=columns)
    taken = ValidationError({"name": f"You already have a view named {name!r} of this list: pick another "
                                     f"name or delete that one first."})
    if SavedView.objects.filter(owner=owner, list_key=spec.key, name=name).exists():
        raise taken
    if SavedView.objects.filter(owner=owner, list_key=spec.key).count() >= MAX_VIEWS_PER_LIST:
        raise ValidationError({"name": f"You have {MAX_VIEWS_PER_LIST} views of this list: delete one first."})
    try:
        with transaction.atomic():
            return SavedView.objects.create(owner=owner, list_key=spec.key, name=name, query=clean_query,
                                            columns=clean_columns)
    except IntegrityError as exc:  # the same name saved at the same moment: the constraint decides
        if not is_unique_violation(exc, "saved_view_unique_name"):
            raise
        raise taken from None


def saved_view_delete(*, owner: Person, view_id: int) -> SavedView:
    """Delete one of the owner's views; anyone else's is missing (SavedView.DoesNotExist)."""
    view = SavedView.objects.get(owner=owner, pk=view_id)
    view.delete()
    return view
