"""Forms of the lifecycle pages."""

from django import forms

from governance.models.lifecycle import ConnectorKind


class ConnectorTargetForm(forms.Form):
    kind = forms.ChoiceField(choices=ConnectorKind.choices)
    settings = forms.JSONField(
        initial=dict, widget=forms.Textarea(attrs={"rows": 6}),
        help_text='Non-secret settings, e.g. {"host": "db.internal", "port": 5432, "admin_user_env_var": '
                  '"PAYMENTS_DB_ADMIN_USER", "admin_password_env_var": "PAYMENTS_DB_ADMIN_PASSWORD"}. '
                  "Credentials are named by environment variable, never given.")


class KillSwitchStepDoneForm(forms.Form):
    """Mark a step done by hand. The comment is required by the service (its message is the field's error)."""

    comment = forms.CharField(required=False, max_length=2000, label="What was done",
                              widget=forms.Textarea(attrs={"rows": 2, "required": True}),
                              help_text="Where, by whom, the ticket. Never paste a secret.")


class KillSwitchStepWaiveForm(forms.Form):
    """Waive a step done by hand (security admins). The reason is required by the service."""

    reason = forms.CharField(required=False, max_length=2000, label="Why it is waived",
                             widget=forms.Textarea(attrs={"rows": 2, "required": True}))
