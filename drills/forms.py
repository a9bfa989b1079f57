from django import forms
from django.utils.translation import gettext_lazy as _

from core.people import person_name
from drills import scenarios


class PlanForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    scenario = forms.ChoiceField(label=_("Scenario"), choices=[])
    region = forms.ModelChoiceField(label=_("District"), queryset=None)
    kiosks = forms.ModelMultipleChoiceField(label=_("Kiosks it plays"), queryset=None)
    window_start = forms.DateTimeField(label=_("From"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    window_end = forms.DateTimeField(label=_("Until"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    target_acknowledge = forms.IntegerField(
        label=_("Acknowledge within (min)"), min_value=1, max_value=1440, required=False
    )
    target_remote = forms.IntegerField(
        label=_("First remote attempt within (min)"), min_value=1, max_value=1440, required=False
    )
    target_dispatch = forms.IntegerField(label=_("Dispatch within (min)"), min_value=1, max_value=1440, required=False)
    target_arrival = forms.IntegerField(label=_("Arrival within (min)"), min_value=1, max_value=1440, required=False)
    target_resolve = forms.IntegerField(label=_("Recovery within (min)"), min_value=1, max_value=1440, required=False)
    participants = forms.ModelMultipleChoiceField(label=_("Participants"), queryset=None, required=False)
    allow_real_out_of_service = forms.BooleanField(
        label=_("May take the real kiosk out of service"),
        required=False,
        help_text=_("Off: the drill never touches a real kiosk."),
    )

    def __init__(self, *args, regions=None, kiosks=None, people=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scenario"].choices = scenarios.choices()
        self.fields["region"].queryset = regions
        self.fields["kiosks"].queryset = kiosks
        self.fields["kiosks"].label_from_instance = lambda k: f"{k.serial} · {k.site.name}"
        self.fields["participants"].queryset = people
        self.fields["participants"].label_from_instance = person_name


class AbortForm(forms.Form):
    reason = forms.CharField(label=_("Why abort"), max_length=300)


class ReviewForm(forms.Form):
    went_well = forms.CharField(
        label=_("What went well"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=3000
    )
    lessons = forms.CharField(
        label=_("Lessons"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=3000
    )


class ActionForm(forms.Form):
    text = forms.CharField(label=_("Action to take"), max_length=500)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=None)
    due_on = forms.DateField(label=_("Due"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, people=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = people
        self.fields["owner"].label_from_instance = person_name


class DoneForm(forms.Form):
    note = forms.CharField(label=_("How it was done"), max_length=500)
