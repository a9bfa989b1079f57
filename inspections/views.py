"""The console's inspection pages: the list (filters: hall, region, status, period), one inspection with its
results and the incidents its failures opened, the software laggards, and compliance per hall, region and
technician per month (a table and a chart). Region-scoped: another region's inspection is a 404."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from accounts.models import Region
from accounts.scoping import scope_kiosks, scope_regions, scope_sites
from core.validation import add_service_errors
from fleet.models import Kiosk, Site
from inspections import selectors, services
from inspections.api.views import _month
from inspections.models import ApprovedVersion, InspectionTemplate, Schedule, Status

OVERSEE = ("inspections.view_compliance", "inspections.manage_inspectiontemplate")


def _may_oversee(view):
    def wrapped(request, *args, **kwargs):
        if not any(request.user.has_perm(p) for p in OVERSEE):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


class ListFilters(forms.Form):
    hall = forms.ModelChoiceField(
        queryset=Site.objects.none(),
        required=False,
        label=_("Service hall"),
        to_field_name="code",
        empty_label=_("All halls"),
    )
    region = forms.ModelChoiceField(
        queryset=Region.objects.none(),
        required=False,
        label=_("Region"),
        to_field_name="code",
        empty_label=_("All regions"),
    )
    status = forms.ChoiceField(choices=[("", _("All statuses")), *Status.choices], required=False, label=_("Status"))
    period = forms.CharField(
        required=False,
        label=_("Month"),
        widget=forms.DateInput(attrs={"type": "month"}),
        help_text=_("YYYY-MM"),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hall"].queryset = scope_sites(Site.objects.all(), user).order_by("code")
        self.fields["region"].queryset = scope_regions(Region.objects.all(), user)

    def clean_period(self):
        value = self.cleaned_data["period"]
        if value and _month(value) is None:
            raise forms.ValidationError(_("Give a month as YYYY-MM."))
        return value


@login_required
@_may_oversee
@require_GET
def inspection_list(request):
    """Inspections of the user's regions, most recent periods first, overdue first within a day."""
    form = ListFilters(request.GET or None, user=request.user)
    queryset = selectors.inspections_visible(request.user)
    if form.is_valid():
        data = form.cleaned_data
        if data["hall"]:
            queryset = queryset.filter(site=data["hall"])
        if data["region"]:
            queryset = queryset.filter(region=data["region"])
        if data["status"]:
            queryset = queryset.filter(status=data["status"])
        if data["period"]:
            start, end = _month(data["period"])
            queryset = queryset.filter(period_start__gte=start, period_start__lt=end)
    counts = selectors.status_counts(queryset)
    page = Paginator(queryset.order_by("-due_on", "status", "due_at", "pk"), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "inspections/list.html",
        {
            "form": form,
            "page": page,
            "counts": [(value, label, counts.get(value, 0)) for value, label in Status.choices],
            "query_without_page": query.urlencode(),
            "any_filter": any(request.GET.get(k) for k in ("hall", "region", "status", "period")),
        },
    )


@login_required
@require_GET
def inspection_detail(request, uid):
    """One inspection: its checks, each result (who or the system, when, the note and measure), the incident a
    failure opened."""
    if not (any(request.user.has_perm(p) for p in OVERSEE) or request.user.has_perm("inspections.do_inspection")):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied
    inspection = selectors.inspection_for_user(request.user, uid)
    results = {r.check_key: r for r in inspection.results.select_related("recorded_by", "incident", "command")}
    rows = [{"check": check, "result": results.get(check.key)} for check in inspection.template.checks.all()]
    return render(request, "inspections/detail.html", {"inspection": inspection, "rows": rows, "now": timezone.now()})


@login_required
@_may_oversee
@require_GET
def laggards(request):
    """Kiosks behind the software version approved for their model (the monthly update check's list)."""
    from inspections.models import ApprovedVersion

    return render(
        request,
        "inspections/laggards.html",
        {"rows": selectors.laggards(request.user), "approved": ApprovedVersion.objects.all()},
    )


class ComplianceFilters(forms.Form):
    by = forms.ChoiceField(
        choices=[("site", _("Service hall")), ("region", _("Region")), ("technician", _("Technician"))],
        required=False,
        label=_("Rows per"),
    )
    start = forms.CharField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "month"}))
    end = forms.CharField(required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "month"}))

    def clean(self):
        data = super().clean()
        for name in ("start", "end"):
            if data.get(name) and _month(data[name]) is None:
                self.add_error(name, _("Give a month as YYYY-MM."))
        return data


@login_required
@permission_required("inspections.view_compliance", raise_exception=True)
@require_GET
def compliance(request):
    """Done on time, late and missed per hall, region or technician and per month: a table and a chart."""
    from inspections.api.views import compliance_params

    form = ComplianceFilters(request.GET or None)
    params = {}
    if form.is_valid():
        data = form.cleaned_data
        params = {"by": data.get("by") or "site", "from": data.get("start") or "", "to": data.get("end") or ""}
    by, start, end = compliance_params({k: v for k, v in params.items() if v})
    figures = selectors.compliance(request.user, by=by, start=start, end=end)
    chart = {
        "months": figures["months"],
        "on_time": [figures["totals"][m]["on_time"] for m in figures["months"]],
        "late": [figures["totals"][m]["late"] for m in figures["months"]],
        "missed": [figures["totals"][m]["missed"] for m in figures["months"]],
        "rate": [
            None if figures["totals"][m]["rate"] is None else round(figures["totals"][m]["rate"] * 100, 1)
            for m in figures["months"]
        ],
        "labels": {
            "on_time": str(_("Done on time")),
            "late": str(_("Done late")),
            "missed": str(_("Missed")),
            "rate": str(_("On-time rate (%)")),
        },
    }
    for row in figures["rows"]:
        row["cells"] = [row["months"].get(m) for m in figures["months"]]
    return render(
        request,
        "inspections/compliance.html",
        {"form": form, "figures": figures, "chart": chart, "by": by, "start": start, "end": end},
    )


# --- The plan: templates, schedules, approved versions -----------------------------------------------------


class ScheduleForm(forms.Form):
    template = forms.ModelChoiceField(queryset=None, label=_("Template"), to_field_name="code")
    scope = forms.ChoiceField(choices=Schedule.Scope.choices, label=_("applies to"))
    kiosk_model = forms.CharField(required=False, max_length=100, label=_("kiosk model"))
    region = forms.ModelChoiceField(queryset=None, required=False, label=_("Region"), to_field_name="code")
    hall = forms.ModelChoiceField(queryset=None, required=False, label=_("Service hall"), to_field_name="code")
    kiosk = forms.CharField(required=False, max_length=64, label=_("Kiosk serial number"))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["template"].queryset = InspectionTemplate.objects.filter(active=True)
        self.fields["region"].queryset = scope_regions(Region.objects.all(), user)
        self.fields["hall"].queryset = scope_sites(Site.objects.all(), user).order_by("code")

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope == "model":
            data["target"] = data.get("kiosk_model")
        elif scope == "region":
            data["target"] = data.get("region")
        elif scope == "site":
            data["target"] = data.get("hall")
        elif scope == "kiosk":
            serial = (data.get("kiosk") or "").strip()
            data["target"] = scope_kiosks(Kiosk.objects.filter(serial=serial), self.user).first()
            if serial and data["target"] is None:
                self.add_error("kiosk", _("No such kiosk in your regions."))
        return data


class VersionForm(forms.Form):
    kiosk_model = forms.CharField(max_length=100, label=_("kiosk model"))
    version = forms.CharField(max_length=64, label=_("approved version"))
    note = forms.CharField(max_length=300, required=False, label=_("Note"))


def _plan_context(request, schedule_form=None, version_form=None) -> dict:
    order = ["daily", "weekly", "monthly"]
    templates = sorted(
        InspectionTemplate.objects.prefetch_related("checks"), key=lambda t: (order.index(t.frequency), t.code)
    )
    schedules = Schedule.objects.select_related("template", "region", "site", "kiosk").order_by("template__code", "pk")
    models = sorted(set(Kiosk.objects.exclude(model="").values_list("model", flat=True).distinct()))
    return {
        "templates": templates,
        "schedules": schedules,
        "approved": ApprovedVersion.objects.all(),
        "schedule_form": schedule_form or ScheduleForm(user=request.user),
        "version_form": version_form or VersionForm(),
        "kiosk_models": models,
        "may_manage": request.user.has_perm(services.MANAGE),
    }


@login_required
@_may_oversee
def plan(request):
    """The inspection plan: each template's checks, the schedules applying them, the approved versions; technical
    support adds and pauses schedules and sets approved versions here (checks are edited in the admin)."""
    schedule_form = version_form = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "schedule":
                schedule_form = ScheduleForm(request.POST, user=request.user)
                if schedule_form.is_valid():
                    data = schedule_form.cleaned_data
                    services.schedule_create(
                        actor=request.user, template=data["template"], scope=data["scope"], target=data.get("target")
                    )
                    messages.success(request, _("Schedule added."))
                    return redirect("inspections:plan")
            elif action in ("pause", "resume"):
                schedule = get_object_or_404(Schedule, pk=request.POST.get("schedule") or 0)
                services.schedule_set_active(actor=request.user, schedule=schedule, active=action == "resume")
                return redirect("inspections:plan")
            elif action == "version":
                version_form = VersionForm(request.POST)
                if version_form.is_valid():
                    services.approved_version_set(actor=request.user, **version_form.cleaned_data)
                    messages.success(request, _("Approved version saved."))
                    return redirect("inspections:plan")
            else:
                return HttpResponseBadRequest()
        except ValidationError as error:
            form = schedule_form if action == "schedule" else version_form
            if form is None:
                raise
            add_service_errors(
                form, error, {"region": "region", "site": "hall", "kiosk": "kiosk", "__all__": "__all__"}
            )
    return render(request, "inspections/plan.html", _plan_context(request, schedule_form, version_form))
