"""Portal forms of the integrations capability. They shape input; the services hold the rules."""

from __future__ import annotations

from django import forms

from governance.forms import DateTimeInput
from governance.models import Person, SecretStore, Team
from governance.models.integrations import SUBSCRIBABLE_EVENTS, Integration, IntegrationScope, WebhookEventType

EVENT_CHOICES = [(value, label) for value, label in WebhookEventType.choices if value in SUBSCRIBABLE_EVENTS]


def _people():
    return Person.objects.active().order_by("username")


class IntegrationForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="Letters, digits, spaces, dots, dashes, underscores.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    owner = forms.ModelChoiceField(queryset=_people(), help_text="The accountable person.")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                  help_text="Backup team (it does not let the team's members act through it: "
                                            "each person delegates to it themself). Default: the owner's.")
    scopes = forms.MultipleChoiceField(choices=IntegrationScope.choices, widget=forms.CheckboxSelectMultiple)
    expires_at = forms.DateTimeField(widget=DateTimeInput(), required=False,
                                     help_text="When its access ends (default 180 days, at most 366).")
    store = forms.ModelChoiceField(queryset=SecretStore.objects.order_by("name"), required=False,
                                   help_text="Where the client keeps its token (recorded on its credential).")
    store_path = forms.CharField(max_length=500, required=False)


class IntegrationEditForm(forms.Form):
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    owner = forms.ModelChoiceField(queryset=_people())
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
    scopes = forms.MultipleChoiceField(choices=IntegrationScope.choices, widget=forms.CheckboxSelectMultiple)
    expires_at = forms.DateTimeField(widget=DateTimeInput())


class DelegationForm(forms.Form):
    """A person lets an integration act for them; the person is always the one signed in."""

    integration = forms.ModelChoiceField(queryset=Integration.objects.none(),
                                         help_text="It may then act for you when a request names you in "
                                                   "X-On-Behalf-Of, with your rights, narrowed by its scopes.")
    expires_at = forms.DateTimeField(widget=DateTimeInput(), label="Until",
                                     help_text="At most 90 days from now; you can revoke it earlier.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Why it may act for you.")

    def __init__(self, *args, integrations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["integration"].queryset = integrations
        self.fields["integration"].label_from_instance = lambda i: f"{i.name} (owner {i.owner})"


class RotateForm(forms.Form):
    overlap_hours = forms.IntegerField(min_value=0, max_value=168, initial=24,
                                       help_text="How long the old one keeps working (0: stops at once).")


class WebhookEndpointForm(forms.Form):
    name = forms.CharField(max_length=120)
    url = forms.URLField(max_length=2000, assume_scheme="https",
                         help_text="https in production; private addresses only when allow-listed.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    event_types = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)
    owner = forms.ModelChoiceField(queryset=_people())
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
