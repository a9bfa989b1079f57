"""Citizens' pages, no login: a hall's kiosk status (from the notice's QR code) and a kiosk's "report a problem"
page (from its sticker).

They show no person: never the hall's contact on duty, never a reporter, never a phone number. Every answer is a
page in the citizen's language (Chinese by default) — an unknown kiosk a 404 page, too many requests a 429 page,
a wrong method a 405 page, bad input the form again with the reason next to the field — and never a 500.
Rate limits (django-ratelimit, counted in the shared cache) are per client address, and per kiosk for reports."""

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django_ratelimit import ALL
from django_ratelimit.core import is_ratelimited

from core.validation import add_service_errors
from fleet.models import Kiosk
from guidance import alternatives, selectors, services
from guidance.forms import CitizenReportForm

HALL_CACHE_S = 30

# Requests per client address (and reports per kiosk), in django-ratelimit's "count/period" form; each can be set
# in settings.KIOSKOPS.
RATES = {
    "GUIDANCE_PAGE_RATE": "60/m",  # a hall's or a kiosk's page, per client
    "GUIDANCE_REPORT_RATE": "5/10m",  # reports sent, per client
    "GUIDANCE_KIOSK_REPORT_RATE": "20/h",  # reports of one kiosk, from anyone
}


def _rate(name: str) -> str:
    return settings.KIOSKOPS.get(name, RATES[name])


def _limited(request, group: str, *, key, rate: str) -> bool:
    return is_ratelimited(request, group=group, key=key, rate=_rate(rate), method=ALL, increment=True)


def problem(request, status: int, title: str, message: str, *, site=None) -> HttpResponse:
    """A plain page in the citizen's language saying what happened and what to do."""
    response = render(
        request, "guidance/public_problem.html", {"title": title, "message": message, "site": site}, status=status
    )
    if status == 429:
        response["Retry-After"] = "60"
    if status == 405:
        response["Allow"] = "GET, POST" if request.resolver_match.url_name == "kiosk" else "GET"
    return response


def _too_many(request) -> HttpResponse:
    return problem(
        request,
        429,
        _("Too many requests"),
        _("You have sent too many requests in a short time. Please wait a minute and try again."),
    )


def _not_allowed(request) -> HttpResponse:
    return problem(request, 405, _("This page cannot do that"), _("Please open the page again from the QR code."))


def hall(request, code: str):
    """A hall's kiosks as citizens see them now (cached for HALL_CACHE_S seconds)."""
    if request.method not in ("GET", "HEAD"):
        return _not_allowed(request)
    if _limited(request, "guidance:page", key="ip", rate="GUIDANCE_PAGE_RATE"):
        return _too_many(request)
    cache_key = f"guidance:hall:{code}:{get_language()}"
    content = cache.get(cache_key)
    if content is None:
        site = selectors.hall_by_code(code)
        if site is None:
            return problem(
                request, 404, _("Hall not found"), _("There is no service hall with this address. Check the QR code.")
            )
        alt = alternatives.for_site(site)
        content = render_to_string("guidance/public_hall.html", {"site": site, "alt": alt}, request=request)
        cache.set(cache_key, content, HALL_CACHE_S)
    response = HttpResponse(content)
    patch_cache_control(response, public=True, max_age=HALL_CACHE_S)
    return response


def kiosk(request, serial: str):
    """A kiosk's sticker page: where it stands, whether it works, and a form to report a problem with it."""
    if request.method not in ("GET", "HEAD", "POST"):
        return _not_allowed(request)
    if _limited(request, "guidance:page", key="ip", rate="GUIDANCE_PAGE_RATE"):
        return _too_many(request)
    found = Kiosk.objects.select_related("site__region").filter(serial=serial, drill_of__isnull=True).first()
    # A kiosk not yet in service still carries its sticker: its page says it does not work yet.
    if found is None or found.status == Kiosk.Status.RETIRED:
        return problem(
            request,
            404,
            _("Kiosk not found"),
            _("We cannot find this kiosk, or it is no longer in use. Please use another kiosk or ask at the counter."),
        )
    form = CitizenReportForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if _limited(request, "guidance:report", key="ip", rate="GUIDANCE_REPORT_RATE") or _limited(
            request, "guidance:report-kiosk", key=lambda group, req: serial, rate="GUIDANCE_KIOSK_REPORT_RATE"
        ):
            return _too_many(request)
        if form.is_valid():
            try:
                services.citizen_report_submit(
                    kiosk=found,
                    symptom=form.cleaned_data["symptom"],
                    text=form.cleaned_data["text"],
                    phone=form.cleaned_data["phone"],
                    client=(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_USER_AGENT", "")[:300]),
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                return redirect(reverse("public:kiosk", args=[serial]) + "?sent=1")
    alt = alternatives.for_site(found.site, exclude_serial=found.serial)
    return render(
        request,
        "guidance/public_kiosk.html",
        {
            "kiosk": found,
            "line": selectors.kiosk_line(found),
            "site": found.site,
            "alt": alt,
            "form": form,
            "sent": request.method == "GET" and request.GET.get("sent") == "1",
        },
        status=400 if form.is_bound and form.errors else 200,
    )
