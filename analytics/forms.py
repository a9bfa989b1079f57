from datetime import date, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from analytics.selectors import DIMENSIONS, Period, half_year
from core.inputs import EARLIEST_DATE

PRESETS = {
    "30d": _("Last 30 days"),
    "quarter": _("This quarter"),
    "half": _("This half-year"),
    "year": _("Last 12 months"),
    "custom": _("Custom"),
}
MAX_DAYS = 3 * 366  # a longer period is an export's job, not a page's


class PeriodForm(forms.Form):
    period = forms.ChoiceField(label=_("Period"), choices=list(PRESETS.items()), required=False, initial="30d")
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(
        label=pgettext_lazy("figures grouped", "By"), choices=list(DIMENSIONS.items()), required=False, initial="region"
    )

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        preset = data.get("period") or "30d"
        if preset == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise ValidationError(_("Give both dates of a custom period."))
            if end < start:
                raise ValidationError(_("The period ends before it starts."))
            if start < EARLIEST_DATE or end > today + timedelta(days=366):
                raise ValidationError(_("Choose dates between 2000 and next year."))
            if (end - start).days >= MAX_DAYS:
                raise ValidationError(_("Choose at most three years."))
            data["range"] = Period(start, end)
        elif preset == "quarter":
            first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
            data["range"] = Period(first, today)
        elif preset == "half":
            data["range"] = Period(half_year(today.year, 1 if today.month <= 6 else 2).start, today)
        elif preset == "year":
            data["range"] = Period(today - timedelta(days=364), today)
        else:
            data["range"] = Period(today - timedelta(days=29), today)
        data["by"] = data.get("by") or "region"
        return data


class ReviewSummaryForm(forms.Form):
    summary = forms.CharField(
        label=_("Summary"), widget=forms.Textarea(attrs={"rows": 5}), max_length=5000, required=False
    )


class ReviewActionForm(forms.Form):
    text = forms.CharField(label=_("Recommendation"), max_length=500)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=None)
    due_on = forms.DateField(label=_("Due"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, owners=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners
        self.fields["owner"].label_from_instance = _person


class ActionDoneForm(forms.Form):
    note = forms.CharField(label=_("How it was done"), max_length=500)


class OpenReviewForm(forms.Form):
    year = forms.IntegerField(min_value=2000, max_value=2100)
    half = forms.TypedChoiceField(choices=[(1, "H1"), (2, "H2")], coerce=int)


def _person(user) -> str:
    from core.people import person_name

    return person_name(user)
