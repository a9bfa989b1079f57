"""The spare-parts console: stock on hand per depot with its lots and their expiry, the catalog, the movement
ledger, a part's and a depot's page with the forms that move stock (receive, transfer, adjust, scrap), stock counts
(start, record, post with the variances shown first) and the open alerts. Thin views over parts.selectors (reads)
and parts.services (writes).

Depots are looked up through the user's region scope, so one of another region is a 404; a refused change answers
400 (the input) or 409 (a count closed or moved under it) with the reason at the top of the page and next to the
field, and changes nothing (the services are atomic); one the user may not make is a 403.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.validation import add_service_errors
from parts import imports, selectors, services
from parts.forms import (
    AdjustForm,
    CountLineForm,
    LedgerFilterForm,
    PartForm,
    ReceiveForm,
    ReorderForm,
    ScheduleForm,
    ScrapForm,
    TransferForm,
)
from parts.models import Lot, Movement, StockCount

VIEW = "parts.view_balance"
PAGE_SIZE = 100

see_stock = permission_required(VIEW, raise_exception=True)


def _conflict(error: ValidationError) -> int:
    return 409 if getattr(error, "code", None) in ("conflict", "illegal_transition") else 400


@login_required
@see_stock
@require_GET
def stock(request):
    """Every depot the user may see with its stock, what is low, what expires, which counts are due."""
    depots = selectors.depots_for_user(request.user)
    context = {
        "overview": selectors.stock_overview(request.user),
        "below": selectors.parts_below_reorder(depots=depots),
        "expiring": selectors.lots_expiring(within_days=selectors.expiry_warn_days(), depots=depots)[:50],
        "today": timezone.localdate(),
        "warn_days": selectors.expiry_warn_days(),
    }
    for balance in context["expiring"]:
        balance.expiry_state = selectors.expiry_state(balance.lot.expires_on)
    return render(request, "parts/stock.html", context)


@login_required
@see_stock
@require_GET
def catalog(request):
    return render(request, "parts/catalog.html", {"parts": selectors.catalog(request.user)})


@login_required
@see_stock
@require_GET
def part_detail(request, part_number: str):
    part = selectors.part_for_user(request.user, part_number)
    movements = selectors.movements_for_user(request.user, part=part)[:50]
    context = {"part": part, "balances": selectors.part_stock(request.user, part), "movements": movements}
    return render(request, "parts/part.html", context)


def _depot_context(request, depot, **forms) -> dict:
    user = request.user
    targets = list(selectors.depots_for_user(user))
    context = {
        "depot": depot,
        "balances": selectors.depot_lots(depot),
        "movements": selectors.movements_for_user(user, depot=depot)[:30],
        "counts": selectors.counts_for_user(user).filter(depot=depot)[:10],
        "open_count": StockCount.objects.filter(depot=depot, status=StockCount.Status.OPEN).first(),
        "schedule": getattr(depot, "count_schedule", None),
        "levels": depot.reorder_levels.select_related("part"),
        "below": selectors.parts_below_reorder(depots=[depot.pk]),
        "can_move": services.can_move(user, depot),
        "can_count": services.can_count(user, depot),
        "can_set_levels": user.has_perm("parts.change_part"),
        "today": timezone.localdate(),
    }
    context["forms"] = {
        "receive": forms.get("receive") or ReceiveForm(prefix="receive"),
        "transfer": forms.get("transfer") or TransferForm(prefix="transfer", depot=depot, targets=targets),
        "adjust": forms.get("adjust") or AdjustForm(prefix="adjust", depot=depot),
        "scrap": forms.get("scrap") or ScrapForm(prefix="scrap", depot=depot),
        "schedule": forms.get("schedule")
        or ScheduleForm(
            prefix="schedule",
            initial={"every_days": 30, "due_on": timezone.localdate()}
            if context["schedule"] is None
            else {"every_days": context["schedule"].every_days, "due_on": context["schedule"].due_on},
        ),
        "reorder": forms.get("reorder") or ReorderForm(prefix="reorder"),
    }
    context["error_form"] = next(iter(forms), "")
    return context


@login_required
@see_stock
@require_GET
def depot_detail(request, code: str):
    depot = selectors.depot_for_user(request.user, code)
    return render(request, "parts/depot.html", _depot_context(request, depot))


def _apply(action: str, form, depot, user):
    data = form.cleaned_data
    if action == "receive":
        services.part_receive(
            part=data["part"],
            depot=depot,
            quantity=data["quantity"],
            lot_number=data["lot_number"],
            expires_on=data["expires_on"],
            actor=user,
            reason=data["reason"],
        )
        return _("Received %(n)d × %(part)s.") % {"n": data["quantity"], "part": data["part"].name}
    if action == "transfer":
        services.stock_transfer(
            lot=data["lot"],
            source=depot,
            target=data["target"],
            quantity=data["quantity"],
            actor=user,
            reason=data["reason"],
        )
        return _("Transferred %(n)d to %(depot)s.") % {"n": data["quantity"], "depot": data["target"].name}
    if action == "adjust":
        services.stock_adjust(lot=data["lot"], depot=depot, delta=data["delta"], actor=user, reason=data["reason"])
        return _("Stock adjusted.")
    if action == "scrap":
        services.stock_adjust(
            lot=data["lot"],
            depot=depot,
            delta=-data["quantity"],
            actor=user,
            reason=data["reason"],
            kind=Movement.Kind.SCRAP,
        )
        return _("Scrapped %(n)d.") % {"n": data["quantity"]}
    if action == "schedule":
        services.count_schedule_set(depot=depot, every_days=data["every_days"], due_on=data["due_on"], actor=user)
        return _("Count schedule saved.")
    if action == "reorder":
        services.reorder_level_set(
            depot=depot,
            part=data["part"],
            reorder_point=data["reorder_point"],
            reorder_quantity=data["reorder_quantity"],
            actor=user,
        )
        return _("Reorder level saved.")
    raise AssertionError(action)


ACTIONS = {
    "receive": ReceiveForm,
    "transfer": TransferForm,
    "adjust": AdjustForm,
    "scrap": ScrapForm,
    "schedule": ScheduleForm,
    "reorder": ReorderForm,
}


@login_required
@see_stock
@require_POST
def depot_action(request, code: str, action: str):
    """One of the depot page's forms. A refusal re-renders the page with the form's errors (400/409)."""
    depot = selectors.depot_for_user(request.user, code)
    if action not in ACTIONS:
        raise Http404
    if action == "reorder" and not request.user.has_perm("parts.change_part"):
        raise PermissionDenied
    if action != "reorder" and not services.can_move(request.user, depot):
        raise PermissionDenied
    kwargs = {"prefix": action}
    if action in ("transfer", "adjust", "scrap"):
        kwargs["depot"] = depot
    if action == "transfer":
        kwargs["targets"] = list(selectors.depots_for_user(request.user))
    form = ACTIONS[action](request.POST, **kwargs)
    status = 400
    if form.is_valid():
        try:
            message = _apply(action, form, depot, request.user)
        except ValidationError as error:
            add_service_errors(form, error, {"delta": "delta" if action == "adjust" else "quantity"})
            status = _conflict(error)
        else:
            messages.success(request, message)
            return redirect("parts:depot", code=depot.code)
    return render(request, "parts/depot.html", _depot_context(request, depot, **{action: form}), status=status)


@login_required
@see_stock
@require_GET
def ledger(request):
    form = LedgerFilterForm(request.GET or None, depots=selectors.depots_for_user(request.user))
    filters = form.filters()
    page = Paginator(selectors.movements_for_user(request.user, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query_without_page": query.urlencode(), "filtered": any(filters.values())}
    return render(request, "parts/ledger.html", context, status=400 if form.is_bound and not form.is_valid() else 200)


@login_required
@see_stock
@require_GET
def alerts(request):
    show_all = request.GET.get("show") == "all"
    page = Paginator(selectors.alerts_for_user(request.user, open_only=not show_all), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "parts/alerts.html", {"page": page, "show_all": show_all})


# --- Stock counts ---------------------------------------------------------------------------------------------


@login_required
@see_stock
@require_POST
def count_start(request, code: str):
    depot = selectors.depot_for_user(request.user, code)
    try:
        count = services.stock_count_start(depot=depot, actor=request.user)
    except ValidationError as error:
        messages.error(request, "；".join(error.messages))
        open_count = StockCount.objects.filter(depot=depot, status=StockCount.Status.OPEN).first()
        if open_count is not None:
            return redirect("parts:count", pk=open_count.pk)
        return redirect("parts:depot", code=depot.code)
    return redirect("parts:phone-count" if request.POST.get("next") == "phone" else "parts:count", pk=count.pk)


def _count_for_user(user, pk: int) -> StockCount:
    return get_object_or_404(selectors.counts_for_user(user), pk=pk)


def _record(request, count) -> list[str]:
    """Record every lot's counted quantity from the form (fields counted-<lot id>); blank fields are left alone.
    Returns the errors, each naming its lot."""
    errors = []
    lots = {lot.pk: lot for lot in Lot.objects.filter(pk__in=count.lines.values("lot_id")).select_related("part")}
    for name, value in request.POST.items():
        if not name.startswith("counted-") or value.strip() == "":
            continue
        form = CountLineForm({"lot": name.removeprefix("counted-"), "counted": value.strip()})
        lot = lots.get(form.cleaned_data.get("lot")) if form.is_valid() else None
        if lot is None:
            label = lots.get(int(name[8:])) if name[8:].isdigit() and len(name) < 30 else None
            errors.append(_("%(lot)s: give the number found, from 0 to 100,000.") % {"lot": label or _("Unknown lot")})
            continue
        try:
            services.stock_count_record(count=count, lot=lot, counted=form.cleaned_data["counted"], actor=request.user)
        except ValidationError as error:
            errors.append(f"{lot}: {'；'.join(error.messages)}")
    return errors


@login_required
@see_stock
@require_http_methods(["GET", "POST"])
def count_detail(request, pk: int):
    """GET: the count's lots, expected and counted, with the variances. POST: record the quantities
    (action=record) or post the count (action=post; the page shows the variances before)."""
    count = _count_for_user(request.user, pk)
    errors, status = [], 200
    if request.method == "POST":
        try:
            if not services.can_count(request.user, count.depot):
                raise PermissionDenied
            errors = _record(request, count)
            if not errors and request.POST.get("action") == "post":
                movements = services.stock_count_post(count=count, actor=request.user)
                messages.success(
                    request, _("Count posted: %(n)d variance(s) written to the ledger.") % {"n": len(movements)}
                )
                return redirect("parts:count", pk=count.pk)
            if not errors:
                messages.success(request, _("Counted quantities saved."))
                return redirect("parts:count", pk=count.pk)
            status = 400
        except ValidationError as error:
            errors, status = error.messages, _conflict(error)
        count.refresh_from_db()
    lines = selectors.count_lines(count)
    context = {
        "count": count,
        "lines": lines,
        "errors": errors,
        "uncounted": sum(1 for line in lines if line.counted is None),
        "variances": [line for line in lines if line.variance],
        "can_move": services.can_count(request.user, count.depot),
    }
    return render(request, "parts/count.html", context, status=status)


# --- Import and export ------------------------------------------------------------------------------------------


class ImportForm(forms.Form):
    what = forms.ChoiceField(
        label=_lazy("What to import"),
        choices=[("catalog", _lazy("Catalog")), ("stock", _lazy("Stock (opening balances)"))],
    )
    file = forms.FileField(label=_lazy("CSV or XLSX file"))


@login_required
@see_stock
@require_http_methods(["GET", "POST"])
def import_page(request):
    """Upload a catalog or an opening-balance stock file; all rows apply or none, and the refused rows are listed
    with their row numbers."""
    form = ImportForm(request.POST or None, request.FILES or None)
    errors, status = [], 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            raw = upload.read(imports.MAX_BYTES + 1)
            run = imports.catalog_import if form.cleaned_data["what"] == "catalog" else imports.stock_import
            try:
                result = run(raw=raw, filename=upload.name, actor=request.user)
            except imports.ImportRefused as refused:
                errors, status = refused.errors, 400
            except PermissionDenied:
                raise
            else:
                messages.success(
                    request,
                    _("Imported %(rows)d rows: %(created)d new, %(updated)d updated.")
                    % {"rows": result.rows, "created": result.created, "updated": result.updated},
                )
                return redirect("parts:import")
        else:
            status = 400
    return render(request, "parts/import.html", {"form": form, "errors": errors}, status=status)


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@login_required
@see_stock
@require_GET
def export(request, what: str, fmt: str):
    if what not in ("catalog", "stock") or fmt not in EXPORT_TYPES:
        raise Http404
    dataset = imports.catalog_export() if what == "catalog" else imports.stock_export(request.user)
    body = dataset.export(fmt)
    if fmt == "csv":
        body = "\ufeff" + body  # Excel opens UTF-8 with a BOM as UTF-8
    response = HttpResponse(body, content_type=EXPORT_TYPES[fmt])
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="parts-{what}-{stamp}.{fmt}"'
    return response


@login_required
@see_stock
@require_http_methods(["GET", "POST"])
def part_edit(request, part_number: str = ""):
    """Add a part to the catalog, or change one (technical support)."""
    part = selectors.part_for_user(request.user, part_number) if part_number else None
    if not request.user.has_perm("parts.add_part" if part is None else "parts.change_part"):
        raise PermissionDenied
    form = PartForm(request.POST or None, instance=part)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            values = {name: form.cleaned_data[name] for name in form.fields if not form.fields[name].disabled}
            try:
                saved = services.part_save(actor=request.user, part=part, **values)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _("Catalog saved: %(part)s.") % {"part": saved})
                return redirect("parts:part", part_number=saved.part_number)
    return render(request, "parts/part_edit.html", {"form": form, "part": part}, status=status)
