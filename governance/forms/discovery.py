"""Forms of the discovery review queue: dismiss (a reason and an expiry date) and link (an object to link to).

The forms only parse; every rule (the expiry in the future and within a year, the reason, who may link
to what) is the review service's (governance.discovery.review), whose errors land on these fields.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from governance.forms import drop_length_caps


class DismissForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=500,
                             help_text="Why this needs no governance (a test fixture, a sandbox). "
                                       "Never paste a secret.")
    until = forms.DateField(label="Dismissed until", widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="The item comes back to the queue on this date (at most a year from now), or "
                                      "sooner if what was discovered changes.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        drop_length_caps(self)

    def until_datetime(self) -> dt.datetime:
        """The start of the chosen day, in the portal's time zone."""
        day = self.cleaned_data["until"]
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class LinkForm(forms.Form):
    target = forms.ModelChoiceField(queryset=None, label="Declared object")

    def __init__(self, *args, targets, label: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = targets
        self.fields["target"].label = label
