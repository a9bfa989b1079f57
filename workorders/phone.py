"""The field technician's phone pages: my orders, one order with everything needed at the kiosk, its photos, and
the service worker that keeps them working with no signal.

Every change a technician makes on these pages goes through the phone's queue (static/workorders/queue.js) to
the sync API (workorders/api/sync.py), offline or not, so there is one path for a change whatever the signal.
These views only read. An order outside the reader's reach is a 404, whoever asks: a technician sees the orders
assigned to them; dispatchers and technical support the orders of their regions."""

import hashlib
import io
import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from PIL import Image, UnidentifiedImageError

from incidents.models import State as IncidentState
from workorders import selectors, services
from workorders.models import EventKind, FunctionalTest, Photo, SelfTest, Status, TechnicianProfile, WorkOrder

VIEW = "workorders.view_workorder"
# Who may open any order of their regions on these pages; everyone else only the orders assigned to them.
OVERSEE = ("workorders.dispatch_workorder", "workorders.guide_workorder")

# The phone's own files, cached by the service worker; their content names the cache (a new file, a new cache).
ASSETS = ("workorders/phone.css", "workorders/queue.js", "workorders/phone.js")
SW_TEMPLATE = "workorders/phone/sw.js"
# Pages and photos the technician opened, kept across new versions of the assets (a deploy must not take away the
# order they are standing at the kiosk with); its name changes only if what it holds changes shape.
PAGES_CACHE = "kioskops-phone-pages-v1"
THUMB_SIDE = 320

view_orders = permission_required(VIEW, raise_exception=True)


@cache
def asset_version() -> str:
    """A short hash of the phone's assets and the service worker: the cache name changes when any of them does."""
    digest = hashlib.sha256()
    for name in ASSETS:
        path = finders.find(name)
        if path:
            with open(path, "rb") as handle:
                digest.update(handle.read())
    for directory in settings.TEMPLATES[0]["DIRS"]:
        candidate = Path(directory) / SW_TEMPLATE
        if candidate.exists():
            digest.update(candidate.read_bytes())
    return digest.hexdigest()[:12]


def _order(request, uid) -> WorkOrder:
    order = selectors.order_for_user(request.user, uid)
    if order.assignee_id != request.user.pk and not any(request.user.has_perm(p) for p in OVERSEE):
        raise Http404
    return order


def _strings() -> dict:
    """The words the phone's scripts show, in the reader's language (the scripts hold no text of their own)."""
    return {
        "pending": pgettext("phone", "%(n)s changes waiting to sync"),
        "syncing": pgettext("phone", "Sending %(n)s changes…"),
        "synced": pgettext("phone", "All changes synced"),
        "waiting": pgettext("phone", "waiting to sync"),
        "not_applied": pgettext("phone", "Not applied"),
        "refused": pgettext("phone", "Refused"),
        "dismiss": pgettext("phone", "Dismiss"),
        "login": pgettext("phone", "You are logged out: log in again to send the waiting changes."),
        "no_barcode": pgettext(
            "phone", "This phone cannot read QR codes in the browser: type the serial on the sticker."
        ),
        "scan_found": pgettext("phone", "Sticker read: %(value)s"),
        "scan_none": pgettext("phone", "No QR code found in the photo: try again closer, or type the serial."),
        "sign_first": pgettext("phone", "Ask the staff member to sign first."),
        "photo_bad": pgettext("phone", "This photo could not be read."),
        "km_here": pgettext("phone", "%(km)s km from here"),
        "online_only": pgettext("phone", "Needs a connection: the kiosk answers through the server."),
        "self_test_requested": pgettext("phone", "Self-test requested; waiting for the kiosk…"),
        "statuses": {value: str(label) for value, label in Status.choices},
        "kinds": {
            "accept": pgettext("phone action", "Accept"),
            "refuse": pgettext("phone action", "Refuse"),
            "depart": pgettext("phone action", "On my way"),
            "check_in": pgettext("phone action", "Check in"),
            "check_out": pgettext("phone action", "Check out"),
            "checklist": pgettext("phone action", "Checklist step"),
            "note": pgettext("phone action", "Note"),
            "part": pgettext("phone action", "Part used"),
            "photo": pgettext("phone action", "Photo"),
            "test": pgettext("phone action", "Functional test"),
            "done": pgettext("phone action", "Repair done"),
            "sign_off": pgettext("phone action", "Sign-off"),
            "self_test": pgettext("phone action", "Self-test"),
        },
    }


def _phone_context(request) -> dict:
    return {
        "strings": _strings(),
        "asset_version": asset_version(),
        "pages_cache": PAGES_CACHE,
        "sw_url": reverse("workorders:phone-sw"),
        "sw_scope": reverse("workorders:phone-orders"),
        "sync_url": reverse("workorders-sync"),
    }


@login_required
@view_orders
@require_GET
def my_orders(request):
    """The technician's orders: today's and overdue first, each with its hall, distance and due time."""
    now = timezone.now()
    orders = selectors.orders_for_technician(request.user, now=now)
    base = TechnicianProfile.objects.filter(user=request.user).values("base_latitude", "base_longitude").first()
    today = timezone.localdate(now)
    for order in orders:
        order.distance_km = (
            selectors.distance_km(
                base["base_latitude"], base["base_longitude"], order.site.latitude, order.site.longitude
            )
            if base
            else None
        )
        order.overdue = order.due_at is not None and order.due_at < now
        order.due_today = order.due_at is not None and timezone.localdate(order.due_at) == today
    context = {"orders": orders, "now": now, **_phone_context(request)}
    return render(request, "workorders/phone/list.html", context)


@login_required
@view_orders
@require_GET
def order_page(request, uid):
    """One order with everything needed at the kiosk, offline too (the service worker keeps the last copy)."""
    order = _order(request, uid)
    bundle = selectors.order_offline_bundle(order)
    for row in bundle["history"]:
        row["state_label"] = IncidentState(row["state"]).label if row["state"] in IncidentState.values else ""
    required = services.required_checks(order.kiosk)
    checks = [
        {"key": check, "label": label, "required": check in required, "test": bundle["tests"].get(check)}
        for check, label in FunctionalTest.Check.choices
        if check in required or check in bundle["tests"]
    ]
    latest_self_test = bundle["self_tests"][0] if bundle["self_tests"] else None
    context = {
        "order": order,
        "bundle": bundle,
        "Status": Status,
        "checks": checks,
        "notes": [event for event in bundle["events"] if event.kind == EventKind.NOTE][::-1],
        "latest_self_test": latest_self_test,
        "self_test_pending": latest_self_test is not None and latest_self_test.passed is None,
        "gate_missing": services.test_gate(order)[1] if order.status == Status.WORK_DONE else [],
        "photo_upload_url": reverse("workorders-photo-upload", kwargs={"uid": order.uid}),
        "state_url": reverse("workorders:phone-state", kwargs={"uid": order.uid}),
        **_phone_context(request),
    }
    return render(request, "workorders/phone/order.html", context)


@login_required
@view_orders
@require_GET
@never_cache
def order_state(request, uid):
    """What the page polls while a self-test runs: the order's status and version and the latest self-test."""
    order = _order(request, uid)
    latest = SelfTest.objects.filter(order=order).order_by("-requested_at").first()
    return JsonResponse(
        {
            "uid": str(order.uid),
            "status": order.status,
            "status_label": str(order.get_status_display()),
            "version": order.version,
            "self_test": None
            if latest is None
            else {
                "requested_at": latest.requested_at.isoformat(),
                "passed": latest.passed,
                "detail": latest.detail,
                "finished": latest.finished_at is not None,
            },
        }
    )


@login_required
@view_orders
@require_GET
def photo(request, uid, photo_id: int):
    """A photo of the order, to those who may see the order; `?size=thumb` for a small copy for the list."""
    order = _order(request, uid)
    item = get_object_or_404(Photo.objects.filter(order=order), pk=photo_id)
    try:
        handle = item.file.open("rb")
    except OSError as error:
        raise Http404 from error
    if request.GET.get("size") == "thumb":
        try:
            with handle, Image.open(handle) as image:
                image.thumbnail((THUMB_SIDE, THUMB_SIDE))
                out = io.BytesIO()
                image.convert("RGB").save(out, format="JPEG", quality=75)
        except (UnidentifiedImageError, OSError) as error:
            raise Http404 from error
        response = HttpResponse(out.getvalue(), content_type="image/jpeg")
    else:
        response = FileResponse(handle, content_type="image/jpeg")
    # Private: a shared cache must not keep a photo only the order's people may see.
    response["Cache-Control"] = "private, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def service_worker(request):
    """The phone pages' service worker, served from /workorders/m/ so that its scope covers them."""
    context = {
        "version": asset_version(),
        "assets_json": json.dumps([static(name) for name in ASSETS]),
        "pages_cache": PAGES_CACHE,
        "home": reverse("workorders:phone-orders"),
        "scope": reverse("workorders:phone-orders"),
    }
    response = HttpResponse(render_to_string(SW_TEMPLATE, context), content_type="text/javascript; charset=utf-8")
    # The browser checks for a new worker on each visit; a cached one would pin old assets for a day.
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = context["scope"]
    return response
