"""The printed pieces: the A4 notice for a hall's kiosk area and the kiosks' QR stickers, as PDF (WeasyPrint,
Noto Sans CJK), with QR codes drawn as inline SVG (segno). Always in Chinese: they hang in the hall."""

from dataclasses import dataclass

import segno
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from core import printing
from fleet.models import Kiosk, Site
from guidance import alternatives, selectors

PRINT_LANGUAGE = "zh-hans"


def qr_svg(url: str, *, scale: int = 4) -> str:
    """The QR code of ``url`` as an inline <svg> element (medium error correction: survives a scuffed sticker)."""
    return mark_safe(segno.make(url, error="m", micro=False).svg_inline(scale=scale, border=2, omitsize=True))  # noqa: S308 — segno's own markup


def notice_context(site: Site, *, serial: str = "") -> dict:
    """What the notice says, live at print time."""
    alt = alternatives.for_site(site)
    down = selectors.out_of_service(site, serial=serial or None)
    return {
        "site": site,
        "down": down,
        "working": alt.working,
        "nearby": alt.nearby,
        "alt": alt,
        "status_url": alternatives.hall_url(site),
        "qr": qr_svg(alternatives.hall_url(site), scale=3),
        "printed_at": timezone.localtime(),
    }


def notice_html(site: Site, *, serial: str = "") -> str:
    with translation.override(PRINT_LANGUAGE):
        return render_to_string("guidance/notice.html", notice_context(site, serial=serial))


@dataclass
class Sticker:
    serial: str
    asset_tag: str
    site_name: str
    location: str
    url: str
    qr: str


def stickers(kiosks) -> list[Sticker]:
    return [
        Sticker(
            k.serial,
            k.asset_tag or "",
            k.site.name,
            k.location,
            alternatives.kiosk_url(k.serial),
            qr_svg(alternatives.kiosk_url(k.serial), scale=3),
        )
        for k in kiosks
    ]


def stickers_html(kiosks, *, title: str) -> str:
    with translation.override(PRINT_LANGUAGE):
        return render_to_string("guidance/stickers.html", {"stickers": stickers(kiosks), "title": title})


def hall_sticker_kiosks(site: Site) -> list[Kiosk]:
    return list(
        Kiosk.objects.filter(site=site, drill_of__isnull=True)  # a drill's stand-in carries no sticker
        .exclude(status=Kiosk.Status.RETIRED)
        .select_related("site")
    )


# The PDF itself is core's (core/printing.py), shared with the review and the drill report.
pdf = printing.pdf
document = printing.document
