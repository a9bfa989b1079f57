"""The work-order console: the list dispatchers and support work from, dispatch from an incident, and the order
page with its record, checklist, parts, photos, tests and sign-off. Thin views over workorders.selectors (reads)
and workorders.services (writes).

Every order is looked up through the user's region scope (selectors.order_for_user), so one of another region is
a 404 everywhere; the permission comes first, so a role that may only read gets 403 from every action. A refused
change answers 409 (the order's status does not allow it: someone acted first) or 400 (the input), says why at
the top of the page, and changes nothing (the services are atomic). The live pages re-render the partials the
page was built from; the browser only decides when to fetch.
"""

import io
import logging
from datetime import timedelta
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext, pgettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.validation import add_service_errors
from incidents import selectors as incident_selectors
from workorders import listing, selectors, services
from workorders.forms import AssignForm, CancelForm, CloseForm, ListFilterForm, NoteForm
from workorders.models import EventKind, Photo, Status, WorkOrder

log = logging.getLogger(__name__)

VIEW = "workorders.view_workorder"
DISPATCH = "workorders.dispatch_workorder"
GUIDE = "workorders.guide_workorder"
WORK = "workorders.work_workorder"
PAGE_SIZE = 50
THUMB_SIDE = 320
# A step that reached the server later than this after the phone recorded it was queued offline.
OFFLINE_AFTER = timedelta(minutes=2)

view_orders = permission_required(VIEW, raise_exception=True)
dispatch_orders = permission_required(DISPATCH, raise_exception=True)


# --- The list -------------------------------------------------------------------------------------------


def _list_context(request) -> dict:
    form = ListFilterForm(request.GET or None, user=request.user)
    filters = form.filters()
    now = timezone.now()
    page = Paginator(listing.orders_listed(request.user, filters, now), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "form": form,
        "filters": filters,
        "page": page,
        "counts": listing.counts(request.user, now),
        "query_without_page": query.urlencode(),
        "now": now,
    }


@login_required
@view_orders
@require_GET
def order_list(request):
    return render(request, "workorders/console/list.html", _list_context(request))


@login_required
@view_orders
@require_GET
def order_list_live(request):
    """The list's counts and rows as out-of-band fragments, for the live page to swap in."""
    return render(request, "workorders/console/_list_update.html", _list_context(request) | {"oob": True})


# --- Dispatch from an incident ----------------------------------------------------------------------------


@login_required
@dispatch_orders
@require_http_methods(["GET", "POST"])
def dispatch(request, incident_pk: int):
    """GET: what the order will carry (the incident, the kiosk, the likely causes) and the button that makes it.
    POST: make it; the order page then offers the suggested technicians. An incident that has an order being
    worked goes straight to that order."""
    incident = incident_selectors.incident_for_user(request.user, incident_pk)
    current = incident.work_orders.filter(status__in=WorkOrder.ACTIVE).first()
    if current is not None:
        messages.info(request, pgettext("work order", "This incident already has a work order being worked."))
        return redirect("workorders:detail", uid=current.uid)
    error = ""
    if request.method == "POST":
        try:
            order = services.work_order_create(incident=incident, actor=request.user)
        except ValidationError as exc:
            error = "；".join(exc.messages)
        else:
            messages.success(
                request,
                pgettext("work order", "Work order %(ref)s created: choose the technician.") % {"ref": order.reference},
            )
            return redirect("workorders:detail", uid=order.uid)
    context = {"incident": incident, "causes": _likely_causes(incident), "error": error}
    return render(request, "workorders/console/dispatch.html", context, status=409 if error else 200)


def _likely_causes(incident) -> list:
    from incidents import diagnosis

    try:
        with transaction.atomic():
            return list(diagnosis.likely_causes(incident) or [])[:3]
    except Exception:  # noqa: BLE001 — the dispatch page works without the diagnosis
        log.exception("likely causes of incident %s failed", incident.pk)
        return []


# --- The order page ---------------------------------------------------------------------------------------


def _order(request, uid):
    return selectors.order_for_user(request.user, uid)


def _suggestions(order) -> list[dict]:
    try:
        with transaction.atomic():
            return list(selectors.technician_suggestions(order=order))
    except Exception:  # noqa: BLE001 — the page still shows the order (and the API assigns by username)
        log.exception("technician suggestions for %s failed", order.pk)
        return []


def _bundle(order) -> dict:
    try:
        with transaction.atomic():
            return selectors.order_offline_bundle(order) or {}
    except Exception:  # noqa: BLE001 — the order page works without the phone's bundle
        log.exception("offline bundle of %s failed", order.pk)
        return {}


def _required_checks(order) -> list[dict]:
    from workorders.models import FunctionalTest

    try:
        checks = list(services.required_checks(order.kiosk))
    except Exception:  # noqa: BLE001
        log.exception("required checks of %s failed", order.pk)
        checks = []
    done = {t.check_name: t for t in order.tests.all()}
    labels = dict(FunctionalTest.Check.choices)
    names = list(dict.fromkeys([*checks, *done]))
    return [{"check": c, "label": labels.get(c, c), "required": c in checks, "test": done.get(c)} for c in names]


def _events(order) -> list:
    """The order's log, newest first; a step the phone recorded well before it reached the server (queued offline)
    says when it was recorded."""
    events = list(order.events.select_related("actor").order_by("-at", "-id"))
    for event in events:
        late = event.recorded_at and (event.at - event.recorded_at) > OFFLINE_AFTER
        event.offline_at = event.recorded_at if late else None
    return events


def _live_context(request, order) -> dict:
    user = request.user
    may_dispatch = services.can_dispatch(user, order)
    reassignable = order.status in services.REASSIGNABLE
    events = _events(order)
    return {
        "order": order,
        "incident": order.incident,
        "events": events,
        "checklist": list(order.checklist.select_related("done_by").order_by("position")),
        "parts": list(order.parts.select_related("recorded_by")),
        "photos": list(order.photos.select_related("taken_by")),
        "checks": _required_checks(order),
        "self_tests": list(order.self_tests.select_related("command", "requested_by").order_by("-requested_at")),
        # What support, the dispatcher and the technician wrote to each other, newest first.
        "notes": [event for event in events if event.kind == EventKind.NOTE][:50],
        "may_dispatch": may_dispatch,
        "may_note": services.can_note(user, order) and order.is_active,
        "may_assign": may_dispatch and reassignable,
        "may_cancel": may_dispatch and order.is_active,
        "may_close": may_dispatch
        and order.status in (Status.ON_SITE, Status.WORK_DONE, Status.VERIFIED, Status.SIGNED_OFF),
        # The technician at the kiosk, or support and the dispatcher remotely (the service's rule).
        "may_self_test": services.can_note(user, order)
        and order.status in (Status.ON_SITE, Status.WORK_DONE, Status.VERIFIED),
        "suggestions": _suggestions(order) if may_dispatch and reassignable else [],
        "assign_form": AssignForm(),
        "cancel_form": CancelForm(),
        "close_form": CloseForm(),
        "note_form": NoteForm(),
        "now": timezone.now(),
        "overdue": bool(order.due_at and order.status in listing.BEFORE_ARRIVAL and order.due_at < timezone.now()),
    }


def _render_order(request, order, *, status: int = 200, conflict: str = "", bound: dict | None = None):
    bound = bound or {}
    context = _live_context(request, order)
    context.update(
        bundle=_bundle(order),
        conflict=conflict,
        **{name: form for name, form in bound.items() if form is not None},
    )
    return render(request, "workorders/console/detail.html", context, status=status)


@login_required
@view_orders
@require_GET
def detail(request, uid):
    return _render_order(request, _order(request, uid))


@login_required
@view_orders
@require_GET
def detail_live(request, uid):
    """Out-of-band fragments of the order page that change as it is worked."""
    order = _order(request, uid)
    return render(request, "workorders/console/_detail_update.html", _live_context(request, order) | {"oob": True})


def _conflict_text(order, error: ValidationError) -> str:
    order.refresh_from_db(fields=["status", "version"])
    text = pgettext("work order", "This work order is now “%(status)s”.") % {"status": order.get_status_display()}
    reasons = [gettext(m) for m in error.messages]
    return f"{text} {'；'.join(reasons)}" if reasons else text


def _act(request, uid, *, form_name: str | None, form_class, do, done: str):
    """Validate a form, call a service, and either go back to the order with a message or show the page again with
    the reason: 409 when the order's status refuses the change, 400 for the input."""
    order = _order(request, uid)
    form = form_class(request.POST) if form_class else None
    bound = {form_name: form} if form_name else {}
    if form is None or form.is_valid():
        try:
            do(order, form.cleaned_data if form else {})
        except ValidationError as error:
            if not hasattr(error, "error_dict"):
                return _render_order(request, order, status=409, conflict=_conflict_text(order, error), bound=bound)
            if form is None:
                return _render_order(request, order, status=400, conflict="；".join(error.messages))
            add_service_errors(form, error, getattr(form, "SERVICE_FIELDS", None))
        else:
            messages.success(request, done)
            return redirect("workorders:detail", uid=order.uid)
    return _render_order(request, order, status=400, bound=bound)


def order_action(*permissions):
    """A POST on an order by someone logged in who may see orders and holds one of `permissions` (403 otherwise)."""

    def decorate(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not any(request.user.has_perm(p) for p in permissions):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(view_orders(require_POST(guarded)))

    return decorate


@order_action(DISPATCH)
def assign(request, uid):
    def do(order, data):
        assignee = get_user_model().objects.filter(username=data["assignee"], is_active=True).first()
        if assignee is None:
            raise ValidationError({"assignee": pgettext("work order", "No such person.")})
        services.work_order_assign(order=order, actor=request.user, assignee=assignee)

    return _act(
        request,
        uid,
        form_name="assign_form",
        form_class=AssignForm,
        do=do,
        done=pgettext("work order", "Technician assigned."),
    )


@order_action(DISPATCH)
def cancel(request, uid):
    return _act(
        request,
        uid,
        form_name="cancel_form",
        form_class=CancelForm,
        do=lambda order, data: services.work_order_cancel(order=order, actor=request.user, reason=data["reason"]),
        done=pgettext("work order", "Work order cancelled."),
    )


@order_action(DISPATCH)
def close(request, uid):
    return _act(
        request,
        uid,
        form_name="close_form",
        form_class=CloseForm,
        do=lambda order, data: services.work_order_close(
            order=order, actor=request.user, override_reason=data["override_reason"]
        ),
        done=pgettext("work order", "Work order closed."),
    )


@order_action(DISPATCH, GUIDE, WORK)
def note(request, uid):
    return _act(
        request,
        uid,
        form_name="note_form",
        form_class=NoteForm,
        do=lambda order, data: services.work_order_note(order=order, actor=request.user, text=data["text"]),
        done=pgettext("work order", "Note added; the technician sees it on the phone."),
    )


@order_action(WORK, GUIDE, DISPATCH)
def self_test(request, uid):
    return _act(
        request,
        uid,
        form_name=None,
        form_class=None,
        do=lambda order, data: services.work_order_request_self_test(order=order, actor=request.user),
        done=pgettext("work order", "Self-test queued; it goes out with the kiosk's next heartbeat."),
    )


# --- Files: photos and the signature, to those who may see the order ------------------------------------------


def _private(response):
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@view_orders
@require_GET
def photo(request, uid, photo_id: int):
    """A photo of the order (`?size=thumb`: a small JPEG for the page). The files are never public."""
    order = _order(request, uid)
    item = get_object_or_404(Photo.objects.filter(order=order), pk=photo_id)
    try:
        handle = item.file.open("rb")
    except OSError as error:
        raise Http404 from error
    if request.GET.get("size") != "thumb":
        return _private(FileResponse(handle, filename=item.file.name.rsplit("/", 1)[-1]))
    from PIL import Image

    with handle, Image.open(handle) as image:
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=80)
    return _private(HttpResponse(out.getvalue(), content_type="image/jpeg"))


@login_required
@view_orders
@require_GET
def signature(request, uid):
    """The hall staff's signature image of the sign-off."""
    order = _order(request, uid)
    if not order.signoff_signature:
        raise Http404
    try:
        handle = order.signoff_signature.open("rb")
    except OSError as error:
        raise Http404 from error
    return _private(FileResponse(handle, content_type="image/png"))
