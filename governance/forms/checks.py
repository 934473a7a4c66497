"""Forms of the checks capability: acknowledging findings (the service holds the rules)."""

from django import forms


class AcknowledgeForm(forms.Form):
    finding = forms.TypedMultipleChoiceField(
        coerce=int,
        label="Findings",
        error_messages={"required": "Select at least one finding to acknowledge."},
    )
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What you are doing about it (optional). Never paste a secret.",
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The ids are checked by the service against what the person may change; any integer is accepted here.
        self.fields["finding"].valid_value = lambda value: True
