"""The reconciliation console: the exception queue, an item and its resolution, the daily report, the citizen
lookup at the counter, and file imports. Thin views over reconciliation.services (writes) and the reads of
reconciliation.selectors / lookup / api.views (scoping).

Every item is looked up through the user's region scope (reconciliation.selectors.scoped_items), so an item of
another region is a 404 everywhere. Permission checks come first: a role without the permission gets 403.
The live queue re-renders the same partials the page was built from; the browser only decides when to fetch.
"""

import re
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, Sum, Value, When
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.scoping import scope_kiosks, scope_sites, user_sees_all_regions
from core import inputs
from core.validation import add_service_errors
from fleet.models import Kiosk, Site
from reconciliation import exports, lookup, selectors, services, tasks
from reconciliation.calendar import known_years
from reconciliation.forms import (
    ANY,
    PROBLEMS,
    AssignForm,
    CandidateMatchForm,
    ContactForm,
    JournalUploadForm,
    LedgerImportForm,
    LookupForm,
    ManualMatchForm,
    QueueFilterForm,
    RefundedForm,
    RefundRequestForm,
    ReopenForm,
    WriteOffApproveForm,
    WriteOffForm,
    WriteOffRejectForm,
    WriteOffWithdrawForm,
)
from reconciliation.ledger_formats import LedgerFormatError
from reconciliation.lookup import describe_cause
from reconciliation.models import (
    BENIGN_OUTCOMES,
    JournalFile,
    LedgerEntry,
    LedgerFile,
    Outcome,
    ReconciliationRun,
    ReconItem,
    WriteOffRequest,
)
from reconciliation.privacy import looks_like_id_number
from reconciliation.selectors import kiosk_scope_for, scoped_items

QUEUE_PAGE_SIZE = 50
REPORT_KIOSKS = 50  # the report lists the kiosks with the most discrepancies; the downloads have them all
CHART_DAYS = 30
RECENT_FILES = 15

view_items = permission_required("reconciliation.view_reconitem", raise_exception=True)
resolve_items = permission_required("reconciliation.resolve_reconitem", raise_exception=True)

# Worst first: the queue is sorted by this, then by age.
_SEVERITY_RANK = Case(
    When(severity=ReconItem.Severity.HIGH, then=Value(3)),
    When(severity=ReconItem.Severity.MEDIUM, then=Value(2)),
    default=Value(1),
    output_field=IntegerField(),
)


_WRITEOFF_PENDING = Exists(WriteOffRequest.objects.filter(item=OuterRef("pk"), state=WriteOffRequest.State.PENDING))


def _today() -> date:
    return timezone.localdate()


def _calendar_gaps(calendar, *also: int) -> list[int]:
    """Years in play that the holiday data does not cover: those the calendar had to guess while this page was
    computed, the ones given, and today's year. Next year counts from October on, when the State Council
    publishes its holidays and settlement windows of late-December payments start to reach into it."""
    today = _today()
    years = set(calendar.unknown_years) if calendar is not None else set()
    years.update(also)
    years.add(today.year)
    if today.month >= 10:
        years.add(today.year + 1)
    known = known_years()
    return sorted(y for y in years if y not in known)


_HAN = re.compile(r"[\u3400-\u9fff]")


def _readable_error(text: str) -> tuple[str, str]:
    """What to show of an error stored in words of its own (a file's or a run's): itself when it is in the
    reader's language, else "技术错误", with the stored text returned apart for the tooltip (and for a <details>
    that a phone, which has no pointer to hover with, opens by a tap). Technical errors (a worker's exception, a
    database message) are stored as they were raised, in English."""
    if not text or _HAN.search(text) or (get_language() or "").startswith("en"):
        return text, ""
    return _("Technical error"), text


def _query_without(request, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


# --- People an item can be given to ---------------------------------------------------------------------


# --- The exception queue --------------------------------------------------------------------------------


def _queue_filters(request) -> QueueFilterForm:
    form = QueueFilterForm(request.GET or None, sites=scope_sites(Site.objects.order_by("name"), request.user))
    # An unknown or out-of-scope value is dropped (and shown as an error), never used.
    form.is_valid()
    return form


def _filtered_items(request, form: QueueFilterForm):
    """The scoped items matching every filter but the outcome, and the outcome filter on its own."""
    cleaned = getattr(form, "cleaned_data", {})
    items = scoped_items(request.user)
    state = cleaned.get("state") or ReconItem.State.OPEN
    if state != ANY:
        items = items.filter(state=state)
    if cleaned.get("date_from"):
        items = items.filter(business_date__gte=cleaned["date_from"])
    if cleaned.get("date_to"):
        items = items.filter(business_date__lte=cleaned["date_to"])
    for name, lookup_name in (
        ("severity", "severity"),
        ("channel", "channel"),
        ("site", "kiosk__site__code"),
        ("kiosk", "kiosk__serial"),
    ):
        if cleaned.get(name):
            items = items.filter(**{lookup_name: cleaned[name].strip()})
    if cleaned.get("amount_min") is not None:
        items = items.filter(amount__gte=cleaned["amount_min"])
    if cleaned.get("amount_max") is not None:
        items = items.filter(amount__lte=cleaned["amount_max"])
    if cleaned.get("mine"):
        items = items.filter(assigned_to=request.user)
    if cleaned.get("awaiting"):
        items = items.filter(pk__in=selectors.writeoffs_awaiting(request.user).values("item_id"))
    outcome = cleaned.get("outcome") or PROBLEMS
    if outcome == PROBLEMS:
        by_outcome = ~Q(outcome__in=BENIGN_OUTCOMES)
    elif outcome == ANY:
        by_outcome = Q()
    else:
        by_outcome = Q(outcome=outcome)
    return items, by_outcome, outcome


def _queue_counts(items, outcome: str) -> dict:
    """Per-outcome counts and amounts of the filtered items (all outcomes), for the chips above the list."""
    rows = {
        row["outcome"]: (row["n"], row["total"] or Decimal("0"))
        for row in items.order_by().values("outcome").annotate(n=Count("id"), total=Sum("amount"))
    }
    problems = [(o, label, *rows[o]) for o, label in Outcome.choices if o in rows and o not in BENIGN_OUTCOMES]
    return {
        "selected": outcome,
        "problems": problems,
        "problem_total": sum(n for _o, _l, n, _a in problems),
        "problem_amount": sum((a for _o, _l, _n, a in problems), Decimal("0")),
        "benign": [(o, label, *rows[o]) for o, label in Outcome.choices if o in rows and o in BENIGN_OUTCOMES],
    }


def _queue_context(request) -> dict:
    form = _queue_filters(request)
    items, by_outcome, outcome = _filtered_items(request, form)
    listed = (
        items.filter(by_outcome)
        .annotate(rank=_SEVERITY_RANK, writeoff_pending=_WRITEOFF_PENDING)
        .order_by("-rank", "business_date", "-amount", "id")
    )
    page = Paginator(listed, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    calendar = selectors.business_calendar()
    today = _today()
    for item in page:
        item.age = calendar.working_days_between(item.business_date, today)
        item.cause_text = describe_cause(item.causes[0]) if item.causes else ""
    return {
        "form": form,
        "page": page,
        "counts": _queue_counts(items, outcome),
        "query_without_page": _query_without(request, "page"),
        "query_without_outcome": _query_without(request, "outcome", "page"),
        "filtered": bool(request.GET and _query_without(request, "page")),
        "calendar_gaps": _calendar_gaps(calendar),
        "today": today,
        "writeoffs_awaiting": selectors.writeoffs_awaiting(request.user).count(),
    }


@login_required
@view_items
@require_GET
def queue(request):
    return render(request, "reconciliation/queue.html", _queue_context(request))


@login_required
@view_items
@require_GET
def queue_list(request):
    """The queue's counts and list as out-of-band fragments, for the live page to swap in."""
    return render(request, "reconciliation/_queue_update.html", _queue_context(request) | {"oob": True})


# --- An item --------------------------------------------------------------------------------------------


def _item_for(user, uid) -> ReconItem:
    # The line and entry come with their source files, without the files' bytes (ReconItemQuerySet).
    return get_object_or_404(scoped_items(user).select_related("kiosk__site__region"), uid=uid)


def _candidate_forms(item: ReconItem, bound: CandidateMatchForm | None) -> list[tuple[LedgerEntry, CandidateMatchForm]]:
    ids = [c.get("ledger_entry") for c in item.candidates if c.get("ledger_entry")]
    entries = LedgerEntry.objects.filter(pk__in=ids).order_by("paid_at", "settled_at", "pk") if ids else []
    rows = []
    for entry in entries:
        auto_id = f"id_cand{entry.pk}_%s"
        if bound is not None and bound.data.get("ledger_entry") == str(entry.pk):
            bound.auto_id = auto_id
            rows.append((entry, bound))
        else:
            rows.append((entry, CandidateMatchForm(initial={"ledger_entry": entry.pk}, auto_id=auto_id)))
    return rows


def _render_item(request, item: ReconItem, *, status: int = 200, **forms):
    calendar = selectors.business_calendar()
    people = selectors.people_with_permission_for_item("reconciliation.resolve_reconitem", item)
    pending = selectors.pending_writeoff(item)
    context = {
        "item": item,
        "line": item.journal_line,
        "entry": item.ledger_entry,
        "service_names": selectors.service_names(
            {r.service_code for r in (item.journal_line, item.ledger_entry) if r is not None and r.service_code}
        ),
        "age": calendar.working_days_between(item.business_date, _today()),
        "cause_texts": [describe_cause(c) for c in item.causes],
        "actions": item.actions.select_related("actor"),
        "candidates": _candidate_forms(item, forms.get("candidate_form")),
        "assign_form": forms.get("assign_form") or AssignForm(users=people, initial={"assignee": item.assigned_to}),
        "match_form": forms.get("match_form")
        or ManualMatchForm(initial={"channel": item.channel if item.channel != "cash" else None}),
        "refund_form": forms.get("refund_form") or RefundRequestForm(),
        "refunded_form": forms.get("refunded_form") or RefundedForm(),
        "write_off_form": forms.get("write_off_form") or WriteOffForm(),
        "pending_writeoff": pending,
        # Four eyes: the requester sees a withdraw form, never the approve one.
        "may_decide_writeoff": pending is not None
        and pending.requested_by_id != request.user.pk
        and request.user.has_perm("reconciliation.approve_writeoff"),
        "write_off_approve_form": forms.get("write_off_approve_form") or WriteOffApproveForm(),
        "write_off_reject_form": forms.get("write_off_reject_form") or WriteOffRejectForm(),
        "write_off_withdraw_form": forms.get("write_off_withdraw_form") or WriteOffWithdrawForm(),
        "contact_form": forms.get("contact_form") or ContactForm(),
        "reopen_form": forms.get("reopen_form") or ReopenForm(),
        "calendar_gaps": _calendar_gaps(calendar),
        "conflict": forms.get("conflict"),
    }
    return render(request, "reconciliation/item.html", context, status=status)


@login_required
@view_items
@require_GET
def item_detail(request, uid):
    return _render_item(request, _item_for(request.user, uid))


def _act(request, uid, *, form_name: str, make_form, do, done: str):
    """Validate a form, call a service, and either go back to the item with a message or show the form again
    with the service's message next to the field. A refused action changes nothing (services are atomic)."""
    item = _item_for(request.user, uid)
    form = make_form(item)
    if form.is_valid():
        try:
            do(item, form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        except services.NotAllowed as error:
            return _render_item(request, item, status=403, conflict=str(error), **{form_name: form})
        except services.ResolutionError as error:
            # The item's state does not allow this (often: someone else acted first). Said at the top of the page,
            # where it is seen even when the form no longer fits the item and is not shown.
            return _render_item(request, item, status=409, conflict=str(error), **{form_name: form})
        else:
            messages.success(request, done)
            return redirect("reconciliation:item", uid=item.uid)
    return _render_item(request, item, status=400, **{form_name: form})


@login_required
@view_items
@resolve_items
@require_POST
def item_assign(request, uid):
    def make_form(item):
        return AssignForm(
            request.POST, users=selectors.people_with_permission_for_item("reconciliation.resolve_reconitem", item)
        )

    def do(item, data):
        services.item_assign(item=item, assignee=data["assignee"], actor=request.user)

    return _act(request, uid, form_name="assign_form", make_form=make_form, do=do, done=_("Assignment saved."))


@login_required
@view_items
@resolve_items
@require_POST
def item_match_candidate(request, uid):
    def do(item, data):
        proposed = {c.get("ledger_entry") for c in item.candidates}
        entry = LedgerEntry.objects.filter(pk=data["ledger_entry"]).first()
        if entry is None or entry.pk not in proposed:
            raise services.ResolutionError(_("This ledger entry is not one of the item's candidates."))
        services.item_manual_match(item=item, ledger_entry=entry, reason=data["reason"], actor=request.user)

    return _act(
        request,
        uid,
        form_name="candidate_form",
        make_form=lambda item: CandidateMatchForm(request.POST),
        do=do,
        done=_("Matched by hand."),
    )


@login_required
@view_items
@resolve_items
@require_POST
def item_match(request, uid):
    def do(item, data):
        entry = LedgerEntry.objects.filter(channel=data["channel"], channel_ref=data["channel_ref"].strip()).first()
        if entry is None:
            raise ValidationError({"channel_ref": _("No ledger entry with this channel and order number.")})
        services.item_manual_match(item=item, ledger_entry=entry, reason=data["reason"], actor=request.user)

    return _act(
        request,
        uid,
        form_name="match_form",
        make_form=lambda item: ManualMatchForm(request.POST),
        do=do,
        done=_("Matched by hand."),
    )


@login_required
@view_items
@resolve_items
@require_POST
def item_request_refund(request, uid):
    return _act(
        request,
        uid,
        form_name="refund_form",
        make_form=lambda item: RefundRequestForm(request.POST),
        do=lambda item, data: services.item_request_refund(item=item, note=data["note"], actor=request.user),
        done=_("Refund requested."),
    )


@login_required
@view_items
@resolve_items
@require_POST
def item_refunded(request, uid):
    return _act(
        request,
        uid,
        form_name="refunded_form",
        make_form=lambda item: RefundedForm(request.POST),
        do=lambda item, data: services.item_mark_refunded(item=item, reference=data["reference"], actor=request.user),
        done=_("Refund recorded; the item is resolved."),
    )


@login_required
@view_items
@resolve_items
@require_POST
def item_write_off(request, uid):
    """Ask for a write-off; someone else who may approve write-offs decides it."""
    return _act(
        request,
        uid,
        form_name="write_off_form",
        make_form=lambda item: WriteOffForm(request.POST),
        do=lambda item, data: services.item_write_off_request(item=item, reason=data["reason"], actor=request.user),
        done=_("Write-off requested; it waits for approval by someone else."),
    )


approve_writeoffs = permission_required("reconciliation.approve_writeoff", raise_exception=True)


@login_required
@view_items
@approve_writeoffs
@require_POST
def item_write_off_approve(request, uid):
    return _act(
        request,
        uid,
        form_name="write_off_approve_form",
        make_form=lambda item: WriteOffApproveForm(request.POST),
        do=lambda item, data: services.item_write_off_approve(item=item, actor=request.user, note=data["note"]),
        done=_("Write-off approved; the item is closed."),
    )


@login_required
@view_items
@approve_writeoffs
@require_POST
def item_write_off_reject(request, uid):
    return _act(
        request,
        uid,
        form_name="write_off_reject_form",
        make_form=lambda item: WriteOffRejectForm(request.POST),
        do=lambda item, data: services.item_write_off_reject(item=item, actor=request.user, note=data["note"]),
        done=_("Write-off rejected; the item stays open."),
    )


@login_required
@view_items
@resolve_items
@require_POST
def item_write_off_withdraw(request, uid):
    return _act(
        request,
        uid,
        form_name="write_off_withdraw_form",
        make_form=lambda item: WriteOffWithdrawForm(request.POST),
        do=lambda item, data: services.item_write_off_withdraw(item=item, actor=request.user, note=data["note"]),
        done=_("Write-off request withdrawn."),
    )


@login_required
@view_items
@permission_required("reconciliation.contact_citizen", raise_exception=True)
@require_POST
def item_contact(request, uid):
    return _act(
        request,
        uid,
        form_name="contact_form",
        make_form=lambda item: ContactForm(request.POST),
        do=lambda item, data: services.item_record_contact(item=item, note=data["note"], actor=request.user),
        done=_("Contact with the citizen recorded."),
    )


@login_required
@view_items
@resolve_items
@require_POST
def item_reopen(request, uid):
    return _act(
        request,
        uid,
        form_name="reopen_form",
        make_form=lambda item: ReopenForm(request.POST),
        do=lambda item, data: services.item_reopen(item=item, reason=data["reason"], actor=request.user),
        done=_("Item reopened."),
    )


# --- The daily report -----------------------------------------------------------------------------------


def _report(day: date, user) -> dict:
    return selectors.day_report_for(day, user)


def _report_day(business_date: str | None) -> date:
    """The day a report address names (yesterday when it names none). An address that is not a date, or names a
    day outside the accepted window (core.inputs.date_problem), is not a page: 404."""
    if business_date is None:
        return _today() - timedelta(days=1)
    try:
        day = date.fromisoformat(business_date)
    except ValueError:
        raise Http404("not a date") from None
    if inputs.date_problem(day, today=_today()):
        raise Http404("not a business date")
    return day


@login_required
@view_items
@require_GET
def report(request, business_date: str | None = None):
    if business_date is None and request.GET.get("date"):
        # The date box: what cannot be shown is said, over yesterday's report.
        try:
            asked = date.fromisoformat(request.GET["date"])
        except ValueError:
            messages.error(request, _("Use a date as YYYY-MM-DD."))
        else:
            if problem := inputs.date_problem(asked, today=_today()):
                messages.error(request, problem)
            else:
                return redirect("reconciliation:report-day", business_date=asked)
    day = _report_day(business_date)
    data = _report(day, request.user)
    outcomes = [
        (value, label, data["outcomes"].get(value, 0), Decimal(data["amounts"].get(value, "0") or 0))
        for value, label in Outcome.choices
    ]
    run_years = data["run"].summary.get("unknown_calendar_years", []) if data["run"] else []
    context = {
        "day": day,
        # No link to a day the report would refuse (before the window's first day).
        "previous_day": None
        if inputs.date_problem(day - timedelta(days=1), today=_today())
        else day - timedelta(days=1),
        "next_day": day + timedelta(days=1) if day < _today() else None,
        "earliest_day": inputs.EARLIEST_DATE,
        "report": data,
        "outcome_rows": outcomes,
        "problem_count": sum(n for o, _l, n, _a in outcomes if o not in BENIGN_OUTCOMES),
        "problem_amount": sum((a for o, _l, _n, a in outcomes if o not in BENIGN_OUTCOMES), Decimal("0")),
        "kiosks": list(data["per_kiosk"].items())[:REPORT_KIOSKS],
        "kiosk_total": len(data["per_kiosk"]),
        "rates": selectors.match_rates_in_scope(day, kiosk_scope_for(request.user), CHART_DAYS),
        "runs": _runs_shown(day),
        "calendar_gaps": _calendar_gaps(None, *run_years),
        "scoped": not user_sees_all_regions(request.user),
    }
    return render(request, "reconciliation/report.html", context)


def _runs_shown(day: date) -> list[ReconciliationRun]:
    runs = list(ReconciliationRun.objects.filter(business_date=day).order_by("-started_at")[:5])
    for run in runs:
        run.error_shown, run.error_detail = _readable_error(run.error)
    return runs


# The console's downloads are for people: headers, outcomes and channels in words (exports.labelled_rows).
@login_required
@view_items
@require_GET
def report_csv(request, business_date: str):
    day = _report_day(business_date)
    response = HttpResponse(
        exports.report_csv(_report(day, request.user), labelled=True), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="reconciliation-{day}.csv"'
    return response


@login_required
@view_items
@require_GET
def report_xlsx(request, business_date: str):
    day = _report_day(business_date)
    response = HttpResponse(
        exports.report_xlsx(_report(day, request.user), labelled=True),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="reconciliation-{day}.xlsx"'
    return response


@login_required
@view_items
@permission_required("reconciliation.run_reconciliation", raise_exception=True)
@require_POST
def report_rerun(request, business_date: str):
    day = _report_day(business_date)
    tasks.reconcile_date.delay(day.isoformat(), trigger=f"console:{request.user.username}")
    messages.success(
        request, _("A reconcile run of %(date)s was queued; reload in a moment to see it.") % {"date": day}
    )
    return redirect("reconciliation:report-day", business_date=day.isoformat())


# --- The citizen lookup at the counter ------------------------------------------------------------------


def _lookup_page(request, query: str, *, form=None, contact_forms=None, status: int = 200):
    """Results for a query, each with a contact form when it has an item. An ID number typed in is searched
    (lookup hashes it as it was stored) but never written back into the page: the box is left empty."""
    results = lookup.find_payments(query, kiosk_scope=kiosk_scope_for(request.user)) if query else []
    contact_forms = contact_forms or {}
    for result in results:
        if result.item is not None:
            uid = result.item.uid
            result.contact_form = contact_forms.get(uid) or ContactForm(auto_id=f"id_{uid.hex}_%s")
    is_id_number = looks_like_id_number(query)
    if form is None:
        form = LookupForm(initial={"q": "" if is_id_number else query})
    context = {
        "form": form,
        "query": query,
        "query_shown": _("the ID number you typed") if is_id_number else query,
        "results": results,
    }
    return render(request, "reconciliation/lookup.html", context, status=status)


@login_required
@permission_required("reconciliation.lookup_payment", raise_exception=True)
@require_http_methods(["GET", "POST"])
def payment_lookup(request):
    """GET ?q= for links; the search box posts, so an ID number typed in stays out of URLs, history and logs."""
    data = request.POST if request.method == "POST" else request.GET
    if "q" not in data:
        return _lookup_page(request, "")
    form = LookupForm(data)
    if not form.is_valid():
        return _lookup_page(request, "", form=form, status=400)
    query = form.cleaned_data["q"].strip()
    response = _lookup_page(request, query)
    if looks_like_id_number(query):
        response["Cache-Control"] = "no-store"
    return response


def _lookup_query_for(item: ReconItem) -> str:
    """A number that finds the item again and is no personal data: the kiosk's receipt or the order number; empty
    when the line or entry is archived (its month moved out of the database)."""
    try:
        if item.journal_line_id:
            return item.journal_line.txn_id
        return item.ledger_entry.channel_ref
    except ObjectDoesNotExist:
        return ""


@login_required
@permission_required("reconciliation.lookup_payment", raise_exception=True)
@permission_required("reconciliation.contact_citizen", raise_exception=True)
@require_POST
def lookup_contact(request, uid):
    item = get_object_or_404(scoped_items(request.user), uid=uid)
    query = _lookup_query_for(item)
    form = ContactForm(request.POST, auto_id=f"id_{item.uid.hex}_%s")
    if form.is_valid():
        try:
            services.item_record_contact(item=item, note=form.cleaned_data["note"], actor=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Contact with the citizen recorded."))
            return redirect(f"{reverse('reconciliation:lookup')}?{urlencode({'q': query})}")
    return _lookup_page(request, query, contact_forms={item.uid: form}, status=400)


# --- Imports --------------------------------------------------------------------------------------------


def _may_import(user) -> bool:
    return user.has_perm("reconciliation.import_ledger") or user.has_perm("reconciliation.add_journalfile")


def _scoped_kiosks(user):
    return scope_kiosks(Kiosk.objects.filter(drill_of__isnull=True), user)  # a drill's stand-in keeps no journal


def _recent_journal_files(user) -> list[JournalFile]:
    files = list(
        JournalFile.objects.filter(kiosk__in=_scoped_kiosks(user))
        .select_related("kiosk", "uploaded_by")
        .defer("content", "rejections")
        .order_by("-received_at")[:RECENT_FILES]
    )
    for journal_file in files:
        journal_file.error_shown, journal_file.error_detail = _readable_error(journal_file.error)
    return files


def _render_imports(request, *, status: int = 200, **extra):
    user = request.user
    context = {
        "ledger_form": extra.pop("ledger_form", None) or LedgerImportForm(),
        "journal_form": extra.pop("journal_form", None) or JournalUploadForm(kiosks=_scoped_kiosks(user)),
        "ledger_files": (
            LedgerFile.objects.select_related("imported_by").defer("content").order_by("-imported_at")[:RECENT_FILES]
            if user.has_perm("reconciliation.view_ledgerfile") or user.has_perm("reconciliation.import_ledger")
            else None
        ),
        "journal_files": (
            _recent_journal_files(user)
            if user.has_perm("reconciliation.view_journalfile") or user.has_perm("reconciliation.add_journalfile")
            else None
        ),
        **extra,
    }
    return render(request, "reconciliation/imports.html", context, status=status)


@login_required
@require_GET
def imports(request):
    if not _may_import(request.user):
        raise PermissionDenied
    return _render_imports(request)


# Where in a ledger file a problem is, for the fields that are no column of the file (a column, 交易时间 or
# settled_at, is named as the file names it, and a canonical column with its meaning as well).
_LEDGER_PLACES = {
    "csv": gettext_lazy("the CSV layout"),
    "header": gettext_lazy("the header row"),
    "encoding": gettext_lazy("the text encoding"),
    "file": gettext_lazy("the file as a whole"),
    "format": gettext_lazy("the format"),
    "XML": gettext_lazy("the XML structure"),
}
_CANONICAL_COLUMNS = {
    "channel": gettext_lazy("channel"),
    "channel_ref": gettext_lazy("order number"),
    "settled_at": gettext_lazy("settled at"),
    "paid_at": gettext_lazy("paid at"),
    "amount": gettext_lazy("Amount"),
    "kiosk_serial": gettext_lazy("kiosk serial number"),
    "payer_ref": gettext_lazy("payer reference"),
    "service_code": gettext_lazy("service code"),
}


def _ledger_field(field: str) -> str:
    """“金额（amount）” for a canonical column, “表头” for the header row, 交易时间 as it is."""
    if field in _LEDGER_PLACES:
        return str(_LEDGER_PLACES[field])
    if field in _CANONICAL_COLUMNS:
        return _("%(meaning)s (%(column)s)") % {"meaning": _CANONICAL_COLUMNS[field], "column": field}
    return field


@login_required
@permission_required("reconciliation.import_ledger", raise_exception=True)
@require_POST
def import_ledger(request):
    form = LedgerImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_imports(request, status=400, ledger_form=form)
    upload = form.cleaned_data["file"]
    try:
        report = services.ledger_import(
            data=upload.read(), fmt=form.cleaned_data["format"], original_name=upload.name, actor=request.user
        )
    except LedgerFormatError as error:
        if error.line_no:
            message = _("Line %(line)s, field “%(field)s”: %(message)s. Nothing was imported.")
        else:
            message = _("The file, field “%(field)s”: %(message)s. Nothing was imported.")
        form.add_error(
            "file", message % {"line": error.line_no, "field": _ledger_field(error.field), "message": error.localized()}
        )
        return _render_imports(request, status=400, ledger_form=form)
    return _render_imports(request, ledger_report=report, ledger_name=upload.name)


@login_required
@permission_required("reconciliation.add_journalfile", raise_exception=True)
@require_POST
def import_journal(request):
    form = JournalUploadForm(request.POST, request.FILES, kiosks=_scoped_kiosks(request.user))
    if form.is_valid():
        # The same limits as a kiosk's upload: the journal's size, and the one window for business dates.
        limit = settings.KIOSKOPS["JOURNAL_MAX_BYTES"]
        if form.cleaned_data["file"].size > limit:
            form.add_error("file", _("The journal is over the %(limit)d-byte limit.") % {"limit": limit})
        if problem := inputs.date_problem(form.cleaned_data["business_date"]):
            form.add_error("business_date", problem)
    if not form.is_valid():
        return _render_imports(request, status=400, journal_form=form)
    report = services.journal_ingest(
        kiosk=form.cleaned_data["kiosk"],
        business_date=form.cleaned_data["business_date"],
        data=form.cleaned_data["file"].read(),
        uploaded_by=request.user,
    )
    return _render_imports(
        request,
        status=400 if report.rejected_file else 200,
        journal_report=report,
        journal_kiosk=form.cleaned_data["kiosk"],
    )
