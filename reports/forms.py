"""The report request form: it shapes input; report_job_create() validates and decides."""

from __future__ import annotations

from django import forms

from governance.widgets import LongSelect
from reports import catalogue
from reports.models import ReportKind
from reports.scopes import available_scopes
from reports.selectors import attestation_campaigns_reportable

_SCOPED_KINDS = (ReportKind.FRAMEWORK_PACK, ReportKind.INVENTORY)
# Which report kinds each field is for (fields not named here are for all); the page hides the others.
FIELD_KINDS: dict[str, tuple[str, ...]] = {
    "framework": (ReportKind.FRAMEWORK_PACK,),
    "campaign": (ReportKind.ATTESTATION_CAMPAIGN,),
    "scope": _SCOPED_KINDS,
    "period_start": _SCOPED_KINDS,
}


class DateInput(forms.DateInput):
    input_type = "date"


class ReportRequestForm(forms.Form):
    kind = forms.ChoiceField(label="Report", choices=ReportKind.choices, initial=ReportKind.FRAMEWORK_PACK)
    framework = forms.ChoiceField(label="Framework", required=False,
                                  help_text="For a framework evidence pack: the framework whose controls it covers.")
    campaign = forms.ChoiceField(label="Attestation campaign", required=False,
                                 help_text="For an attestation campaign report: the campaign it covers (the report "
                                           "covers the campaign's own scope).")
    # Every team and system is a scope (2,000 systems in the bench estate): one pass, searchable.
    scope = forms.ChoiceField(label="Scope", widget=LongSelect, help_text="Not used by an attestation campaign report.")
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
        campaigns = attestation_campaigns_reportable(user=user)
        self.fields["campaign"].choices = [("", "—")] + [
            (str(c.pk), f"{c.name} ({c.scope_label}, {c.get_status_display().lower()})") for c in campaigns
        ]
        self.fields["scope"].choices = [(s.key, s.label) for s in available_scopes(user)]
        for name, kinds in FIELD_KINDS.items():
            self.fields[name].widget.attrs["data-report-kinds"] = " ".join(kinds)

    def clean(self):
        data = super().clean()
        if data.get("kind") == ReportKind.FRAMEWORK_PACK and not data.get("framework"):
            self.add_error("framework", "Choose the framework of the evidence pack.")
        if data.get("kind") == ReportKind.ATTESTATION_CAMPAIGN and not data.get("campaign"):
            self.add_error("campaign", "Choose the attestation campaign to report on.")
        return data

    def parameters(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        params = {"period_end": data.get("period_end")}
        if kind in _SCOPED_KINDS:
            params.update(scope=data["scope"], period_start=data.get("period_start"))
        if kind == ReportKind.FRAMEWORK_PACK:
            params["framework"] = data["framework"]
        if kind == ReportKind.ATTESTATION_CAMPAIGN:
            params["campaign"] = data["campaign"]
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in params.items() if v}
