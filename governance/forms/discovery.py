"""Forms of discovery: dismiss (a reason and an expiry date), link (an object to link to), a source (admins).

The forms only parse; every rule (the expiry in the future and within a year, the reason, who may link
to what) is the review service's (governance.discovery.review), whose errors land on these fields.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from governance.discovery.services import SOURCE_FIELDS
from governance.forms import JSONObjectField, drop_length_caps
from governance.models import SecretStore, System
from governance.models.discovery import DiscoverySource


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


class DiscoverySourceForm(forms.ModelForm):
    """A place to look (security admins). The settings are non-secret; a credential is named by its variable."""

    settings = JSONObjectField(required=False, help_text="Non-secret settings as JSON, typed per kind "
                                                         "(docs/discovery.md), e.g. {\"path\": \"/srv/git/app.git\"}.")

    class Meta:
        model = DiscoverySource
        fields = list(SOURCE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        drop_length_caps(self)
        self.fields["system"].queryset = System.objects.order_by("name")
        self.fields["store"].queryset = SecretStore.objects.order_by("name")

    def _post_clean(self):
        """The model's own validation runs in the service (which says what is wrong with the settings)."""
