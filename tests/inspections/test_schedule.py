"""Inspections fall due by the Chinese working-day calendar and the hall's hours, once per period, whatever the
number of runs — across days, a public holiday (National Day 2026) and a make-up working day (调休)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from inspections import calendar, services
from inspections.models import Inspection, Schedule, Status
from tests.factories import KioskFactory, SiteFactory
from tests.inspections.conftest import HOURS

SH = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def made(code: str, day: date | None = None):
    rows = Inspection.objects.filter(template__code=code)
    return rows.filter(period_start=day) if day else rows


def test_a_daily_inspection_falls_due_on_a_working_day_by_the_halls_closing_time(kiosks):
    with time_machine.travel(at(2026, 9, 30, 8, 0), tick=False):
        services.inspections_generate()

    daily = made("daily", date(2026, 9, 30))
    assert daily.count() == 2
    assert {i.due_at for i in daily} == {at(2026, 9, 30, 17, 0)}
    assert {i.period_ends_at for i in daily} == {at(2026, 10, 1, 0, 0)}
    assert {i.status for i in daily} == {Status.DUE}


def test_running_the_generator_again_the_same_day_or_the_next_makes_nothing_twice(kiosks):
    with time_machine.travel(at(2026, 9, 30, 8, 0), tick=False):
        first = services.inspections_generate()
        again = services.inspections_generate()
    with time_machine.travel(at(2026, 9, 30, 16, 0), tick=False):
        later = services.inspections_generate()

    assert first == 6  # daily, weekly (week of 28 Sep) and monthly (September) for each kiosk
    assert again == later == 0
    assert Inspection.objects.count() == 6


def test_no_daily_inspection_on_national_day_and_the_weekly_one_falls_on_the_first_working_day_after(kiosks):
    for day in range(1, 8):
        with time_machine.travel(at(2026, 10, day, 10, 0), tick=False):
            services.inspections_generate()

    assert not made("daily").exists()
    assert not made("weekly", date(2026, 10, 5)).exists()  # that week's first working day is the 8th
    assert not made("monthly", date(2026, 10, 1)).exists()
    # The week of 28 September, due on the 28th, is caught up late (nothing ran that day in this test).
    assert set(made("weekly", date(2026, 9, 28)).values_list("status", flat=True)) == {Status.LATE}

    with time_machine.travel(at(2026, 10, 8, 9, 0), tick=False):
        services.inspections_generate()

    assert made("daily", date(2026, 10, 8)).count() == 2
    weekly = made("weekly", date(2026, 10, 5)).get(kiosk=kiosks[0])
    assert (weekly.period_start, weekly.due_on) == (date(2026, 10, 5), date(2026, 10, 8))
    assert weekly.period_ends_at == at(2026, 10, 12, 0, 0)
    monthly = made("monthly", date(2026, 10, 1)).get(kiosk=kiosks[0])
    assert (monthly.period_start, monthly.due_on) == (date(2026, 10, 1), date(2026, 10, 8))


def test_a_make_up_working_saturday_has_its_daily_inspection_due_by_the_saturday_closing_time(kiosks):
    with time_machine.travel(at(2026, 10, 10, 8, 30), tick=False):
        services.inspections_generate()
    with time_machine.travel(at(2026, 9, 19, 8, 30), tick=False):  # an ordinary Saturday: not a working day
        services.inspections_generate()

    assert made("daily", date(2026, 10, 10)).count() == 2
    assert {i.due_at for i in made("daily", date(2026, 10, 10))} == {at(2026, 10, 10, 12, 0)}
    assert not made("daily", date(2026, 9, 19)).exists()


def test_a_make_up_working_sunday_makes_nothing_where_the_hall_is_closed_on_sundays(kiosks):
    with time_machine.travel(at(2026, 9, 20, 10, 0), tick=False):
        services.inspections_generate()

    assert not made("daily", date(2026, 9, 20)).exists()


def test_an_open_inspection_is_late_after_its_due_time_and_missed_when_its_period_ends(kiosks):
    with time_machine.travel(at(2026, 9, 30, 8, 0), tick=False):
        services.inspections_generate()
    with time_machine.travel(at(2026, 9, 30, 17, 30), tick=False):
        services.inspections_mark_overdue()
    assert set(made("daily", date(2026, 9, 30)).values_list("status", flat=True)) == {Status.LATE}

    with time_machine.travel(at(2026, 10, 1, 0, 0, 1), tick=False):
        services.inspections_mark_overdue()
    assert set(made("daily", date(2026, 9, 30)).values_list("status", flat=True)) == {Status.MISSED}
    assert set(made("weekly").values_list("status", flat=True)) == {Status.LATE}  # its week is not over


def test_the_most_specific_schedule_of_a_template_makes_a_kiosks_inspection(kiosks, hall):
    from inspections.models import InspectionTemplate

    daily = InspectionTemplate.objects.get(code="daily")
    for_hall = Schedule.objects.create(template=daily, scope="site", site=hall)

    with time_machine.travel(at(2026, 9, 30, 8, 0), tick=False):
        services.inspections_generate()

    assert set(made("daily").values_list("schedule", flat=True)) == {for_hall.pk}


def test_a_hall_without_opening_hours_is_due_by_the_end_of_the_working_day(region):
    always = SiteFactory(region=region, code="hall-x", opening_hours={})
    KioskFactory(site=always, serial="ZW2600009")

    with time_machine.travel(at(2026, 9, 30, 8, 0), tick=False):
        services.inspections_generate()

    assert made("daily").get().due_at == at(2026, 9, 30, 23, 59, 59)


def test_a_year_the_holiday_calendar_does_not_know_falls_back_to_monday_to_friday(caplog, monkeypatch):
    import chinese_calendar

    def unknown(day):
        raise NotImplementedError

    monkeypatch.setattr(chinese_calendar, "is_workday", unknown)
    calendar.is_working_day.cache_clear()
    try:
        assert calendar.is_working_day(date(2031, 1, 6)) is True  # a Monday
        assert calendar.is_working_day(date(2031, 1, 4)) is False  # a Saturday
    finally:
        calendar.is_working_day.cache_clear()
    assert "no data for 2031" in caplog.text


def test_the_weekly_period_and_due_day_follow_the_iso_week():
    due = calendar.due_in_period("weekly", HOURS, date(2026, 10, 9))
    assert (due.period_start, due.due_on) == (date(2026, 10, 5), date(2026, 10, 8))
