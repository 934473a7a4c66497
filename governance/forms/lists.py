"""Forms of the lists: saving a view, asking for a change of many rows at once. The services hold the rules."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from governance.forms import drop_length_caps
from governance.models import Person, Team
from governance.services.bulk import MAX_BULK_ROWS
from governance.services.saved_views import MAX_NAME_LENGTH
from governance.widgets import LongSelect


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME_LENGTH, label="View name",
                           help_text="Your name for these filters, this sort and these columns.")
    query = forms.CharField(required=False, label="Filters and sort",
                            help_text="The list's query string, e.g. status=active&sort=-expires.")
    columns = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Columns")

    def __init__(self, *args, spec, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["columns"].choices = [(c.key, c.label) for c in spec.columns]
        drop_length_caps(self)


BULK_TRANSFER, BULK_RETIRE = "ownership_transfer", "retirement"


class IdsField(forms.MultipleChoiceField):
    """Object ids (whole numbers), in the order ticked; whether each may be seen is the service's question."""

    widget = forms.MultipleHiddenInput

    def validate(self, value):
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")
        bad = [v for v in value if not str(v).isdigit()]
        if bad:
            raise ValidationError(f"Not a row id: {', '.join(bad[:5])}.", code="invalid")
        if len(value) > MAX_BULK_ROWS:
            raise ValidationError(f"At most {MAX_BULK_ROWS} rows at once.", code="max")

    def clean(self, value):
        return list(dict.fromkeys(int(v) for v in super().clean(value)))


class BulkSelectionForm(forms.Form):
    """The ticked rows; the service decides, row by row, what becomes of each."""

    row = IdsField(error_messages={"required": "Tick at least one row first."})


class UncappedForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        drop_length_caps(self)


class BulkTransferForm(UncappedForm):
    new_owner = forms.ModelChoiceField(queryset=Person.objects.active().only("id", "username", "first_name",
                                                                            "last_name"),
                                       widget=LongSelect, label="New owner")
    new_team = forms.ModelChoiceField(queryset=Team.objects.only("id", "name"), required=False, widget=LongSelect,
                                      label="New backup team", help_text="Empty: keep each row's backup team.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label="Reason",
                             help_text="Why these change hands: it is each request's justification. "
                                       "Never paste a secret.")


class BulkRetireForm(UncappedForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label="Reason",
                             help_text="Why these are retired: it is each request's justification. "
                                       "Never paste a secret.")


BULK_FORMS = {BULK_TRANSFER: BulkTransferForm, BULK_RETIRE: BulkRetireForm}
