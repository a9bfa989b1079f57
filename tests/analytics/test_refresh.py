"""The summaries against a small fleet computed by hand: availability in opening hours only, MTBF, MTTR, the
response times, first-time fix, the payments lost to downtime — and a refresh run twice gives the same rows."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from analytics import refresh, selectors
from analytics.models import IncidentFact, KioskDay, SiteDay
from fleet.models import StatusChange
from incidents.models import Incident
from reconciliation.models import JournalFile, JournalLine
from tests.factories import KioskFactory, SiteFactory, UserFactory
from workorders.models import WorkOrder

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)  # a Wednesday, a working day
HOURS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}  # 8 h a working day


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), SH)


def flip(kiosk, when, to_status, from_status="online"):
    return StatusChange.objects.create(
        kiosk=kiosk, occurred_at=when, from_status=from_status, to_status=to_status, reason="heartbeat"
    )


def incident(kiosk, opened, *, ack=None, remote=None, onsite=None, resolved=None, state="resolved", **extra):
    return Incident.objects.create(
        kiosk=kiosk,
        site=kiosk.site,
        region=kiosk.site.region,
        fault_kind=extra.pop("fault_kind", "wont_start"),
        category="device",
        component=extra.pop("component", ""),
        source=extra.pop("source", "health"),
        severity=3,
        state=state,
        title="无法启动",
        opened_at=opened,
        last_seen_at=opened,
        acknowledged_at=ack,
        first_remote_at=remote,
        onsite_at=onsite,
        resolved_at=resolved,
        **extra,
    )


def journal(kiosk, day, count):
    file = JournalFile.objects.create(
        kiosk=kiosk, business_date=day, sha256=f"{kiosk.pk:032d}{day:%Y%m%d}".ljust(64, "0"), content=b"", size=0
    )
    JournalLine.objects.bulk_create(
        JournalLine(
            kiosk=kiosk,
            txn_id=f"{day:%Y%m%d}-{n}",
            seq=n,
            occurred_at=at(day, 10),
            business_date=day,
            amount=Decimal("20.00"),
            channel="wechat",
            service_code="ID",
            status="success",
            source_file=file,
            line_no=n,
        )
        for n in range(1, count + 1)
    )


@pytest.fixture
def fleet(region):
    hall = SiteFactory(region=region, code="hall-a", name="和平区政务服务大厅", opening_hours=HOURS)
    a = KioskFactory(site=hall, serial="KS-A", model="ZK-200")
    b = KioskFactory(site=hall, serial="KS-B", model="ZK-200")
    for kiosk in (a, b):
        flip(kiosk, at(DAY - timedelta(days=60), 8), "online", from_status="provisioned")
    # A: offline 10:00–12:00 (2 h of 8 h open), and offline again 18:00–20:00 while the hall is closed.
    flip(a, at(DAY, 10), "offline")
    flip(a, at(DAY, 12), "online", from_status="offline")
    flip(a, at(DAY, 18), "offline")
    flip(a, at(DAY, 20), "online", from_status="offline")
    # B: degraded 16:00 until the next morning: 1 h of the day's open time.
    flip(b, at(DAY, 16), "degraded")
    flip(b, at(DAY + timedelta(days=1), 8), "online", from_status="degraded")
    return {"hall": hall, "a": a, "b": b}


def test_availability_counts_the_halls_opening_hours_only(fleet):
    refresh.refresh_days(DAY, DAY)

    a = KioskDay.objects.get(kiosk=fleet["a"], day=DAY)
    b = KioskDay.objects.get(kiosk=fleet["b"], day=DAY)
    assert (a.open_s, a.down_s, a.degraded_s) == (8 * 3600, 2 * 3600, 0)
    assert (b.open_s, b.down_s, b.degraded_s) == (8 * 3600, 0, 3600)
    hall = SiteDay.objects.get(site=fleet["hall"], day=DAY)
    assert (hall.kiosks, hall.open_s, hall.down_s) == (2, 16 * 3600, 2 * 3600)


def test_a_weekend_and_a_public_holiday_have_no_opening_hours_but_count_the_kiosks_failures(fleet):
    saturday, national_day = date(2026, 11, 21), date(2026, 10, 1)  # 2026-10-01 is a Thursday, a holiday

    refresh.refresh_days(national_day, national_day)
    refresh.refresh_days(saturday, saturday)

    days = KioskDay.objects.filter(day__in=[saturday, national_day])
    assert days.count() == 4 and {day.open_s for day in days} == {0}  # in service, hall closed


def test_a_kiosk_never_heard_from_is_not_counted_as_down(fleet, region):
    KioskFactory(site=fleet["hall"], serial="KS-NEW", model="ZK-200")

    refresh.refresh_days(DAY, DAY)

    assert not KioskDay.objects.filter(kiosk__serial="KS-NEW").exists()


def test_incident_figures_mttr_response_times_and_first_time_fix(fleet, region):
    manager = UserFactory(username="m", role="operations_manager", regions=[region])
    fixed = incident(
        fleet["a"],
        at(DAY, 10, 1),
        ack=at(DAY, 10, 11),
        remote=at(DAY, 10, 21),
        onsite=at(DAY, 11, 1),
        resolved=at(DAY, 12, 1),
        acknowledge_due_at=at(DAY, 10, 16),
        resolution="更换打印机芯后恢复",
    )
    WorkOrder.objects.create(
        incident=fixed,
        kiosk=fleet["a"],
        site=fleet["hall"],
        region=region,
        created_at=at(DAY, 10, 30),
        checked_in_at=at(DAY, 11, 1),
    )
    incident(fleet["b"], at(DAY, 16, 1), ack=at(DAY, 16, 41), acknowledge_due_at=at(DAY, 16, 16), state="acknowledged")
    incident(fleet["b"], at(DAY, 16, 5), state="cancelled", fault_kind="module_failure", cancel_reason="误报")

    refresh.refresh(DAY, DAY)
    rows, total = selectors.figures_by(manager, selectors.Period(DAY, DAY), "region")

    assert IncidentFact.objects.count() == 3
    assert total.incidents == 3 and total.failures == 2  # the false alarm is no failure
    assert total.mttr_s == 2 * 3600  # the one recovery: 10:01 → 12:01
    assert total.acknowledge_s == (10 * 60 + 40 * 60) / 2
    assert total.first_time_fix_rate == 1.0
    assert total.sla_rate("acknowledge") == 0.5  # 10 minutes of 15 met, 40 missed
    assert total.availability == pytest.approx(1 - 2 / 16)
    assert total.mtbf_s == pytest.approx((16 - 2) * 3600 / 2)
    assert [row.label for row in rows] == ["黄浦区"]


def test_a_second_visit_is_no_first_time_fix(fleet, region):
    technician = UserFactory(username="t", role="field_technician", regions=[region])
    case = incident(fleet["a"], at(DAY, 10, 1), onsite=at(DAY, 11), resolved=at(DAY, 15))
    for hour in (11, 14):
        WorkOrder.objects.create(
            incident=case,
            kiosk=fleet["a"],
            site=fleet["hall"],
            region=region,
            created_at=at(DAY, hour - 1),
            checked_in_at=at(DAY, hour),
            status="closed" if hour == 14 else "cancelled",
            assignee=technician,
            cancel_reason="" if hour == 14 else "缺件，改派",
        )

    refresh.refresh_incidents(DAY, DAY)

    fact = IncidentFact.objects.get()
    assert (fact.visits, fact.first_time_fix) == (2, False)


def test_payments_lost_are_the_usual_rate_times_the_downtime(fleet):
    week = [DAY - timedelta(days=n) for n in range(1, 8) if (DAY - timedelta(days=n)).weekday() < 5]
    for day in week:
        journal(fleet["a"], day, 80)  # 80 payments in 8 open hours: 10 an hour
    journal(fleet["a"], DAY, 60)  # up 6 h of 8: 10 an hour

    refresh.refresh_days(min(week), DAY)

    assert KioskDay.objects.get(kiosk=fleet["a"], day=DAY).payments_lost == 20  # 2 h down × 10 an hour
    assert KioskDay.objects.get(kiosk=fleet["b"], day=DAY).payments_lost == 0


def test_refreshing_a_period_twice_leaves_the_same_rows(fleet):
    refresh.refresh(DAY - timedelta(days=2), DAY)
    first = list(KioskDay.objects.order_by("kiosk", "day").values_list("kiosk", "day", "open_s", "down_s"))

    refresh.refresh(DAY - timedelta(days=2), DAY)

    assert list(KioskDay.objects.order_by("kiosk", "day").values_list("kiosk", "day", "open_s", "down_s")) == first
    assert SiteDay.objects.filter(day=DAY).count() == 1


def test_a_reader_sees_the_figures_of_their_own_districts_only(fleet, region):
    from tests.factories import RegionFactory

    other = RegionFactory(code="xuhui", name="徐汇区")
    stranger = UserFactory(username="x", role="operations_manager", regions=[other])
    refresh.refresh_days(DAY, DAY)

    rows, total = selectors.figures_by(stranger, selectors.Period(DAY, DAY), "site")

    assert rows == [] and total.open_s == 0
