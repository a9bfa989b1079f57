"""What citizens are told to do instead when a kiosk is out of service: the hall's working kiosks and where they
stand, the staffed counter, the region's online platform and hotline, the nearest halls with working kiosks.

The same facts feed the kiosk's out-of-service screen (registered with core.registry, so incidents fills the
command's params without naming this app), the printed notice and the hall's public page."""

from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from fleet.models import Kiosk, Site
from fleet.services import OUT_OF_SERVICE_MESSAGE_MAX
from guidance import selectors

SCREEN_KIOSKS = 4  # other kiosks named on the screen: more do not fit


def public_url(path: str) -> str:
    return settings.KIOSKOPS["PUBLIC_BASE_URL"].rstrip("/") + path


def hall_url(site: Site) -> str:
    return public_url(reverse("public:hall", args=[site.code]))


def kiosk_url(serial: str) -> str:
    """The address a kiosk's sticker encodes. Stable: technicians scan the same sticker to check in."""
    return public_url(reverse("public:kiosk", args=[serial]))


@dataclass
class Alternatives:
    site: Site
    kiosks: list[selectors.KioskLine] = field(default_factory=list)
    nearby: list[selectors.NearbyHall] = field(default_factory=list)
    platform_name: str = ""
    platform_url: str = ""
    hotline: str = ""
    fees: list[str] = field(default_factory=list)

    @property
    def working(self) -> list[selectors.KioskLine]:
        return [k for k in self.kiosks if k.working]


def for_site(site: Site, *, exclude_serial: str = "") -> Alternatives:
    guidance = selectors.region_guidance(site.region_id)
    return Alternatives(
        site=site,
        kiosks=[k for k in selectors.hall_kiosks(site) if k.serial != exclude_serial],
        nearby=selectors.nearest_halls(site),
        platform_name=guidance.online_platform_name if guidance else "",
        platform_url=guidance.online_platform_url if guidance else "",
        hotline=guidance.hotline if guidance else "",
        fees=guidance.fee_list if guidance else [],
    )


def out_of_service_params(kiosk: Kiosk) -> dict:
    """The out-of-service screen's params for ``kiosk`` (docs/device-protocol.md): ``message``, Chinese text a
    citizen reads on the screen, and ``alternatives``, the same facts structured for kiosks that lay them out."""
    site = Site.objects.select_related("region").get(pk=kiosk.site_id)
    alt = for_site(site, exclude_serial=kiosk.serial)
    with translation.override("zh-hans"):
        parts = [_("This kiosk is temporarily out of service. You can:")]
        working = alt.working[:SCREEN_KIOSKS]
        if working:
            places = "、".join(k.location or k.serial for k in working)
            parts.append(_("use another kiosk in this hall (%(places)s);") % {"places": places})
        if site.counter_location:
            parts.append(_("pay at the staffed counter (%(counter)s);") % {"counter": site.counter_location})
        if alt.platform_name:
            parts.append(
                _("pay online on %(platform)s (%(url)s);") % {"platform": alt.platform_name, "url": alt.platform_url}
            )
        if alt.nearby:
            hall = alt.nearby[0]
            parts.append(_("or go to %(hall)s (%(address)s).") % {"hall": hall.name, "address": hall.address})
        parts.append(_("We apologise for the inconvenience."))
        message = "".join(parts)[:OUT_OF_SERVICE_MESSAGE_MAX]
    alternatives = {
        "kiosks": [{"serial": k.serial, "location": k.location} for k in working],
        "counter": site.counter_location,
        "online": {"name": alt.platform_name, "url": alt.platform_url} if alt.platform_name else None,
        "hotline": alt.hotline,
        "nearby_halls": [
            {
                "code": h.code,
                "name": h.name,
                "address": h.address,
                "distance_km": round(h.distance_km, 1) if h.distance_km is not None else None,
                "working_kiosks": h.working,
            }
            for h in alt.nearby
        ],
        "status_url": hall_url(site),
    }
    return {"message": message, "alternatives": alternatives}
