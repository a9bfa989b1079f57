"""Forms of the spare-parts console and phone. They parse and type-check input (whole numbers in range, dates, a
depot or lot the user may see); the rules (who may move what, not below zero, expiry, a count's state) live in
parts.services, whose ValidationErrors are put back next to the fields (core.validation.add_service_errors)."""

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from parts.models import Lot, Movement, Part

MAX_QUANTITY = 100_000


def _quantity_field(label=None, minimum=1):
    return forms.IntegerField(
        label=label or _("Quantity"),
        min_value=minimum,
        max_value=MAX_QUANTITY,
        error_messages={
            "invalid": _("Give a whole number."),
            "min_value": _("At least %(limit_value)s."),
            "max_value": _("At most %(limit_value)s."),
        },
    )


class ReceiveForm(forms.Form):
    """Stock arriving at a depot (入库)."""

    part = forms.ModelChoiceField(
        label=_("Spare part"), queryset=Part.objects.filter(active=True), to_field_name="part_number"
    )
    quantity = _quantity_field()
    lot_number = forms.CharField(label=_("Lot number"), max_length=64)
    expires_on = forms.DateField(label=_("Expires on"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=_("Note"), max_length=300, required=False)


class _LotForm(forms.Form):
    lot = forms.ModelChoiceField(label=_("Lot"), queryset=Lot.objects.none())

    def __init__(self, *args, depot, **kwargs):
        super().__init__(*args, **kwargs)
        self.depot = depot
        # Only the lots this depot holds.
        self.fields["lot"].queryset = Lot.objects.filter(
            balances__depot=depot, balances__quantity__gt=0
        ).select_related("part")
        self.fields["lot"].label_from_instance = lambda lot: (
            f"{lot.part.part_number} {lot.part.name} · {lot.lot_number}"
            + (f" · {lot.expires_on:%Y-%m-%d}" if lot.expires_on else "")
        )


class TransferForm(_LotForm):
    """From this depot to another (调拨)."""

    target = forms.ChoiceField(label=_("To depot"))
    quantity = _quantity_field()
    reason = forms.CharField(label=_("Note"), max_length=300, required=False)

    def __init__(self, *args, depot, targets, **kwargs):
        super().__init__(*args, depot=depot, **kwargs)
        self.targets = {d.code: d for d in targets if d.pk != depot.pk}
        self.fields["target"].choices = [("", "—"), *((code, d.name) for code, d in self.targets.items())]

    def clean_target(self):
        return self.targets[self.cleaned_data["target"]]


class AdjustForm(_LotForm):
    """Correct a lot's stock up or down, with a reason (调整)."""

    delta = forms.IntegerField(
        label=_("Change (+/−)"),
        min_value=-MAX_QUANTITY,
        max_value=MAX_QUANTITY,
        error_messages={
            "invalid": _("Give a whole number."),
            "min_value": _("At least %(limit_value)s."),
            "max_value": _("At most %(limit_value)s."),
        },
    )
    reason = forms.CharField(label=_("Reason"), max_length=300)

    def clean_delta(self):
        if self.cleaned_data["delta"] == 0:
            raise forms.ValidationError(_("Give the change as a whole number other than zero."))
        return self.cleaned_data["delta"]


class ScrapForm(_LotForm):
    """Take broken or expired stock out (报废)."""

    quantity = _quantity_field()
    reason = forms.CharField(label=_("Reason"), max_length=300)


class ScheduleForm(forms.Form):
    every_days = forms.IntegerField(label=_("Count every (days)"), min_value=1, max_value=366)
    due_on = forms.DateField(label=_("Next count due on"), widget=forms.DateInput(attrs={"type": "date"}))


class ReorderForm(forms.Form):
    part = forms.ModelChoiceField(
        label=_("Spare part"), queryset=Part.objects.filter(active=True), to_field_name="part_number"
    )
    reorder_point = _quantity_field(_("Reorder point"), minimum=0)
    reorder_quantity = _quantity_field(_("Reorder quantity"), minimum=0)


class LedgerFilterForm(forms.Form):
    """The ledger's filters, as GET parameters; a depot outside the user's scope is not offered."""

    depot = forms.ChoiceField(label=_("Depot"), required=False)
    part = forms.ChoiceField(label=_("Spare part"), required=False)
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("All kinds")), *Movement.Kind.choices])
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, depots, **kwargs):
        super().__init__(*args, **kwargs)
        self.depots = {d.code: d for d in depots}
        self.fields["depot"].choices = [("", _("All depots")), *((c, d.name) for c, d in self.depots.items())]
        self.parts = {p.part_number: p for p in Part.objects.all()}
        self.fields["part"].choices = [("", _("All parts")), *((n, f"{n} {p.name}") for n, p in self.parts.items())]

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "depot": self.depots.get(data["depot"]),
            "part": self.parts.get(data["part"]),
            "kind": data["kind"],
            "since": data["since"],
            "until": data["until"],
        }


class CountLineForm(forms.Form):
    lot = forms.IntegerField(min_value=1, max_value=2**62)
    counted = _quantity_field(_("Counted"), minimum=0)


class PartForm(forms.ModelForm):
    """A catalog entry; compatible models typed comma-separated."""

    models_compatible = forms.CharField(
        label=_("Compatible models"),
        required=False,
        max_length=500,
        help_text=_("Separated by commas; empty: every model."),
    )

    class Meta:
        model = Part
        fields = [
            "part_number",
            "name",
            "component",
            "models_compatible",
            "unit",
            "expires",
            "reorder_point",
            "reorder_quantity",
            "unit_price",
            "active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["part_number"].disabled = True
            self.initial["models_compatible"] = ", ".join(self.instance.models_compatible or [])
        for name in ("reorder_point", "reorder_quantity"):
            self.fields[name].max_value = MAX_QUANTITY
            self.fields[name].validators.append(MaxValueValidator(MAX_QUANTITY))
        self.fields["unit_price"].min_value = 0
        self.fields["unit_price"].validators.append(MinValueValidator(0))

    def clean_models_compatible(self):
        text = self.cleaned_data["models_compatible"]
        return [m.strip() for m in text.replace("，", ",").replace("、", ",").split(",") if m.strip()][:50]
