"""LongSelect: the same <select> as Django's, rendered in one pass."""

import pytest
from django import forms

from governance.widgets import LongSelect

pytestmark = pytest.mark.embedded


def test_long_select_marks_the_chosen_option_and_escapes_labels():
    choices = [("", "---------"), (1, "Ada <Admin>"), (2, 'Bob "B"')]
    html = LongSelect(choices=choices).render("owner", "2", attrs={"id": "id_owner", "required": True})
    assert html.startswith("<select ") and html.endswith("</select>")
    assert 'name="owner"' in html and 'id="id_owner"' in html and " required" in html
    assert '<option value="">---------</option>' in html
    assert '<option value="1">Ada &lt;Admin&gt;</option>' in html
    assert '<option value="2" selected>Bob &quot;B&quot;</option>' in html
    assert LongSelect(choices=choices).render("owner", None).count(" selected") == 0


def test_long_select_offers_the_choices_django_s_select_offers():
    choices = [("", "---------"), (1, "one"), (2, "two")]
    ours, theirs = LongSelect(choices=choices).render("x", "1"), forms.Select(choices=choices).render("x", "1")
    assert ours.count("<option") == theirs.count("<option") == 3
    assert ('value="1" selected' in ours) and ('value="1" selected' in theirs)
