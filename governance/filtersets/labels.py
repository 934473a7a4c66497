"""The one place every list's filters get their plain labels, "Any" and searchable long selects.

Portal lists and the API share the filtersets, so this changes what a person reads (labels, the
empty choice, the widget), never a query parameter's name or meaning.
"""

from __future__ import annotations

import django_filters
from django import forms

from governance.widgets import LongSelect

ANY = "Any"
DJANGO_EMPTY_LABEL = "---------"
# A date filter's lookup, read as words: "Expires on or before", "Occurred on or after".
DATE_LOOKUP_WORDS = {
    "lte": "on or before", "date__lte": "on or before", "lt": "before", "date__lt": "before",
    "gte": "on or after", "date__gte": "on or after", "gt": "after", "date__gt": "after",
    "exact": "on", "date": "on",
}
DATE_FILTERS = (django_filters.DateFilter, django_filters.DateTimeFilter, django_filters.IsoDateTimeFilter)


class AnyYesNoSelect(forms.NullBooleanSelect):
    """A boolean filter's choices: Any, Yes, No (Django says "Unknown" for "any"); the values are Django's."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", ANY), ("true", "Yes"), ("false", "No")]


def humanize(name: str) -> str:
    words = name.removesuffix("_at").replace("__", " ").replace("_", " ").strip()
    return (words[:1].upper() + words[1:]).replace(" id", " ID")


def plain_label(name: str, filter_) -> str:
    """The label of a filter declared without one: its name in words, a date filter's lookup in words."""
    if isinstance(filter_, DATE_FILTERS) and filter_.lookup_expr in DATE_LOOKUP_WORDS:
        return f"{humanize(filter_.field_name)} {DATE_LOOKUP_WORDS[filter_.lookup_expr]}"
    return humanize(name)


def dress(name: str, filter_) -> None:
    """Give one filter its label, its "Any" and, for a choice of objects, the searchable select."""
    if filter_.label is None:
        filter_.label = plain_label(name, filter_)
    if isinstance(filter_, django_filters.BooleanFilter):
        filter_.extra.setdefault("widget", AnyYesNoSelect)
    if isinstance(filter_, django_filters.ChoiceFilter | django_filters.ModelChoiceFilter) and \
            filter_.extra.get("empty_label", DJANGO_EMPTY_LABEL) == DJANGO_EMPTY_LABEL:
        filter_.extra["empty_label"] = ANY
    if isinstance(filter_, django_filters.ModelChoiceFilter):
        filter_.extra.setdefault("widget", LongSelect)
    if type(filter_) is django_filters.DateFilter:  # a date picker; the value stays YYYY-MM-DD
        filter_.extra.setdefault("widget", forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


class LabelledFilterSet(django_filters.FilterSet):
    """The base of every Steward filterset: the filters are dressed once, when the class is built."""

    @classmethod
    def get_filters(cls):
        filters = super().get_filters()
        for name, filter_ in filters.items():
            dress(name, filter_)
        return filters
