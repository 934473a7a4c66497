"""Form widgets the portal needs at scale."""

from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe


class LongSelect(forms.Select):
    """A <select> of a few thousand options (people, systems), rendered in one pass.

    Django's Select renders each option through its own template, which at 2,000 people and 2,000
    systems cost a list page more than all its queries. Same markup, same choices, escaped the same way.
    It is marked data-searchable: static/js/longselect.js puts a search box before it that narrows the
    options as one types; without JavaScript it is a plain <select> (type-ahead still works).
    """

    def render(self, name, value, attrs=None, renderer=None):
        values = value if isinstance(value, list | tuple) else [value]
        selected = {str(v) for v in values if v not in (None, "")}
        final_attrs = self.build_attrs(self.attrs, {**(attrs or {}), "name": name, "data-searchable": ""})
        options = format_html_join(
            "", '<option value="{}"{}>{}</option>',
            ((str(v), mark_safe(" selected") if str(v) in selected else "", label) for v, label in self.choices),
        )
        return format_html("<select{}>{}</select>", flatatt(final_attrs), options)
