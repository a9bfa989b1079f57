"""The figures page, its exports, and the six-monthly review (console and PDF). Reads go through analytics/report.py;
every write is a service in analytics/services.py."""

import csv
import io

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.scoping import visible_region_ids
from analytics import report, selectors, services
from analytics.forms import ActionDoneForm, OpenReviewForm, PeriodForm, ReviewActionForm, ReviewSummaryForm
from analytics.models import Review, ReviewAction
from core import printing
from core.validation import add_service_errors

VIEW = "analytics.view_analytics"
OWN = "analytics.own_review"


def _period_form(request) -> PeriodForm:
    form = PeriodForm(request.GET or None)
    if not request.GET:
        form = PeriodForm({"period": "30d", "by": "region"})
    return form


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def figures(request):
    form = _period_form(request)
    if not form.is_valid():
        return render(request, "analytics/figures.html", {"form": form}, status=400)
    data = report.figures_page(request.user, form.cleaned_data["range"], form.cleaned_data["by"])
    return render(
        request,
        "analytics/figures.html",
        {
            "form": form,
            "data": data,
            "chart": {"trend": data["trend"]},
            "freshness": selectors.freshness(),
            "query": request.GET.urlencode(),
        },
    )


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def kiosk(request, serial: str):
    from accounts.scoping import scope_kiosks
    from fleet.models import Kiosk

    target = get_object_or_404(
        scope_kiosks(Kiosk.objects.select_related("site", "site__region"), request.user), serial=serial
    )
    form = _period_form(request)
    if not form.is_valid():
        form = PeriodForm({"period": "year", "by": "region"})
        form.is_valid()
    period = form.cleaned_data["range"]
    figures, trend, incidents = selectors.kiosk_figures(request.user, target, period)
    total = report.figures_dict(figures)
    return render(
        request,
        "analytics/kiosk.html",
        {
            "kiosk": target,
            "form": form,
            "period": period,
            "headline": report.headline(total, None),
            "chart": {"trend": trend},
            "incidents": incidents,
        },
    )


def _table(data: dict) -> tuple[list[str], list[list]]:
    header = [
        data["dimension_label"],
        _("Kiosks"),
        _("Availability in opening hours"),
        _("Failures"),
        _("MTBF (hours)"),
        _("MTTR (minutes)"),
        _("Time to acknowledge (minutes)"),
        _("Time to arrival onsite (minutes)"),
        _("First-time fix rate"),
        _("Payments lost to downtime (estimate)"),
        _("Citizen reports"),
    ]

    def minutes(seconds):
        return None if seconds is None else round(seconds / 60, 1)

    rows = [
        [
            row["label"],
            row["kiosks"],
            None if row["availability"] is None else round(row["availability"], 5),
            row["failures"],
            None if row["mtbf_s"] is None else round(row["mtbf_s"] / 3600, 1),
            minutes(row["mttr_s"]),
            minutes(row["acknowledge_s"]),
            minutes(row["arrival_s"]),
            None if row["first_time_fix_rate"] is None else round(row["first_time_fix_rate"], 4),
            row["payments_lost"],
            row["citizen_reports"],
        ]
        for row in [*data["rows"], data["total"]]
    ]
    return header, rows


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def export(request, fmt: str):
    form = _period_form(request)
    if not form.is_valid():
        return HttpResponse(
            "; ".join(str(e) for errors in form.errors.values() for e in errors),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    period, by = form.cleaned_data["range"], form.cleaned_data["by"]
    data = report.figures_page(request.user, period, by)
    header, rows = _table(data)
    name = f"kioskops-figures-{by}-{period.start}-{period.end}"
    if fmt == "csv":
        buffer = io.StringIO()
        buffer.write("\ufeff")  # Excel opens a UTF-8 CSV with Chinese text only with the BOM
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows([["" if value is None else value for value in row] for row in rows])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    elif fmt == "xlsx":
        from openpyxl import Workbook
        from openpyxl.styles import Font

        book = Workbook()
        sheet = book.active
        sheet.title = str(data["dimension_label"])[:31]
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        for cell in sheet["C"][1:]:
            cell.number_format = "0.00%"
        for cell in sheet["I"][1:]:
            cell.number_format = "0.0%"
        out = io.BytesIO()
        book.save(out)
        response = HttpResponse(
            out.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    else:
        raise Http404
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


# --- The six-monthly review -----------------------------------------------------------------------------------


def _half_choices() -> list[tuple[int, int]]:
    today = timezone.localdate()
    year, half = today.year, 1 if today.month <= 6 else 2
    halves = []
    for _step in range(6):
        halves.append((year, half))
        year, half = (year, 1) if half == 2 else (year - 1, 2)
    return halves


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def reviews(request):
    existing = {(review.year, review.half): review for review in Review.objects.all()}
    halves = [
        {"year": year, "half": half, "code": f"{year}H{half}", "review": existing.pop((year, half), None)}
        for year, half in _half_choices()
    ]
    older = sorted(existing.values(), key=lambda review: (-review.year, -review.half))
    return render(
        request,
        "analytics/reviews.html",
        {
            "halves": halves,
            "older": older,
            "can_own": request.user.has_perm(OWN),
            "open_actions": selectors.open_actions(),
        },
    )


@require_POST
@login_required
@permission_required(OWN, raise_exception=True)
def review_open(request):
    form = OpenReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("No such half-year."))
        return redirect("analytics:reviews")
    try:
        review = services.review_open(
            year=form.cleaned_data["year"], half=form.cleaned_data["half"], actor=request.user
        )
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
        return redirect("analytics:reviews")
    return redirect("analytics:review", code=review.code)


def _review(code: str) -> Review:
    year, _sep, half = code.upper().partition("H")
    if not (year.isdigit() and half in ("1", "2")):
        raise Http404
    return get_object_or_404(Review, year=int(year), half=int(half))


def _review_data(request, review: Review) -> dict:
    """A published review shows what was published; a draft shows the figures as they are now, for this reader."""
    if review.status == Review.Status.PUBLISHED and review.snapshot:
        return report.relabel(review.snapshot)
    return report.review_data(request.user, review)


def _owners():
    return get_user_model().objects.filter(is_active=True).order_by("last_name", "first_name", "username")


def _review_context(request, review: Review, **forms) -> dict:
    data = _review_data(request, review)
    return {
        "review": review,
        "data": data,
        "chart": {"trend": data["trend"], "code": review.code},
        "actions": selectors.review_actions(review),
        "carried": selectors.open_actions(before=review),
        "can_own": request.user.has_perm(OWN),
        "summary_form": forms.get("summary_form") or ReviewSummaryForm(initial={"summary": review.summary}),
        "action_form": forms.get("action_form") or ReviewActionForm(owners=_owners()),
        "done_form": ActionDoneForm(),
        "scoped": visible_region_ids(request.user) is not None,
    }


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def review_detail(request, code: str):
    review = _review(code)
    return render(request, "analytics/review.html", _review_context(request, review))


@require_POST
@login_required
@permission_required(OWN, raise_exception=True)
def review_summary(request, code: str):
    review = _review(code)
    form = ReviewSummaryForm(request.POST)
    if form.is_valid():
        try:
            services.review_save_summary(review=review, summary=form.cleaned_data["summary"], actor=request.user)
            messages.success(request, _("Summary saved."))
            return redirect("analytics:review", code=review.code)
        except ValidationError as error:
            add_service_errors(form, error)
    return render(request, "analytics/review.html", _review_context(request, review, summary_form=form), status=400)


@require_POST
@login_required
@permission_required(OWN, raise_exception=True)
def review_action_add(request, code: str):
    review = _review(code)
    form = ReviewActionForm(request.POST, owners=_owners())
    if form.is_valid():
        try:
            services.review_action_add(review=review, actor=request.user, **form.cleaned_data)
            messages.success(request, _("Action added."))
            return redirect("analytics:review", code=review.code)
        except ValidationError as error:
            add_service_errors(form, error)
    return render(request, "analytics/review.html", _review_context(request, review, action_form=form), status=400)


@require_POST
@login_required
def review_action_done(request, pk: int):
    action = get_object_or_404(ReviewAction.objects.select_related("review"), pk=pk)
    if action.owner_id != request.user.pk and not request.user.has_perm(OWN):
        raise PermissionDenied
    form = ActionDoneForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say how the action was done."))
    else:
        try:
            services.review_action_done(action=action, note=form.cleaned_data["note"], actor=request.user)
            messages.success(request, _("Action done."))
        except ValidationError as error:
            messages.error(request, "; ".join(error.messages))
    return redirect("analytics:review", code=action.review.code)


@require_POST
@login_required
@permission_required(OWN, raise_exception=True)
def review_publish(request, code: str):
    review = _review(code)
    if visible_region_ids(request.user) is not None:
        messages.error(request, _("Only someone who sees every district publishes the review."))
        return redirect("analytics:review", code=review.code)
    try:
        services.review_publish(review=review, snapshot=report.review_data(request.user, review), actor=request.user)
        messages.success(request, _("Review published: its figures are frozen as they are now."))
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    return redirect("analytics:review", code=review.code)


def review_html(request, review: Review) -> str:
    with translation.override("zh-hans"):
        context = _review_context(request, review)
        context["printed_at"] = timezone.localtime()
        return render_to_string("analytics/review_print.html", context)


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def review_pdf(request, code: str):
    review = _review(code)
    return printing.pdf_response(review_html(request, review), f"kioskops-review-{review.code}.pdf")
