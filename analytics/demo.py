"""Demo history for the figures and the six-monthly review (`make run`): the demo fleet's last 520 days — every
kiosk in service from the start, the incidents of the incidents demo (its last 90 days) and older ones before them,
the status flips each fault caused (offline or degraded while it lasted), the onsite visits with the parts fitted
(one in seven needing a second trip), then the summaries computed for the whole period, and the first half of this
year reviewed and published with its actions. Idempotent: a second run changes nothing.

The flips are history, not news: they are written under the incident engine's lock with its cursor moved past them,
so the engine never reads them as faults happening now (run before anything else writes flips: `make run`'s setup).
"""

import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone, translation

from analytics import report, services
from analytics.models import Review, ReviewAction
from fleet.models import Kiosk, RemoteCommand, StatusChange
from fleet.vocabulary import FAULT_KIND_CATEGORY, FaultKind
from incidents import engine
from incidents.demo import PATTERNS
from incidents.models import FeedCursor, Incident, Source, State, TimelineEntry
from workorders.models import PartUsed, Status, TechnicianProfile, WorkOrder

logger = logging.getLogger(__name__)

HISTORY_DAYS = 520  # back to the half-year before last, so the review compares two whole halves
OLDER_FROM_DAYS = 91  # the incidents demo covers the last 90 days
FAILURES_PER_KIOSK_MONTH = 0.5
SECOND_TRIP_SHARE = 1 / 7
DEMO_MARK = "analytics-history"
DOWN_KINDS = {FaultKind.WONT_START, FaultKind.CONNECTION_LOST, FaultKind.SYSTEM_CRASH, FaultKind.PHYSICAL_DAMAGE}
PART_OF = {
    "receipt_printer": ("PRN-80T", "热敏凭条打印机"),
    "qr_scanner": ("QRS-2D", "二维码扫码器"),
    "card_reader": ("CRD-EMV", "EMV 读卡器模块"),
    "touchscreen": ("TS-19", "19英寸触摸屏"),
    "cash_module": ("CSH-BV", "纸币识别器"),
    "": ("PSU-12", "电源适配器"),
}


@dataclass
class DemoAnalytics:
    created: bool
    incidents: int = 0
    flips: int = 0
    orders: int = 0
    kiosk_days: int = 0


def seed_analytics_demo(*, seed: int = 11) -> DemoAnalytics:
    if Incident.objects.filter(evidence__demo=DEMO_MARK).exists():
        return DemoAnalytics(created=False)
    kiosks = list(Kiosk.objects.exclude(status=Kiosk.Status.RETIRED).select_related("site").order_by("pk"))
    manager = get_user_model().objects.filter(username="manager").first()
    if not kiosks or manager is None:
        return DemoAnalytics(created=False)
    engine.run_until_drained()
    rng = random.Random(seed)
    with transaction.atomic(), translation.override("zh-hans"):
        engine.lock()
        older = _older_incidents(kiosks, rng)
        history = list(
            Incident.objects.filter(evidence__demo__in=[DEMO_MARK, "demo-history"]).order_by("kiosk_id", "opened_at")
        )
        flips = _flips(kiosks, history)
        orders = _visits(history, rng)
        _move_cursor_past_history()
    today = timezone.localdate()
    written = services.analytics_refresh_period(first=today - timedelta(days=HISTORY_DAYS), last=today)["kiosk_days"]
    _reviews(manager, today)
    return DemoAnalytics(created=True, incidents=older, flips=flips, orders=orders, kiosk_days=written)


def _open_moment(kiosk: Kiosk, day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randint(9, 15), rng.randint(0, 59)), timezone.get_current_timezone())


def _older_incidents(kiosks: list[Kiosk], rng: random.Random) -> int:
    """Closed incidents from 91 to 520 days ago, like the incidents demo's (the same faults and fixes)."""
    today = timezone.localdate()
    count = int(len(kiosks) * (HISTORY_DAYS - OLDER_FROM_DAYS) / 30 * FAILURES_PER_KIOSK_MONTH)
    incidents, entries = [], []
    for _n in range(count):
        kind, component, measure, works, otherwise = rng.choice(PATTERNS)
        kiosk = rng.choice(kiosks)
        day = today - timedelta(days=rng.randint(OLDER_FROM_DAYS, HISTORY_DAYS - 1))
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        opened = _open_moment(kiosk, day, rng)
        fixed_remotely = rng.random() < works
        onsite = None if fixed_remotely else opened + timedelta(minutes=rng.randint(40, 150))
        resolved = (
            opened + timedelta(minutes=rng.randint(8, 50))
            if onsite is None
            else onsite + timedelta(minutes=rng.randint(20, 240))
        )
        acknowledged = opened + timedelta(minutes=rng.randint(1, 20))
        incidents.append(
            Incident(
                kiosk=kiosk,
                site=kiosk.site,
                region_id=kiosk.site.region_id,
                fault_kind=kind,
                category=FAULT_KIND_CATEGORY[kind],
                component=component,
                source=Source.CITIZEN if rng.random() < 0.06 else Source.HEALTH,
                severity=3 if kind in (FaultKind.MODULE_FAILURE, FaultKind.PHYSICAL_DAMAGE) else 2,
                severity_reason="演示历史数据",
                state=State.CLOSED,
                title=f"{FaultKind(kind).label} · {kiosk.serial}",
                evidence={"rule": "component_fault" if component else "silent_no_warning", "demo": DEMO_MARK},
                opened_at=opened,
                last_seen_at=opened,
                acknowledged_at=acknowledged,
                acknowledge_due_at=opened + timedelta(minutes=15),
                first_remote_at=acknowledged + timedelta(minutes=rng.randint(1, 10)),
                remote_due_at=opened + timedelta(minutes=30),
                onsite_at=onsite,
                onsite_due_at=None if fixed_remotely else opened + timedelta(hours=2),
                resolved_at=resolved,
                resolve_due_at=opened + timedelta(hours=4),
                closed_at=resolved + timedelta(minutes=rng.randint(5, 60)),
                resolution=f"{RemoteCommand.Kind(measure).label}后恢复" if fixed_remotely else f"现场处理：{otherwise}",
            )
        )
    Incident.objects.bulk_create(incidents, batch_size=500)
    for incident in incidents:
        entries += [
            TimelineEntry(incident=incident, at=incident.opened_at, kind="detected", measure="由事件引擎发现"),
            TimelineEntry(
                incident=incident, at=incident.acknowledged_at, kind="acknowledged", measure="已确认，开始排查"
            ),
            TimelineEntry(
                incident=incident,
                at=incident.resolved_at,
                kind="resolved",
                measure="已恢复",
                result=incident.resolution,
            ),
            TimelineEntry(incident=incident, at=incident.closed_at, kind="closed", measure="已关闭"),
        ]
    TimelineEntry.objects.bulk_create(entries, batch_size=1000)
    return len(incidents)


def _flips(kiosks: list[Kiosk], history: list[Incident]) -> int:
    """Each kiosk in service from the start of the history; each fault offline (or degraded, for a module) while it
    lasted. Overlapping faults of one kiosk keep the first."""
    start = timezone.now() - timedelta(days=HISTORY_DAYS + 1)
    flips = [
        StatusChange(
            kiosk=kiosk,
            occurred_at=start,
            from_status="provisioned",
            to_status="online",
            reason="heartbeat",
            detail="演示历史",
        )
        for kiosk in kiosks
    ]
    busy_until: dict[int, datetime] = {}
    for incident in history:
        if incident.kiosk_id is None or incident.resolved_at is None:
            continue
        if incident.opened_at < busy_until.get(incident.kiosk_id, start):
            continue
        busy_until[incident.kiosk_id] = incident.resolved_at
        to_status = "offline" if incident.fault_kind in DOWN_KINDS else "degraded"
        flips += [
            StatusChange(
                kiosk_id=incident.kiosk_id,
                occurred_at=incident.opened_at - timedelta(minutes=1),
                from_status="online",
                to_status=to_status,
                reason="heartbeat",
                detail="演示历史",
            ),
            StatusChange(
                kiosk_id=incident.kiosk_id,
                occurred_at=incident.resolved_at,
                from_status=to_status,
                to_status="online",
                reason="heartbeat",
                detail="演示历史",
            ),
        ]
    StatusChange.objects.bulk_create(flips, batch_size=1000)
    return len(flips)


def _visits(history: list[Incident], rng: random.Random) -> int:
    """The onsite visits of the history's onsite fixes: a closed order per fix, with the part fitted; one in seven
    first needed a trip that ended without the part (a cancelled order that did check in)."""
    profiles = list(
        TechnicianProfile.objects.select_related("user").prefetch_related("user__operator_profile__regions")
    )
    if not profiles:
        return 0
    by_region: dict[int, list] = {}
    for profile in profiles:
        scope = getattr(profile.user, "operator_profile", None)
        for region in scope.regions.all() if scope else []:
            by_region.setdefault(region.pk, []).append(profile.user)
    everyone = [profile.user for profile in profiles]
    orders, parts = [], []
    for incident in history:
        if incident.onsite_at is None or incident.kiosk_id is None or incident.resolved_at is None:
            continue
        technician = rng.choice(by_region.get(incident.region_id) or everyone)
        created = incident.opened_at + timedelta(minutes=rng.randint(15, 35))
        created = min(created, incident.onsite_at - timedelta(minutes=10))
        common = {
            "incident": incident,
            "kiosk_id": incident.kiosk_id,
            "site_id": incident.site_id,
            "region_id": incident.region_id,
            "assignee": technician,
            "assigned_at": created,
            "created_at": created,
            "accepted_at": created + timedelta(minutes=2),
            "departed_at": created + timedelta(minutes=5),
        }
        if rng.random() < SECOND_TRIP_SHARE:
            orders.append(
                WorkOrder(
                    **common,
                    status=Status.CANCELLED,
                    checked_in_at=incident.onsite_at,
                    checked_out_at=incident.onsite_at + timedelta(minutes=20),
                    cancelled_at=incident.onsite_at + timedelta(minutes=25),
                    cancel_reason="现场缺件，需带备件二次上门",
                    summary="判断为部件损坏，车上无备件",
                )
            )
            second_arrival = incident.onsite_at + timedelta(minutes=rng.randint(60, 120))
            resolved = max(incident.resolved_at, second_arrival + timedelta(minutes=20))
            Incident.objects.filter(pk=incident.pk).update(
                resolved_at=resolved, closed_at=resolved + timedelta(minutes=10)
            )
            incident.resolved_at = resolved
            arrival = second_arrival
        else:
            arrival = incident.onsite_at
        if incident.resolved_at < arrival + timedelta(minutes=15):
            continue  # recovered before anyone could have worked on it: no visit to show
        order = WorkOrder(
            **{**common, "assigned_at": arrival - timedelta(minutes=30), "created_at": min(created, arrival)},
            status=Status.CLOSED,
            checked_in_at=arrival,
            checked_out_at=incident.resolved_at,
            work_done_at=incident.resolved_at - timedelta(minutes=5),
            verified_at=incident.resolved_at,
            closed_at=incident.resolved_at + timedelta(minutes=5),
            summary=incident.resolution,
        )
        orders.append(order)
        number, name = PART_OF.get(incident.component, PART_OF[""])
        parts.append(
            PartUsed(
                order=order,
                part_number=number,
                name=name,
                quantity=1,
                recorded_at=incident.resolved_at,
                recorded_by=technician,
                note="演示历史",
            )
        )
    WorkOrder.objects.bulk_create(orders, batch_size=500)
    PartUsed.objects.bulk_create(parts, batch_size=500)
    return len(orders)


def _move_cursor_past_history() -> None:
    """The incident engine reads flips past its cursor: the history's were written just now, so move the cursor to
    them (the engine's lock is held: nothing else is reading)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT txid, id FROM {StatusChange._meta.db_table} ORDER BY txid DESC, id DESC LIMIT 1")
        row = cursor.fetchone()
    if row:
        FeedCursor.objects.update_or_create(feed="status", defaults={"txid": row[0], "last_id": row[1]})


def _reviews(manager, today: date) -> None:
    """Last half-year's review, published, with the actions it decided (one still open, carried into this half's)."""
    year, half = (today.year, 1) if today.month > 6 else (today.year - 1, 2)
    admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first() or manager
    review = services.review_open(year=year, half=half, actor=manager)
    services.review_save_summary(
        review=review,
        summary="本半年自助机整体可用率保持在 99% 以上；打印机卡纸与扫码器故障仍是高频问题，约三成需要现场处理。"
        "一次修复率受备件不足影响，部分工单需二次上门。",
        actor=manager,
    )
    support = get_user_model().objects.filter(username="support").first() or manager
    technician = get_user_model().objects.filter(username="technician").first() or manager
    decided = [
        ("为每辆维修车配足打印机芯与扫码器各一件", technician, 45, "已按车载清单补齐"),
        ("打印机卡纸：每周巡检时清理纸路并更换老化胶辊", support, 60, "已写入周巡检清单"),
        ("与大厅网络管理员约定交换机重启流程，缩短断网恢复时间", manager, 150, ""),
    ]
    start = date(year, 1 if half == 1 else 7, 1)
    end = date(year, 6, 30) if half == 1 else date(year, 12, 31)
    for text, owner, due_days, done in decided:
        action = services.review_action_add(
            review=review, text=text, owner=owner, due_on=end + timedelta(days=due_days), actor=manager
        )
        if done:
            services.review_action_done(action=action, note=done, actor=owner if owner.pk else manager)
    services.review_publish(review=review, snapshot=report.review_data(admin, review), actor=manager)
    ReviewAction.objects.filter(review=review, done_at__isnull=False).update(
        done_at=timezone.now() - timedelta(days=30)
    )
    Review.objects.filter(pk=review.pk).update(
        published_at=timezone.make_aware(datetime.combine(end + timedelta(days=20), time(10)))
    )
    logger.info("demo review %s published (%s to %s)", review.code, start, end)
