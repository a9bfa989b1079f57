"""Reads of work orders: who may see which, the technician's list, the offline bundle of an order, and the
dispatch suggestions."""

import math
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import Role
from accounts.scoping import visible_region_ids
from core.people import person_name
from fleet.vocabulary import HEALTHY_STATES, FaultKind
from incidents.models import Incident
from workorders import checklists
from workorders.models import PartUsed, Status, TechnicianProfile, WorkOrder


def orders_visible(user) -> QuerySet[WorkOrder]:
    """The orders a user may see: their regions' (technicians, support and dispatchers alike)."""
    if not (user and user.is_authenticated and user.has_perm("workorders.view_workorder")):
        return WorkOrder.objects.none()
    region_ids = visible_region_ids(user)
    orders = WorkOrder.objects.all()
    return orders if region_ids is None else orders.filter(region_id__in=region_ids)


def order_for_user(user, uid) -> WorkOrder:
    """One order by its uid, or 404 when it does not exist or is outside the user's regions."""
    try:
        return (
            orders_visible(user)
            .select_related("kiosk", "site", "region", "incident", "assignee", "assigned_by")
            .get(uid=uid)
        )
    except (WorkOrder.DoesNotExist, ValueError, TypeError) as error:
        raise Http404(_("No such work order.")) from error


def orders_for_technician(user, *, now: datetime | None = None) -> list[WorkOrder]:
    """A technician's active orders: overdue first, then today's by due time, then the rest."""
    now = now or timezone.now()
    orders = list(
        orders_visible(user)
        .filter(assignee=user, status__in=WorkOrder.HELD + (Status.SIGNED_OFF,))
        .select_related("kiosk", "site", "incident")
    )
    today_end = timezone.localtime(now).replace(hour=23, minute=59, second=59)

    def rank(order: WorkOrder):
        due = order.due_at
        if due is not None and due < now:
            return (0, due)
        if due is not None and due <= today_end:
            return (1, due)
        return (2, due or now + timedelta(days=3650))

    return sorted(orders, key=rank)


def distance_km(lat1, lon1, lat2, lon2) -> float | None:
    """Great-circle distance; None when a point is unknown."""
    if None in (lat1, lon1, lat2, lon2):
        return None
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp, dl = p2 - p1, math.radians(float(lon2) - float(lon1))
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return round(6371.0 * 2 * math.asin(math.sqrt(a)), 1)


def navigation_links(site) -> dict:
    """AMap and Baidu Maps links to the hall (app URL schemes with web fallbacks). The demo's and most Chinese
    halls' coordinates are GCJ-02, which both take as given."""
    if site.latitude is None or site.longitude is None:
        query = quote(f"{site.name} {site.address}")
        return {
            "amap": f"https://uri.amap.com/search?keyword={query}&src=kioskops",
            "baidu": f"https://api.map.baidu.com/geocoder?address={query}&output=html&src=kioskops",
            "baidu_app": "",
            "amap_app": "",
        }
    lat, lon = f"{site.latitude}", f"{site.longitude}"
    name = site.name
    return {
        "amap": "https://uri.amap.com/marker?"
        + urlencode({"position": f"{lon},{lat}", "name": name, "src": "kioskops", "coordinate": "gaode"}),
        "amap_app": "amapuri://route/plan/?"
        + urlencode({"dlat": lat, "dlon": lon, "dname": name, "dev": 0, "t": 0, "sourceApplication": "kioskops"}),
        "baidu": "https://api.map.baidu.com/marker?"
        + urlencode(
            {
                "location": f"{lat},{lon}",
                "title": name,
                "content": site.address,
                "output": "html",
                "coord_type": "gcj02",
                "src": "kioskops",
            }
        ),
        "baidu_app": "baidumap://map/marker?"
        + urlencode({"location": f"{lat},{lon}", "title": name, "coord_type": "gcj02", "src": "kioskops"}),
    }


def technicians_for_region(region_id: int) -> QuerySet:
    User = get_user_model()
    return (
        User.objects.filter(is_active=True, groups__name=Role.FIELD_TECHNICIAN)
        .filter(Q(operator_profile__all_regions=True) | Q(operator_profile__regions__id=region_id))
        .distinct()
    )


def technician_suggestions(*, order: WorkOrder) -> list[dict]:
    """Technicians who cover the hall's region, best first: fewest orders in hand, trained on the kiosk's model,
    nearest their base. Each with the figures and the reasons shown to the dispatcher."""
    load = (
        WorkOrder.objects.filter(assignee=OuterRef("pk"), status__in=WorkOrder.HELD)
        .exclude(pk=order.pk)
        .order_by()
        .values("assignee")
        .annotate(n=Count("pk"))
        .values("n")
    )
    people = list(
        technicians_for_region(order.region_id)
        .annotate(load=Coalesce(Subquery(load, output_field=IntegerField()), 0))
        .order_by("pk")
    )
    profiles = {p.user_id: p for p in TechnicianProfile.objects.filter(user__in=people)}
    site, model = order.site, order.kiosk.model
    suggestions = []
    for person in people:
        profile = profiles.get(person.pk)
        if profile is not None and not profile.on_duty:
            continue
        trained = bool(profile and model and model in (profile.models_trained or []))
        distance = (
            distance_km(profile.base_latitude, profile.base_longitude, site.latitude, site.longitude)
            if profile
            else None
        )
        score = person.load * 1.0 + (0.0 if trained else 1.5) + (distance / 10 if distance is not None else 1.0)
        reasons = [_("%(n)d orders in hand") % {"n": person.load}]
        reasons.append(_("trained on %(model)s") % {"model": model} if trained else _("not trained on this model"))
        if distance is not None:
            reasons.append(_("%(km)s km from %(base)s") % {"km": distance, "base": profile.base_name or _("base")})
        suggestions.append(
            {
                "user": person,
                "name": person_name(person),
                "load": person.load,
                "skilled": trained,
                "distance_km": distance,
                "score": round(score, 2),
                "reasons": [str(reason) for reason in reasons],
            }
        )
    suggestions.sort(key=lambda s: (s["score"], s["name"]))
    return suggestions


def likely_part(incident: Incident) -> dict:
    """The part to bring: the part most often fitted for this fault kind and component on this model (the fleet's
    own history), else the part that serves the component."""
    past = (
        PartUsed.objects.filter(
            order__status=Status.CLOSED,
            order__incident__fault_kind=incident.fault_kind,
            order__incident__component=incident.component,
            order__incident__is_drill=False,  # a drill's parts are not the fleet's history
        )
        .filter(order__kiosk__model=incident.kiosk.model if incident.kiosk_id else "")
        .values("part_number", "name")
        .annotate(n=Count("pk"))
        .order_by("-n", "part_number")
        .first()
    )
    if past:
        return {"part_number": past["part_number"], "name": past["name"], "source": "history", "times": past["n"]}
    component = incident.component
    if not component and incident.kiosk_id:
        # A fault reported by hand names no module: the one the kiosk itself reports failing.
        failing = [name for name, state in (incident.kiosk.components or {}).items() if state not in HEALTHY_STATES]
        component = failing[0] if failing else ""
    return checklists.default_part(incident.fault_kind, component)


def kiosk_history(kiosk_id: int, *, limit: int = 5) -> list[dict]:
    """The kiosk's last incidents, for the technician: when, what, how it ended."""
    rows = (
        Incident.objects.filter(kiosk_id=kiosk_id)
        .order_by("-opened_at")
        .values("opened_at", "fault_kind", "title", "state", "resolution")[:limit]
    )
    return [
        {
            "opened_at": row["opened_at"],
            "fault_kind": str(FaultKind(row["fault_kind"]).label) if row["fault_kind"] in FaultKind.values else "",
            "title": row["title"],
            "state": row["state"],
            "resolution": row["resolution"],
        }
        for row in rows
    ]


def order_offline_bundle(order: WorkOrder) -> dict:
    """Everything the technician's order page needs with no signal: kiosk, hall, hours, contact, steps, part,
    history and the order's own records (plain data; the page renders it, the service worker caches the page)."""
    site, kiosk = order.site, order.kiosk
    return {
        "order": order,
        "kiosk": kiosk,
        "site": site,
        "opening_hours": site.opening_hours_display(),
        "navigation": navigation_links(site),
        "contact": {"name": site.duty_contact_name, "phone": site.duty_contact_phone},
        "checklist": list(order.checklist.select_related("done_by")),
        "parts": list(order.parts.all()),
        "photos": list(order.photos.all()),
        "tests": {test.check_name: test for test in order.tests.all()},
        "self_tests": list(order.self_tests.select_related("command").order_by("-requested_at")[:3]),
        "events": list(order.events.select_related("actor").order_by("-at", "-id")[:50]),
        "history": kiosk_history(kiosk.pk),
    }


# --- The likely part in stock, and first-time fixes -------------------------------------------------------------


def likely_part_stock(order: WorkOrder) -> dict:
    """Whether the order's likely part is at hand: in the assignee's van, and in the region's stores, nearest to the
    hall first (parts.selectors.part_availability)."""
    from parts import selectors as parts_selectors

    part_number = (order.likely_part or {}).get("part_number", "")
    return parts_selectors.part_availability(
        part_number=part_number,
        region_id=order.region_id,
        latitude=order.site.latitude,
        longitude=order.site.longitude,
        holder=order.assignee,
    )


def incident_likely_part_stock(incident: Incident, order: WorkOrder | None = None) -> dict:
    """For an incident's page: the part to bring (the order's, or the one likely_part suggests before dispatch) and
    where it is — the assignee's van once there is one, the region's nearest store that holds it."""
    from parts import selectors as parts_selectors

    likely = (order.likely_part if order is not None else None) or likely_part(incident)
    site = incident.site
    stock = parts_selectors.part_availability(
        part_number=(likely or {}).get("part_number", ""),
        region_id=site.region_id,
        latitude=site.latitude,
        longitude=site.longitude,
        holder=order.assignee if order is not None else None,
    )
    return {"likely": likely or {}, **stock}


def first_time_fix_rate(
    user=None, *, since: datetime | None = None, until: datetime | None = None, fault_kind: str = "", component=""
) -> dict:
    """First-time fix rate: of the incidents whose work order was closed in the period, the share fixed on the first
    visit — no second work order (a return trip, e.g. for a part) for the same incident; cancelled orders do not
    count as trips. Scoped to the user's regions when a user is given."""
    orders = orders_visible(user) if user is not None else WorkOrder.objects.all()
    closed = orders.filter(status=Status.CLOSED, incident__is_drill=False)  # drills are not real repairs
    if since is not None:
        closed = closed.filter(closed_at__gte=since)
    if until is not None:
        closed = closed.filter(closed_at__lt=until)
    if fault_kind:
        closed = closed.filter(incident__fault_kind=fault_kind)
    if component:
        closed = closed.filter(incident__component=component)
    incidents = Incident.objects.filter(pk__in=closed.values("incident_id")).annotate(
        trips=Count("work_orders", filter=~Q(work_orders__status=Status.CANCELLED))
    )
    total = incidents.count()
    first = incidents.filter(trips=1).count()
    return {"incidents": total, "first_time": first, "rate": round(first / total, 3) if total else None}
