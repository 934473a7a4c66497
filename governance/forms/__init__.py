"""Portal forms. They shape input; the services hold the rules and do the writes."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from governance import permissions, roles
from governance.json_input import JSONInputError, parse_json_object
from governance.models import Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.services import inventory as inventory_services


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def format_value(self, value):
        if hasattr(value, "strftime"):
            return value.strftime("%Y-%m-%dT%H:%M")
        return value


class ListField(forms.CharField):
    """A list of short strings typed one per line or comma-separated (scopes)."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        text = super().to_python(value) or ""
        return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


class JSONObjectField(forms.CharField):
    """A JSON object typed as text; parsed by the one JSON-object parser (governance.json_input)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        return json.dumps(value, indent=1) if isinstance(value, dict) else value

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        try:
            return parse_json_object(super().to_python(value) or "")
        except JSONInputError as exc:
            raise ValidationError(f"{exc.path}: {exc.message}" if exc.path else exc.message) from None


class OwnedObjectForm(forms.ModelForm):
    """Owner choices are active people; team choices are all teams (the service checks scope)."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if "owner" in self.fields:
            self.fields["owner"].queryset = Person.objects.active().order_by("username")
        if "team" in self.fields:
            self.fields["team"].queryset = Team.objects.order_by("name")


class SystemForm(OwnedObjectForm):
    class Meta:
        model = System
        fields = [f for f in inventory_services.SYSTEM_FIELDS]


class SecretStoreForm(forms.ModelForm):
    settings = JSONObjectField(required=False, help_text="Non-secret connection settings as JSON.")

    class Meta:
        model = SecretStore
        fields = list(inventory_services.SECRET_STORE_FIELDS)


class CredentialForm(OwnedObjectForm):
    scopes = ListField(required=False, help_text="Comma-separated, e.g. repo:read, deploy:write")

    class Meta:
        model = Credential
        fields = [f for f in inventory_services.CREDENTIAL_FIELDS]
        widgets = {
            name: DateTimeInput()
            for name in ("issued_at", "last_rotated_at", "expires_at", "last_used_at", "third_party_reviewed_at")
        } | {"notes": forms.Textarea(attrs={"rows": 3}), "human_use_evidence": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        if user is not None:
            self.fields["system"].queryset = permissions.restrict(System.objects.all(), user, "view")


class WorkflowForm(OwnedObjectForm):
    class Meta:
        model = Workflow
        # Drills are recorded by the drill itself (workflow_drill_record), never typed in.
        fields = [f for f in inventory_services.WORKFLOW_FIELDS if f not in ("last_drilled_at", "last_drill_result")]
        widgets = {
            "last_drilled_at": DateTimeInput(),
            "systems": forms.CheckboxSelectMultiple,
            "description": forms.Textarea(attrs={"rows": 3}),
            "shutdown_procedure": forms.Textarea(attrs={"rows": 4}),
            "kill_switch_steps": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        if user is not None:
            self.fields["systems"].queryset = permissions.restrict(System.objects.all(), user, "view")
        if user is None or not roles.is_security_admin(user):
            self.fields.pop("approval_policy", None)  # the approval path is chosen by security admins


class BindingForm(forms.ModelForm):
    scopes_used = ListField(required=False)

    class Meta:
        model = Binding
        fields = ["credential", "purpose", "scopes_used"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["credential"].queryset = permissions.restrict(Credential.objects.all(), user, "view")


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=500)


class TransferForm(forms.Form):
    new_owner = forms.ModelChoiceField(queryset=Person.objects.active().order_by("username"))
    new_team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                      help_text="Leave empty to keep the current backup team.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=500)


class ImportForm(forms.Form):
    object_type = forms.ChoiceField(choices=[])
    file = forms.FileField(help_text="CSV or JSON, in the documented schema (docs/import-format.md).")

    def __init__(self, *args, object_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["object_type"].choices = [(t, t) for t in object_types]


def apply_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: field messages on fields, the rest on top."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            target = field if field in form.fields else None
            for message in messages:
                form.add_error(target, message if target else f"{field}: {message}" if field != "__all__" else message)
    else:
        for message in error.messages:
            form.add_error(None, message)
