"""Forms of the approval pages. The payload schemas live with their actions (approvals_actions)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group

from governance.models.approvals import ApprovalAction


class RequestMetaForm(forms.Form):
    """What every request carries besides the proposed change: why, and the external ticket."""

    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                                    help_text="Why this change is needed. Approvers read this first.")
    ticket_system = forms.CharField(max_length=60, required=False, label="Ticket system",
                                    help_text="For example Jira or ServiceNow (optional).")
    ticket_key = forms.CharField(max_length=100, required=False, label="Ticket key")
    ticket_url = forms.URLField(max_length=500, required=False, label="Ticket link", assume_scheme="https")

    def ticket(self) -> dict:
        data = self.cleaned_data
        return {"system": data["ticket_system"], "key": data["ticket_key"], "url": data["ticket_url"]}


class ApproveForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False)


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000,
                             help_text="The requester reads this.",
                             error_messages={"required": "Say why you reject the request: the requester reads it."})


ACTION_CHOICES = ApprovalAction.choices


class ApprovalPolicyForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    approver_groups = forms.ModelMultipleChoiceField(queryset=Group.objects.order_by("name"),
                                                     widget=forms.CheckboxSelectMultiple)
    required_approvals = forms.IntegerField(min_value=1, initial=1, label="Distinct approvals required (N)")
    owner_may_approve = forms.BooleanField(required=False, label="The object's owner may approve")
    expiry_hours = forms.IntegerField(min_value=1, initial=72)
    reminder_before_hours = forms.IntegerField(min_value=0, initial=24, label="Remind this many hours before expiry")
    escalation_group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False)
    escalation_after_hours = forms.IntegerField(min_value=1, required=False)
    actions = forms.MultipleChoiceField(choices=ACTION_CHOICES, widget=forms.CheckboxSelectMultiple,
                                        label="Actions it gates")
    default_for_actions = forms.MultipleChoiceField(choices=ACTION_CHOICES, widget=forms.CheckboxSelectMultiple,
                                                    required=False, label="Default policy for")

    @classmethod
    def initial_for(cls, policy) -> dict:
        return {
            "name": policy.name, "description": policy.description,
            "approver_groups": list(policy.approver_groups.all()), "required_approvals": policy.required_approvals,
            "owner_may_approve": policy.owner_may_approve, "expiry_hours": policy.expiry_hours,
            "reminder_before_hours": policy.reminder_before_hours, "escalation_group": policy.escalation_group,
            "escalation_after_hours": policy.escalation_after_hours, "actions": policy.actions,
            "default_for_actions": policy.default_for_actions,
        }
