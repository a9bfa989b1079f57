"""The technician's inspections on the phone, under /inspections/m/: today's list (overdue first) and one
inspection's checklist — pass or fail and a note per check, then done. Every change goes through the phone's
queue (static/workorders/queue.js, its own IndexedDB store) to POST /api/v1/inspections/sync/, offline or not;
these views only read."""

import hashlib
import json
from functools import cache

from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.staticfiles import finders
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from inspections import selectors
from inspections.models import Mode, Result, Status

DO = "inspections.do_inspection"
QUEUE_DB = "kioskops-inspections"


def _strings() -> dict:
    return {
        "pending": pgettext("phone", "%(n)s changes waiting to sync"),
        "syncing": pgettext("phone", "Sending %(n)s changes…"),
        "synced": pgettext("phone", "All changes synced"),
        "waiting": pgettext("phone", "waiting to sync"),
        "not_applied": pgettext("phone", "Not applied"),
        "refused": pgettext("phone", "Refused"),
        "dismiss": pgettext("phone", "Dismiss"),
        "login": pgettext("phone", "You are logged out: log in again to send the waiting changes."),
        "note_needed": pgettext("inspection phone", "Say what failed before recording a failure."),
        "results": {Result.PASS: str(Result.PASS.label), Result.FAIL: str(Result.FAIL.label)},
    }


def _context() -> dict:
    return {
        "strings": _strings(),
        "sync_url": reverse("inspections-sync"),
        "queue_db": QUEUE_DB,
        "sw_url": reverse("inspections:phone-sw"),
        "sw_scope": reverse("inspections:phone-list"),
        "pages_cache": PAGES_CACHE,
    }


# The phone's offline copy (the work orders' service worker template, with this app's scope, assets and caches).
SW_ASSETS = ("inspections/phone.css", "workorders/queue.js", "inspections/phone.js")
PAGES_CACHE = "kioskops-inspections-pages-v1"


@cache
def sw_version() -> str:
    """A short hash of the inspection phone's assets: the asset cache's name changes when any of them does."""
    digest = hashlib.sha256()
    for name in SW_ASSETS:
        path = finders.find(name)
        if path:
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:12]


@require_GET
def service_worker(request):
    """The inspection pages' service worker, served from /inspections/m/ so that its scope covers them: pages
    network first with the last copy when there is no signal, assets from a versioned cache of their own."""
    context = {
        "version": sw_version(),
        "assets_json": json.dumps([static(name) for name in SW_ASSETS]),
        "assets_prefix": "kioskops-inspections-assets-",
        "pages_cache": PAGES_CACHE,
        "home": reverse("inspections:phone-list"),
        "scope": reverse("inspections:phone-list"),
    }
    response = HttpResponse(
        render_to_string("workorders/phone/sw.js", context), content_type="text/javascript; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = context["scope"]
    return response


@login_required
@permission_required(DO, raise_exception=True)
@require_GET
def my_inspections(request):
    now = timezone.now()
    rows = selectors.inspections_for_technician(request.user, now=now)
    return render(request, "inspections/phone/list.html", {"inspections": rows, "now": now, **_context()})


@login_required
@permission_required(DO, raise_exception=True)
@require_GET
def inspection_page(request, uid):
    inspection = selectors.inspection_for_user(request.user, uid)
    if inspection.assignee_id not in (None, request.user.pk):
        raise Http404
    results = {r.check_key: r for r in inspection.results.all()}
    checks = [
        {"check": check, "result": results.get(check.key), "remote": check.mode == Mode.REMOTE}
        for check in inspection.template.checks.all()
    ]
    return render(
        request,
        "inspections/phone/inspection.html",
        {
            "inspection": inspection,
            "checks": checks,
            "open": inspection.status != Status.DONE and timezone.now() < inspection.period_ends_at,
            **_context(),
        },
    )
