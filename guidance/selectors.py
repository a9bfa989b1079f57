"""Reads of citizen guidance: a hall's kiosks as citizens see them, the nearest halls that can take a payment, the
region's online platform, the out-of-service kiosks and their incidents, and the console's list of halls.

Every read is a fixed number of queries whatever the hall's size. Nothing here returns a person: no contact on
duty, no reporter, no phone number — the public pages are built from these reads only."""

import math
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Region
from accounts.scoping import scope_regions, scope_sites, visible_region_ids
from fleet.models import Kiosk, Site
from fleet.vocabulary import HEALTHY_STATES, Component, FaultKind
from guidance.models import CitizenReport, RegionGuidance
from incidents.models import ACTIVE_STATES, Incident

# A kiosk citizens can pay at now (a degraded one works with a module down; its methods say which).
WORKING = (Kiosk.Status.ONLINE, Kiosk.Status.DEGRADED)
# A kiosk standing in the hall that cannot take a payment: the notice is about these.
OUT_OF_SERVICE = (Kiosk.Status.OFFLINE, Kiosk.Status.MAINTENANCE)
# Never shown to citizens: not installed yet, or gone.
HIDDEN = (Kiosk.Status.PROVISIONED, Kiosk.Status.RETIRED)

# What a citizen can do at a kiosk, by the module that does it.
PAYMENT_METHODS = (
    (Component.CARD_READER, _("Bank card")),
    (Component.QR_SCANNER, _("QR code")),
    (Component.CASH_MODULE, _("Cash")),
    (Component.RECEIPT_PRINTER, _("Receipts")),
)

NEARBY_HALLS = 3


@dataclass
class Method:
    label: str
    works: bool


@dataclass
class KioskLine:
    """A kiosk as citizens see it: where it stands, whether it works, what it takes."""

    serial: str
    location: str
    working: bool
    methods: list[Method] = field(default_factory=list)

    @property
    def place(self) -> str:
        return self.location or _("in the hall")


@dataclass
class NearbyHall:
    code: str
    name: str
    address: str
    distance_km: float | None
    working: int


@dataclass
class OutOfService:
    """An out-of-service kiosk on the notice: what is wrong in plain words and when it should be back."""

    serial: str
    location: str
    problem: str
    recovery_due: datetime | None


def kiosk_line(kiosk: Kiosk) -> KioskLine:
    working = kiosk.status in WORKING
    components = kiosk.components or {}
    methods = [Method(label, working and components.get(name) in HEALTHY_STATES) for name, label in PAYMENT_METHODS]
    return KioskLine(kiosk.serial, kiosk.location, working, methods)


def hall_by_code(code: str) -> Site | None:
    return Site.objects.select_related("region").filter(code=code).first()


def hall_kiosks(site: Site) -> list[KioskLine]:
    """The hall's kiosks citizens can see, working ones first, then by place."""
    kiosks = (
        Kiosk.objects.filter(site=site, drill_of__isnull=True)  # a drill's stand-in is not citizens' business
        .exclude(status__in=HIDDEN)
        .only("serial", "location", "status", "components")
    )
    lines = [kiosk_line(k) for k in kiosks]
    return sorted(lines, key=lambda line: (not line.working, line.location, line.serial))


def _km(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance (haversine), in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, map(float, (lat1, lon1, lat2, lon2)))
    a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))


def nearest_halls(site: Site, *, limit: int = NEARBY_HALLS) -> list[NearbyHall]:
    """The halls nearest to ``site`` (by its latitude and longitude) where a kiosk works now, any district. One
    query: the halls with their working kiosks counted. A hall without coordinates is compared with the halls of
    its own district only (distance unknown), by code."""
    halls = (
        Site.objects.exclude(pk=site.pk)
        .annotate(working=Count("kiosks", filter=Q(kiosks__status__in=WORKING)))
        .filter(working__gt=0)
        .values("code", "name", "address", "latitude", "longitude", "working", "region_id")
    )
    if site.latitude is None or site.longitude is None:
        same = sorted((h for h in halls if h["region_id"] == site.region_id), key=lambda h: h["code"])
        return [NearbyHall(h["code"], h["name"], h["address"], None, h["working"]) for h in same[:limit]]
    placed = [
        NearbyHall(
            h["code"],
            h["name"],
            h["address"],
            _km(site.latitude, site.longitude, h["latitude"], h["longitude"]),
            h["working"],
        )
        for h in halls
        if h["latitude"] is not None and h["longitude"] is not None
    ]
    return sorted(placed, key=lambda h: (h.distance_km, h.code))[:limit]


def region_guidance(region_id: int) -> RegionGuidance | None:
    return RegionGuidance.objects.filter(region_id=region_id).first()


def out_of_service(site: Site, *, serial: str | None = None) -> list[OutOfService]:
    """The hall's out-of-service kiosks (or the one named), each with its open incident's fault in plain words and
    its expected recovery. Two queries."""
    kiosks = Kiosk.objects.filter(site=site, status__in=OUT_OF_SERVICE, drill_of__isnull=True).order_by(
        "location", "serial"
    )  # a drill's stand-in is never out of service for citizens
    if serial:
        kiosks = kiosks.filter(serial=serial)
    kiosks = list(kiosks.only("pk", "serial", "location", "status"))
    incidents = {}
    for incident in (
        Incident.objects.filter(kiosk__in=kiosks, is_group=False, state__in=ACTIVE_STATES)
        .only("kiosk_id", "fault_kind", "resolve_due_at", "severity", "opened_at")
        .order_by("kiosk_id", "severity", "-opened_at")
    ):
        incidents.setdefault(incident.kiosk_id, incident)  # the most severe, then the newest
    lines = []
    for kiosk in kiosks:
        incident = incidents.get(kiosk.pk)
        if incident is not None:
            problem = str(FaultKind(incident.fault_kind).label)
        elif kiosk.status == Kiosk.Status.MAINTENANCE:
            problem = str(pgettext_lazy("notice", "Under maintenance"))
        else:
            problem = str(pgettext_lazy("notice", "Out of service"))
        lines.append(OutOfService(kiosk.serial, kiosk.location, problem, incident.resolve_due_at if incident else None))
    return lines


@dataclass
class HallRow:
    """A hall on the console's guidance page."""

    site: Site
    kiosks: int
    working: int
    out_of_service: int


def console_halls(user) -> list[HallRow]:
    """The halls of the user's regions, those with out-of-service kiosks first (most first), then by code. One
    query."""
    sites = scope_sites(Site.objects.select_related("region"), user).annotate(
        n_kiosks=Count("kiosks", filter=~Q(kiosks__status__in=HIDDEN)),
        n_working=Count("kiosks", filter=Q(kiosks__status__in=WORKING)),
        n_down=Count("kiosks", filter=Q(kiosks__status__in=OUT_OF_SERVICE)),
    )
    rows = [HallRow(s, s.n_kiosks, s.n_working, s.n_down) for s in sites]
    return sorted(rows, key=lambda r: (-r.out_of_service, r.site.region.code, r.site.code))


def console_region_guidance(user) -> list[RegionGuidance]:
    regions = scope_regions(Region.objects.all(), user)
    return list(RegionGuidance.objects.filter(region__in=regions).select_related("region"))


def console_reports(user, *, limit: int = 20) -> list[CitizenReport]:
    """The latest citizen reports of the halls the user sees."""
    reports = CitizenReport.objects.select_related("kiosk__site", "incident").order_by("-created_at", "-id")
    region_ids = visible_region_ids(user)
    if region_ids is not None:
        reports = reports.filter(kiosk__site__region_id__in=region_ids)
    return list(reports[:limit])
