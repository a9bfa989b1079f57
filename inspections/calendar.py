"""When an inspection falls due: the Chinese working-day calendar and the hall's opening hours.

- daily: each working day the hall is open;
- weekly: the first working day of the ISO week on which the hall is open;
- monthly: the first working day of the month on which the hall is open;
due by the hall's closing time that day (the end of the day for a hall without hours). The period ends at the
start of the next day, ISO week or month: an inspection still open then is missed.

Working days come from the chinesecalendar library (statutory holidays and make-up working days, 调休). A year it
does not know yet falls back to Monday–Friday, logged once per year."""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings

from core import hours

logger = logging.getLogger(__name__)

_warned_years: set[int] = set()


@lru_cache(maxsize=4096)
def is_working_day(day: date) -> bool:
    import chinese_calendar

    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            logger.warning("the Chinese holiday calendar has no data for %d: Monday to Friday assumed", day.year)
        return day.weekday() < 5


@dataclass(frozen=True)
class Due:
    period_start: date
    due_on: date
    due_at: datetime
    period_ends_at: datetime


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def period_of(frequency: str, day: date) -> tuple[date, date]:
    """The period containing ``day``: (its first day, the first day of the next one)."""
    if frequency == "daily":
        return day, day + timedelta(days=1)
    if frequency == "weekly":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    if frequency == "monthly":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following
    raise ValueError(f"unknown frequency {frequency!r}")


def _open_on(opening_hours: dict, day: date) -> bool:
    return not hours.has_hours(opening_hours) or bool(hours.intervals_on(opening_hours, day))


def closing_time(opening_hours: dict, day: date) -> datetime:
    """When the hall closes on ``day`` (its last interval's end), or the end of the day for a hall without hours."""
    spans = hours.intervals_on(opening_hours, day) if hours.has_hours(opening_hours) else []
    if spans:
        return spans[-1][1]
    return datetime.combine(day + timedelta(days=1), time.min, _zone()) - timedelta(seconds=1)


def due_in_period(frequency: str, opening_hours: dict, day: date) -> Due | None:
    """The due date of the period containing ``day`` for a hall with these hours, or None when the period has no
    working day on which the hall is open (a daily inspection on a holiday, a hall closed all week)."""
    start, end = period_of(frequency, day)
    candidate = start
    while candidate < end:
        if is_working_day(candidate) and _open_on(opening_hours, candidate):
            ends_at = datetime.combine(end, time.min, _zone())
            return Due(start, candidate, min(closing_time(opening_hours, candidate), ends_at), ends_at)
        if frequency == "daily":
            return None
        candidate += timedelta(days=1)
    return None
