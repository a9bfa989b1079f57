"""The console's guidance page and its printouts: halls of the user's regions, out-of-service ones first, each
with its notice, its public page and its kiosks' stickers. Thin views over guidance.selectors and
guidance.printing; every hall and kiosk is looked up through the user's region scope (another region's is a 404)."""

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.scoping import scope_kiosks, scope_sites
from core.converters import SERIAL_MAX, SerialConverter
from fleet.models import Kiosk, Site
from guidance import printing, selectors, services
from guidance.apps import VIEW

view_guidance = permission_required(VIEW, raise_exception=True)
PHONE_READERS = "incidents.work_incident"  # who may read a citizen's phone number in full
SERIAL_RE = re.compile(SerialConverter.regex)  # what a serial in the query string may be (no NUL, no "/")


def _site(request, code: str) -> Site:
    site = scope_sites(Site.objects.select_related("region"), request.user).filter(code=code).first()
    if site is None:
        raise Http404
    return site


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@view_guidance
@require_GET
def index(request):
    reports = selectors.console_reports(request.user)
    may_read_phones = request.user.has_perm(PHONE_READERS)
    if may_read_phones:
        from guidance import protect

        for report in reports:
            report.phone = protect.decrypt(report.phone_encrypted)
    return render(
        request,
        "guidance/index.html",
        {
            "halls": selectors.console_halls(request.user),
            "regions": selectors.console_region_guidance(request.user),
            "reports": reports,
            "may_read_phones": may_read_phones,
            "may_edit": request.user.has_perm("guidance.change_regionguidance"),
        },
    )


@login_required
@view_guidance
@require_GET
def notice(request, code: str):
    """The hall's A4 notice, live at print time; ``?kiosk=<serial>`` for one kiosk of the hall."""
    site = _site(request, code)
    serial = request.GET.get("kiosk", "")
    if serial and (
        len(serial) > SERIAL_MAX
        or not SERIAL_RE.fullmatch(serial)
        or not Kiosk.objects.filter(site=site, serial=serial).exists()
    ):
        raise Http404
    html = printing.notice_html(site, serial=serial)
    name = f"notice-{site.code}{'-' + serial if serial else ''}.pdf"
    return _pdf(printing.pdf(html), name)


@login_required
@view_guidance
@require_GET
def stickers(request, code: str):
    """A sheet of the hall's kiosk stickers (A4, a grid of QR codes)."""
    site = _site(request, code)
    html = printing.stickers_html(printing.hall_sticker_kiosks(site), title=site.name)
    return _pdf(printing.pdf(html), f"stickers-{site.code}.pdf")


@login_required
@view_guidance
@require_GET
def sticker(request, serial: str):
    """One kiosk's sticker."""
    kiosk = (
        scope_kiosks(Kiosk.objects.select_related("site"), request.user)
        .exclude(status=Kiosk.Status.RETIRED)
        .filter(serial=serial)
        .first()
    )
    if kiosk is None:
        raise Http404
    html = printing.stickers_html([kiosk], title=kiosk.serial)
    return _pdf(printing.pdf(html), f"sticker-{kiosk.serial}.pdf")


@login_required
@view_guidance
@require_POST
def notice_posted(request, code: str):
    """The notice is up at the kiosk area: the out-of-service kiosks' incidents record that citizens were guided."""
    site = _site(request, code)
    count = services.notice_posted(site=site, actor=request.user)
    if count:
        messages.success(
            request,
            ngettext(
                "Recorded on %(count)d incident: notice posted at %(hall)s.",
                "Recorded on %(count)d incidents: notice posted at %(hall)s.",
                count,
            )
            % {"count": count, "hall": site.name},
        )
    else:
        messages.warning(request, _("No open incident of %(hall)s to record it on.") % {"hall": site.name})
    return redirect("guidance:index")
