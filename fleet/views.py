"""The fleet-health console: thin views over fleet.selectors (reads) and fleet.services (writes).

Every kiosk is looked up through the user's region scope, so a kiosk of another region is a 404 everywhere.
Live updates re-render the same partial templates the pages use; the browser only decides what to fetch.
"""

from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.validation import add_service_errors
from fleet import hallmap, selectors, services
from fleet.forms import BoardFilterForm, CommandForm, MaintenanceForm, ProvisionForm
from fleet.models import Kiosk
from fleet.vocabulary import Component, ComponentState, state_class

# The token of a just provisioned or rotated kiosk waits here until the kiosk page shows it, once.
FRESH_TOKEN_SESSION_KEY = "kioskops.fresh_token.{serial}"

view_fleet = permission_required("fleet.view_kiosk", raise_exception=True)


# --- The board ------------------------------------------------------------------------------------------


def _board_filters(request) -> tuple[BoardFilterForm, selectors.BoardFilters]:
    form = BoardFilterForm(
        request.GET or None,
        regions=list(selectors.regions_for_user(request.user)),
        sites=list(selectors.sites_for_user(request.user)),
    )
    # An out-of-scope or unknown value is dropped (and shown as an error), never used.
    form.is_valid()
    cleaned = getattr(form, "cleaned_data", {})
    filters = selectors.BoardFilters(**{name: cleaned.get(name) or "" for name in form.fields})
    return form, filters


def _problems_page(request) -> int:
    raw = request.GET.get("page", "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 7 else 1


# Parameters of the board's own links and live updates, never carried into a filter link.
_NOT_FILTERS = ("page", "serials", "shown", "all")


def _query_without(request, *names: str) -> str:
    """The board's filter query string without these parameters (nor the page and the live update's own ones)."""
    query = request.GET.copy()
    for key in (*names, *_NOT_FILTERS):
        query.pop(key, None)
    return query.urlencode()


# The map's colours, worst first, as its legend names them.
MAP_LEGEND = [
    (selectors.FRAUD, selectors.BOARD_ALARMS[selectors.FRAUD]),
    ("offline", Kiosk.Status.OFFLINE.label),
    ("degraded", Kiosk.Status.DEGRADED.label),
    (selectors.FLAPPING, selectors.BOARD_ALARMS[selectors.FLAPPING]),
    ("maintenance", Kiosk.Status.MAINTENANCE.label),
    ("online", Kiosk.Status.ONLINE.label),
]

# The words every problem row repeats, translated once per page rather than once per row.
ROW_WORDS = {
    "fraud": selectors.BOARD_ALARMS[selectors.FRAUD],
    "flapping": selectors.BOARD_ALARMS[selectors.FLAPPING],
    "silent": gettext_lazy("No heartbeat"),
    "since": gettext_lazy("Status since"),
    "seen": gettext_lazy("Last heartbeat"),
    "never": gettext_lazy("never reported"),
    "hall_open": gettext_lazy("Hall open"),
    "hall_closed": gettext_lazy("Hall closed"),
}

# How static/console/ages.js words a moment's age ("3 分钟前"), every few seconds, without asking the server.
AGE_WORDS = {
    "now": gettext_lazy("just now"),
    "s": gettext_lazy("{n} s ago"),
    "m": gettext_lazy("{n} min ago"),
    "h": gettext_lazy("{n} h ago"),
    "d": gettext_lazy("{n} d ago"),
}


def _epoch_ms() -> int:
    return int(timezone.now().timestamp() * 1000)


def _link_prefix(query: str) -> str:
    """The start of a link that adds one more parameter to ``query``: "?" or "?region=x&"."""
    return f"?{query}&" if query else "?"


def _counts_title(name: str, counts: selectors.BoardCounts) -> str:
    """A hall's tooltip on the map: its name and its kiosks per status, in the reader's language."""
    parts = [f"{label} {n}" for _status, label, n in counts.ordered() if n]
    parts += [f"{label} {n}" for _alarm, label, n in counts.alarms() if n]
    return f"{name}: {' · '.join(parts)}" if parts else f"{name}: {_('no kiosks')}"


def _hall_map(overview: selectors.BoardOverview, request) -> dict:
    base = _query_without(request, "site", "region")
    points = [
        hallmap.HallPoint(
            code=hall.site.code,
            latitude=hall.site.latitude,
            longitude=hall.site.longitude,
            health=hall.counts.worst,
            kiosks=hall.counts.total,
            title=_counts_title(f"{hall.site.name} ({hall.site.region.name})", hall.counts),
            href="?" + "&".join(filter(None, [base, f"site={hall.site.code}"])),
        )
        for hall in overview.halls
    ]
    return {
        "svg": hallmap.render(points, label=_("Map of the service halls, coloured by the health of their kiosks")),
        "unplaced": sum(1 for p in points if p.latitude is None or p.longitude is None),
    }


def _board_context(request, form, filters) -> dict:
    now = timezone.localtime()
    overview = selectors.board_overview(request.user, filters)
    hall_link = _link_prefix(_query_without(request, "status", "site"))
    for hall in overview.halls:
        hall.is_open = hall.site.is_open_at(now)
        # What its row prints, worked out here: 200 rows render noticeably faster from plain values.
        hall.row = {
            "code": hall.site.code,
            "name": hall.site.name,
            "region_name": hall.site.region.name,
            "is_open": hall.is_open,
            "healthy_n": hall.counts.healthy,
            "link": f"{hall_link}site={hall.site.code}",
            "worst": hall.counts.worst or "empty",
            "others": hall.counts.others(),
            "healthy": ngettext("%(n)s kiosk working", "%(n)s kiosks working", hall.counts.healthy)
            % {"n": hall.counts.healthy},
        }
    return {
        "form": form,
        "filters": filters,
        "overview": overview,
        "counts": overview.totals,
        "hall_map": None if filters.site else _hall_map(overview, request),
        "statuses": selectors.BOARD_STATUS_ORDER,
        "language": get_language() or settings.LANGUAGE_CODE,
        "query_without_status": _query_without(request, "status"),
        "query_for_summary": _query_without(request, "status", "region", "site"),
        "query_for_page": _query_without(request),
        "map_legend": MAP_LEGEND,
        "words": {key: str(words) for key, words in ROW_WORDS.items()},
        "age_words": {key: str(words) for key, words in AGE_WORDS.items()} | {"server_now": _epoch_ms()},
    }


def _site_tiles(request, filters) -> list[dict] | None:
    """One hall's kiosks, one tile each, when the board is narrowed to a hall: a hall is small enough to show whole."""
    if not filters.site:
        return None
    now = timezone.localtime()
    sites = []
    kiosks = selectors.board_kiosks(request.user, filters)
    catalog = selectors.error_catalog(kiosks)
    for kiosk in kiosks:
        kiosk.board_errors = [(code, catalog.get(code)) for code in dict.fromkeys(kiosk.error_codes or [])]
        if not sites or sites[-1]["site"].pk != kiosk.site_id:
            sites.append({"site": kiosk.site, "is_open": kiosk.site.is_open_at(now), "kiosks": []})
        sites[-1]["kiosks"].append(kiosk)
    return sites


def _problem_page(request, filters, overview) -> selectors.ProblemPage:
    page = selectors.board_problems(request.user, filters, page=_problems_page(request), total=overview.problems)
    page.rows = _problem_rows(page.problems)
    return page


def _moment(value) -> dict | None:
    """A moment as the board's rows show it: ISO for ages.js, and the exact local time for the tooltip."""
    if value is None:
        return None
    local = timezone.localtime(value)
    return {
        "iso": local.isoformat(),
        "exact": local.strftime("%Y-%m-%d %H:%M:%S"),
        "short": local.strftime("%m-%d %H:%M"),
    }


# Fraud first, then faults, then warnings: the order a row lists its unhealthy components in (as tiles do).
_CHIP_ORDER = {"fraud": 0, "fault": 1, "warning": 2}


def _problem_rows(problems: list[selectors.BoardProblem]) -> list[dict]:
    """The problem rows ready to print: labels looked up here, once per page rather than once per row, so that
    a page of 200 rows renders quickly."""
    language = get_language() or settings.LANGUAGE_CODE
    unlisted = _("Unlisted error code")
    names = {value: str(label) for value, label in Component.choices}
    states = {value: str(label) for value, label in ComponentState.choices}
    url = reverse("fleet:kiosk", args=["SERIAL"]).replace("SERIAL", "{}")
    rows = []
    for problem in problems:
        kiosk = problem.kiosk
        chips = [
            {
                "name": name,
                "state": state,
                "css": css,
                "label": names.get(name, name),
                "state_label": states.get(state, state),
            }
            for name, state in (kiosk.components or {}).items()
            if (css := state_class(state)) != "ok"
        ]
        chips.sort(key=lambda chip: (_CHIP_ORDER[chip["css"]], chip["label"]))
        site = kiosk.site
        rows.append(
            {
                "serial": kiosk.serial,
                "drill": kiosk.drill_of_id is not None,
                "status": kiosk.status,
                "status_label": kiosk.get_status_display(),
                "is_flapping": kiosk.is_flapping,
                "rank": problem.rank,
                "sort_key": problem.sort_key,
                "has_fraud": problem.has_fraud,
                "url": url.format(quote(kiosk.serial, safe="")),
                "site_code": site.code,
                "site_name": site.name,
                "region_name": site.region.name,
                "components": chips,
                "errors": [(code, entry.title(language) if entry else unlisted) for code, entry in problem.errors],
                "metrics": problem.metrics,
                "annotations": problem.annotations,
                "since": _moment(kiosk.status_changed_at),
                "seen": _moment(kiosk.last_seen_at),
            }
        )
    return rows


@login_required
@view_fleet
@require_GET
def board(request):
    """The fleet at a glance, at any size: counts per district and status first, then the problems worst first,
    then the halls (their healthy kiosks counted, not drawn) beside a map of them; one hall's kiosks as tiles."""
    form, filters = _board_filters(request)
    context = _board_context(request, form, filters)
    context |= {
        "problems": _problem_page(request, filters, context["overview"]),
        "sites": _site_tiles(request, filters),
        "ingest_lag": selectors.heartbeat_ingest_lag(),
        "ingest_problems": selectors.heartbeat_ingest_problems(),
    }
    return render(request, "fleet/board.html", context)


def _shown_keys(request) -> dict[str, str]:
    """The changed kiosks the page lists as problems, with the sort key it shows them under ("serial~key")."""
    shown = {}
    for item in request.GET.get("shown", "").split(",")[:500]:
        serial, tilde, key = item.rpartition("~")
        if tilde and serial:
            shown[serial] = key
    return shown


@login_required
@view_fleet
@require_GET
def board_tiles(request):
    """Out-of-band fragments for the live board, after the socket named kiosks that changed: the counts, the map
    and the rows of their halls always; the problem rows of those kiosks when each stays where it was in the list,
    or else the whole problem list (a kiosk became a problem or stopped being one, or its rank or age changed);
    the hall's tiles when the board shows one hall. ``all=1`` (back after a break) sends everything."""
    form, filters = _board_filters(request)
    serials = [s for s in request.GET.get("serials", "").split(",") if s][:500]
    context = _board_context(request, form, filters) | {"oob": True, "sites": _site_tiles(request, filters)}
    if request.GET.get("all") == "1" or not serials:
        context["problems"] = _problem_page(request, filters, context["overview"])
        return render(request, "fleet/_board_update.html", context)
    shown = _shown_keys(request)
    changed = {k.serial: k for k in selectors.board_kiosks(request.user, filters, serials=serials)}
    if not (filters.status or filters.component):
        # Only the halls of the changed kiosks have new counts; under a status or component filter a kiosk may
        # also leave the board, and its hall is not known any more: then the whole list is sent.
        sites = {kiosk.site_id for kiosk in changed.values()}
        context["hall_rows"] = [hall for hall in context["overview"].halls if hall.site.pk in sites]
    rows = []
    for serial in serials:
        kiosk = changed.get(serial)
        key = selectors.problem_sort_key(kiosk) if kiosk and selectors.kiosk_is_problem(kiosk) else None
        if key != shown.get(serial):
            context["problems"] = _problem_page(request, filters, context["overview"])
            break
        if key is not None:
            rows.append(kiosk)
    else:
        context["problem_rows"] = _problem_rows(selectors.board_problems_of(rows))
    return render(request, "fleet/_board_update.html", context)


@login_required
@permission_required("fleet.view_heartbeatdeadletter", raise_exception=True)
@require_GET
def dead_letters(request):
    """The heartbeats the board warns were set aside, with their errors, for the people who act on the warning
    (Django's admin is for staff only)."""
    letters, total = selectors.heartbeat_dead_letters(request.user)
    return render(request, "fleet/dead_letters.html", {"letters": letters, "total": total})


# --- The kiosk page -------------------------------------------------------------------------------------


def _live_context(kiosk) -> dict:
    return {
        "kiosk": kiosk,
        "commands": selectors.kiosk_commands(kiosk),
        "timeline": selectors.kiosk_timeline(kiosk),
    }


def _render_kiosk(request, kiosk, *, status: int = 200, **forms):
    history = selectors.kiosk_history(kiosk)
    context = _live_context(kiosk) | {
        "site": kiosk.site,
        "history": history,
        "language": get_language() or settings.LANGUAGE_CODE,
        "credential": selectors.kiosk_active_credential(kiosk),
        "fresh_token": request.session.pop(FRESH_TOKEN_SESSION_KEY.format(serial=kiosk.serial), None),
        "command_form": forms.get("command_form") or CommandForm(),
        "maintenance_form": forms.get("maintenance_form") or MaintenanceForm(),
        "hall_open_now": kiosk.site.is_open_at(timezone.localtime()),
    }
    return render(request, "fleet/kiosk_detail.html", context, status=status)


@login_required
@view_fleet
@require_GET
def kiosk_detail(request, serial: str):
    kiosk = selectors.kiosk_for_user(request.user, serial)
    response = _render_kiosk(request, kiosk)
    # The page may carry a token shown once: never let a browser or proxy keep a copy.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@view_fleet
@require_GET
def kiosk_live(request, serial: str):
    """Out-of-band fragments of the kiosk page that change with heartbeats: status, commands, timeline."""
    kiosk = selectors.kiosk_for_user(request.user, serial)
    return render(request, "fleet/_kiosk_live.html", _live_context(kiosk) | {"oob": True})


@login_required
@view_fleet
@permission_required("fleet.add_remotecommand", raise_exception=True)
@require_POST
def command_issue(request, serial: str):
    kiosk = selectors.kiosk_for_user(request.user, serial)
    form = CommandForm(request.POST)
    if form.is_valid():
        try:
            command = services.command_enqueue(
                kiosk=kiosk,
                kind=form.cleaned_data["kind"],
                actor=request.user,
                params=form.params,
                ttl_s=form.ttl_s,
                confirm_serial=form.confirm_serial_value,
            )
        except ValidationError as error:
            add_service_errors(form, error, form.SERVICE_FIELDS)
        else:
            messages.success(
                request,
                _("Command “%(kind)s” queued for %(serial)s.") % {"kind": command.get_kind_display(), "serial": serial},
            )
            return redirect("fleet:kiosk", serial=serial)
    return _render_kiosk(request, kiosk, status=400, command_form=form)


@login_required
@view_fleet
@permission_required("fleet.add_remotecommand", raise_exception=True)
@require_POST
def command_cancel(request, serial: str, command_id):
    command = selectors.kiosk_command_for_user(request.user, serial, command_id)
    try:
        services.command_cancel(command=command, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Command “%(kind)s” cancelled.") % {"kind": command.get_kind_display()})
    return redirect("fleet:kiosk", serial=serial)


@login_required
@view_fleet
@permission_required("fleet.set_maintenance", raise_exception=True)
@require_POST
def maintenance_start(request, serial: str):
    kiosk = selectors.kiosk_for_user(request.user, serial)
    form = MaintenanceForm(request.POST)
    if form.is_valid():
        try:
            services.kiosk_start_maintenance(
                kiosk=kiosk, actor=request.user, reason=form.cleaned_data["reason"], until=form.cleaned_data["until"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("%(serial)s is in maintenance.") % {"serial": serial})
            return redirect("fleet:kiosk", serial=serial)
    return _render_kiosk(request, kiosk, status=400, maintenance_form=form)


@login_required
@view_fleet
@permission_required("fleet.set_maintenance", raise_exception=True)
@require_POST
def maintenance_end(request, serial: str):
    kiosk = selectors.kiosk_for_user(request.user, serial)
    try:
        kiosk = services.kiosk_end_maintenance(kiosk=kiosk, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("Maintenance ended; %(serial)s is %(status)s.")
            % {"serial": serial, "status": kiosk.get_status_display()},
        )
    return redirect("fleet:kiosk", serial=serial)


@login_required
@view_fleet
@permission_required("fleet.manage_credentials", raise_exception=True)
@require_POST
def token_rotate(request, serial: str):
    kiosk = selectors.kiosk_for_user(request.user, serial)
    token = services.credential_issue(kiosk=kiosk, actor=request.user)
    request.session[FRESH_TOKEN_SESSION_KEY.format(serial=serial)] = token
    messages.warning(request, _("A new token was issued; the old one no longer works."))
    return redirect("fleet:kiosk", serial=serial)


@login_required
@view_fleet
@permission_required("fleet.manage_credentials", raise_exception=True)
@require_POST
def token_revoke(request, serial: str):
    kiosk = selectors.kiosk_for_user(request.user, serial)
    if services.credential_revoke(kiosk=kiosk, actor=request.user):
        messages.warning(request, _("The token was revoked: %(serial)s can no longer report.") % {"serial": serial})
    else:
        messages.info(request, _("%(serial)s had no active token.") % {"serial": serial})
    return redirect("fleet:kiosk", serial=serial)


# --- Provisioning ---------------------------------------------------------------------------------------


@login_required
@view_fleet
@permission_required("fleet.add_kiosk", raise_exception=True)
def kiosk_provision(request):
    sites = selectors.sites_for_user(request.user)
    if request.method == "POST":
        form = ProvisionForm(request.POST, sites=sites)
        if form.is_valid():
            data = form.cleaned_data
            try:
                kiosk, token = services.kiosk_register(
                    site=data["site"],
                    serial=data["serial"],
                    model=data["model"],
                    asset_tag=data["asset_tag"] or None,
                    heartbeat_interval_s=data["heartbeat_interval_s"],
                    grace_s=data["grace_s"],
                    actor=request.user,
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                request.session[FRESH_TOKEN_SESSION_KEY.format(serial=kiosk.serial)] = token
                messages.success(request, _("Kiosk %(serial)s registered.") % {"serial": kiosk.serial})
                return redirect("fleet:kiosk", serial=kiosk.serial)
        status = 400
    else:
        form = ProvisionForm(
            sites=sites,
            initial={
                "heartbeat_interval_s": settings.KIOSKOPS["DEFAULT_HEARTBEAT_INTERVAL_S"],
                "grace_s": settings.KIOSKOPS["DEFAULT_GRACE_S"],
            },
        )
        status = 200
    return render(request, "fleet/provision.html", {"form": form}, status=status)
