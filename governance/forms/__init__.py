"""Portal forms. They shape input; the services hold the rules and do the writes."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from governance import permissions, roles
from governance.json_input import JSONInputError, parse_json_object
from governance.models import Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.services import inventory as inventory_services
from governance.services import states


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def format_value(self, value):
        if hasattr(value, "strftime"):
            return value.strftime("%Y-%m-%dT%H:%M")
        return value


def drop_length_caps(form: forms.BaseForm) -> None:
    """No maxlength attribute on the inputs: a browser cuts a pasted value there without a word, so a long
    value reaches the server and is refused with a field error at the model's length instead (issue #19)."""
    for field in form.fields.values():
        field.widget.attrs.pop("maxlength", None)


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
    """The portal's register and edit forms for owned objects.

    An edit form carries only the descriptive fields; a registration form adds the gated fields the
    person may declare (services.inventory.DECLARABLE_ON_CREATE; their owner choice is themselves
    and the state the initial one; security admins get every gated field but the drill stamps). A
    crafted POST that sends a gated field the form does not carry is refused with a form error
    naming the operation to use, never silently ignored.
    """

    NEVER_TYPED = ("last_drilled_at", "last_drill_result")  # recorded by the drill itself

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        drop_length_caps(self)
        self.user = user
        model = self._meta.model
        editing = self.instance.pk is not None
        admin = user is not None and roles.is_security_admin(user)
        machine = states.machine_for(model)
        for name in inventory_services.GATED_FIELDS[model]:
            keep = not editing and name not in self.NEVER_TYPED and (
                admin or name in inventory_services.DECLARABLE_ON_CREATE or name == machine.field)
            if not keep:
                self.fields.pop(name, None)
        if "owner" in self.fields:
            people = Person.objects.active() if admin else Person.objects.filter(pk=getattr(user, "pk", None))
            self.fields["owner"].queryset = people.order_by("username")
        if not admin:  # a person's registration starts in the initial state: nothing to choose
            self.fields.pop(machine.field, None)
        if "team" in self.fields:
            self.fields["team"].queryset = Team.objects.order_by("name")

    def clean(self):
        cleaned = super().clean()
        model = self._meta.model
        machine = states.machine_for(model)
        for name in inventory_services.GATED_FIELDS[model]:
            repeats_initial = (not self.instance.pk and name == machine.field
                               and self.data.get(name) == machine.initial)  # what it starts in anyway
            if name in self.data and name not in self.fields and not repeats_initial:
                self.add_error(None, inventory_services.gated_message(model, name))
        return cleaned


class SystemForm(OwnedObjectForm):
    class Meta:
        model = System
        fields = list(inventory_services.OWNED_FIELDS[System])


class SecretStoreForm(forms.ModelForm):
    settings = JSONObjectField(required=False, help_text="Non-secret connection settings as JSON.")

    class Meta:
        model = SecretStore
        fields = list(inventory_services.SECRET_STORE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        drop_length_caps(self)


class CredentialForm(OwnedObjectForm):
    scopes = ListField(required=False, help_text="Comma-separated, e.g. repo:read, deploy:write")

    class Meta:
        model = Credential
        fields = list(inventory_services.OWNED_FIELDS[Credential])
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
        fields = list(inventory_services.OWNED_FIELDS[Workflow])
        widgets = {
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

    def clean(self):
        cleaned = super().clean()
        if "approval_policy" in self.data and "approval_policy" not in self.fields:
            self.add_error(None, "approval_policy: only security admins choose a workflow's approval path.")
        return cleaned


class BindingForm(forms.ModelForm):
    scopes_used = ListField(required=False)

    class Meta:
        model = Binding
        fields = ["credential", "purpose", "scopes_used"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        drop_length_caps(self)
        self.fields["credential"].queryset = permissions.restrict(Credential.objects.all(), user, "view")


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=500)


class SystemHostsForm(forms.Form):
    hosts = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 5}), label="Host names",
        help_text="One per line, e.g. orders.example.com or *.orders.example.com (one label below). A certificate "
                  "for this system's credentials may carry these names only; leave empty to allow none.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=500,
                             help_text="Recorded in the audit trail, e.g. the change ticket.")

    def clean_hosts(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["hosts"].replace(",", "\n").splitlines() if line.strip()]


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
