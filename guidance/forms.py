from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from guidance import services
from guidance.models import Symptom
from guidance.services import TEXT_MAX


class CitizenReportForm(forms.Form):
    """What a citizen tells about a kiosk. The rules (readable text, no markup, a phone number's shape) are
    guidance.services.citizen_report_submit's; this form collects them and bounds their size."""

    symptom = forms.ChoiceField(
        label=_("What went wrong?"),
        choices=Symptom.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what went wrong."), "invalid_choice": _("Choose what went wrong.")},
    )
    text = forms.CharField(
        label=_("Anything else we should know (optional)"),
        required=False,
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": TEXT_MAX}),
        error_messages={"max_length": _("Please keep it under %(limit_value)d characters.")},
    )
    phone = forms.CharField(
        label=_("Your phone number, if you would like us to call back (optional)"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel", "maxlength": 20}),
        error_messages={"max_length": _("Enter a mobile number of 11 digits, or a landline with its area code.")},
    )

    # The service's own checks, run here too so that every field's problem shows at once.
    def clean_text(self):
        return self._service_check(services.clean_text, self.cleaned_data["text"], "text", field="text")

    def clean_phone(self):
        return self._service_check(services.clean_phone, self.cleaned_data["phone"], "phone")

    @staticmethod
    def _service_check(check, value, name, **kwargs):
        try:
            return check(value, **kwargs)
        except ValidationError as error:
            raise ValidationError(error.message_dict.get(name, error.messages)) from error
