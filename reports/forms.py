"""The report request form: it shapes input; report_job_create() validates and decides."""

from __future__ import annotations

from django import forms

from reports import catalogue
from reports.models import ReportKind
from reports.scopes import available_scopes


class DateInput(forms.DateInput):
    input_type = "date"


class ReportRequestForm(forms.Form):
    kind = forms.ChoiceField(label="Report", choices=ReportKind.choices, initial=ReportKind.FRAMEWORK_PACK)
    framework = forms.ChoiceField(label="Framework", required=False,
                                  help_text="For a framework evidence pack: the framework whose controls it covers.")
    scope = forms.ChoiceField(label="Scope")
    period_start = forms.DateField(label="Period start", required=False, widget=DateInput,
                                   help_text="Empty: 90 days before the period end.")
    period_end = forms.DateField(label="Period end", required=False, widget=DateInput,
                                 help_text="Empty: today. The report is as of the end of this day (UTC).")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        frameworks = catalogue.frameworks()
        self.fields["framework"].choices = [("", "—")] + [(f.key, f.name) for f in frameworks]
        if not frameworks:
            self.fields["framework"].help_text = ("The control catalogue is not loaded yet (python manage.py "
                                                  "load_catalogue, or the first sweep, loads it).")
        self.fields["scope"].choices = [(s.key, s.label) for s in available_scopes(user)]

    def clean(self):
        data = super().clean()
        if data.get("kind") == ReportKind.FRAMEWORK_PACK and not data.get("framework"):
            self.add_error("framework", "Choose the framework of the evidence pack.")
        return data

    def parameters(self) -> dict:
        data = self.cleaned_data
        params = {"scope": data["scope"], "period_start": data.get("period_start"),
                  "period_end": data.get("period_end")}
        if data["kind"] == ReportKind.FRAMEWORK_PACK:
            params["framework"] = data["framework"]
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in params.items() if v}
