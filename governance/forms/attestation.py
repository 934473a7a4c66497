"""Forms of owner attestation. They shape input; governance.services.attestation holds the rules."""

from __future__ import annotations

from django import forms

from governance.choices import PrivilegeLevel
from governance.forms import DateTimeInput, ListField
from governance.models import Credential, Person, System, Team
from governance.models.attestation import AttestedObjectType, CampaignScope, ItemAnswer
from governance.services.attestation import CONSEQUENCES


class AnswerForm(forms.Form):
    answer = forms.ChoiceField(choices=[c for c in ItemAnswer.choices if c[0]], widget=forms.RadioSelect)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000,
                              help_text="Required for anything but confirm.")
    transfer_to = forms.ModelChoiceField(queryset=Person.objects.none(), required=False,
                                         label="Transfer to", help_text="For a transfer: the new owner.")
    transfer_team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                           label="New backup team", help_text="For a transfer (optional).")
    scope_credential = forms.ModelChoiceField(queryset=Credential.objects.none(), required=False,
                                              label="Credential whose scopes should change",
                                              help_text="For a scope change of a workflow's credential.")
    requested_scopes = ListField(required=False, label="Scopes it should have",
                                 help_text="For a scope change: the complete list, comma-separated.")
    requested_privilege_level = forms.ChoiceField(choices=[("", "Keep the current level"),
                                                           *PrivilegeLevel.choices],
                                                  required=False, label="Privilege level it should have")
    ticket_system = forms.CharField(required=False, max_length=50, label="Ticket system")
    ticket_key = forms.CharField(required=False, max_length=100, label="Ticket key")
    ticket_url = forms.URLField(required=False, max_length=500, label="Ticket URL", assume_scheme="https")

    def __init__(self, *args, item=None, **kwargs):
        super().__init__(*args, **kwargs)
        if item is not None and item.object_type == AttestedObjectType.WORKFLOW:
            bound = Credential.objects.filter(bindings__workflow_id=item.object_id).order_by("name")
            self.fields["scope_credential"].queryset = bound
        else:
            del self.fields["scope_credential"]
        people = Person.objects.active().filter(is_active=True)
        self.fields["transfer_to"].queryset = people.order_by("username")

    def ticket(self) -> dict | None:
        data = self.cleaned_data
        ticket = {k: data[f"ticket_{k}"] for k in ("system", "key", "url") if data.get(f"ticket_{k}")}
        return ticket or None


class CampaignOpenForm(forms.Form):
    scope_type = forms.ChoiceField(choices=CampaignScope.choices, label="Scope")
    scope_team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                        label="Team", help_text="For a team campaign.")
    scope_system = forms.ModelChoiceField(queryset=System.objects.order_by("name"), required=False,
                                          label="System", help_text="For a system campaign.")
    name = forms.CharField(required=False, max_length=200,
                           help_text="Leave empty for a name from scope and period.")
    period_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    due_at = forms.DateTimeField(widget=DateTimeInput, label="Due")
    grace_until = forms.DateTimeField(widget=DateTimeInput, required=False, label="Grace deadline",
                                      help_text="Empty: the configured grace period after the due date.")
    consequence = forms.ChoiceField(choices=[(c, c.capitalize()) for c in CONSEQUENCES],
                                    help_text="What happens to an item unanswered at the grace deadline.")

    def scope_id(self):
        data = self.cleaned_data
        if data["scope_type"] == CampaignScope.TEAM:
            return data["scope_team"].pk if data.get("scope_team") else None
        if data["scope_type"] == CampaignScope.SYSTEM:
            return data["scope_system"].pk if data.get("scope_system") else None
        return None
