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
