"""The fleet-health console: thin views over fleet.selectors (reads) and fleet.services (writes).

Every kiosk is looked up through the user's region scope, so a kiosk of another region is a 404 everywhere.
Live updates re-render the same partial templates the pages use; the browser only decides what to fetch.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.validation import add_service_errors
from fleet import selectors, services
from fleet.forms import BoardFilterForm, CommandForm, MaintenanceForm, ProvisionForm

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


def _board_context(request, form, filters, kiosks) -> dict:
    now = timezone.localtime()
    sites = []
    for kiosk in kiosks:
        if not sites or sites[-1]["site"].pk != kiosk.site_id:
            sites.append({"site": kiosk.site, "is_open": kiosk.site.is_open_at(now), "kiosks": []})
        sites[-1]["kiosks"].append(kiosk)
    return {
        "form": form,
        "filters": filters,
        "sites": sites,
        "kiosk_count": len(kiosks),
        "counts": selectors.board_counts(request.user, filters),
        "query_without_status": _query_without(request, "status"),
    }


def _query_without(request, name: str) -> str:
    """The board's filter query string without one parameter (and without the live update's own ones)."""
    query = request.GET.copy()
    for key in (name, "serials", "all"):
        query.pop(key, None)
    return query.urlencode()


@login_required
@view_fleet
@require_GET
def board(request):
    form, filters = _board_filters(request)
    kiosks = selectors.board_kiosks(request.user, filters)
    context = _board_context(request, form, filters, kiosks) | {
        "ingest_lag": selectors.heartbeat_ingest_lag(),
        "ingest_problems": selectors.heartbeat_ingest_problems(),
    }
    return render(request, "fleet/board.html", context)


@login_required
@view_fleet
@require_GET
def board_tiles(request):
    """Out-of-band fragments for the live board: the counts and either the changed tiles or, when the board is
    filtered (a kiosk may enter or leave the filtered set) or asked to resync, the whole grid."""
    form, filters = _board_filters(request)
    serials = [s for s in request.GET.get("serials", "").split(",") if s][:500]
    whole_grid = filters.active or request.GET.get("all") == "1" or not serials
    kiosks = selectors.board_kiosks(request.user, filters, serials=None if whole_grid else serials)
    context = _board_context(request, form, filters, kiosks)
    context.update(whole_grid=whole_grid, tiles=kiosks, oob=True)
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
