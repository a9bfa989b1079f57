"""Opening hours: is a hall open at a moment, and when is a deadline that counts only open minutes.

Hours are a week of local intervals, as halls store them: ``{"mon": [["08:30", "12:00"], ["13:30", "17:30"]],
..., "sun": []}``. Times are the console's time zone (Asia/Shanghai). A hall with no hours at all is treated as
always open (a clock that never runs would hide every breach).
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A deadline further than this is not looked for: a hall closed for a year has no deadline.
_HORIZON_DAYS = 366


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _parse(value: str) -> time | None:
    try:
        hours, minutes = str(value).split(":", 1)
        return time(int(hours), int(minutes)) if (hours, minutes) != ("24", "00") else time.max
    except (TypeError, ValueError):
        return None


def intervals_on(opening_hours: dict, day: date) -> list[tuple[datetime, datetime]]:
    """The hall's open intervals on one local day, as aware datetimes, in order. Malformed entries are skipped."""
    zone = _zone()
    spans = []
    for entry in (opening_hours or {}).get(WEEKDAYS[day.weekday()]) or []:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            continue
        start, end = _parse(entry[0]), _parse(entry[1])
        if start is None or end is None or end <= start:
            continue
        spans.append((datetime.combine(day, start, zone), datetime.combine(day, end, zone)))
    return sorted(spans)


def has_hours(opening_hours: dict) -> bool:
    return any(intervals_on(opening_hours, date(2024, 1, 1) + timedelta(days=n)) for n in range(7))


def is_open(opening_hours: dict, at: datetime) -> bool:
    if not has_hours(opening_hours):
        return True
    local = at.astimezone(_zone())
    return any(start <= local < end for start, end in intervals_on(opening_hours, local.date()))


def add_open_minutes(opening_hours: dict, start: datetime, minutes: float) -> datetime | None:
    """The moment `minutes` of opening time have passed since `start` (a clock that stops while the hall is
    closed). Always-open halls count the wall clock. None if the hall does not open within a year."""
    if not has_hours(opening_hours):
        return start + timedelta(minutes=minutes)
    remaining = timedelta(minutes=minutes)
    local = start.astimezone(_zone())
    day = local.date()
    for _ in range(_HORIZON_DAYS):
        for open_at, close_at in intervals_on(opening_hours, day):
            if close_at <= local:
                continue
            begin = max(open_at, local)
            available = close_at - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += timedelta(days=1)
    return None


def open_minutes_between(opening_hours: dict, start: datetime, end: datetime) -> float:
    """How many minutes of opening time lie between two moments (wall minutes for an always-open hall)."""
    if end <= start:
        return 0.0
    if not has_hours(opening_hours):
        return (end - start).total_seconds() / 60
    zone = _zone()
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    total = timedelta()
    day = local_start.date()
    while day <= local_end.date():
        for open_at, close_at in intervals_on(opening_hours, day):
            begin, finish = max(open_at, local_start), min(close_at, local_end)
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return total.total_seconds() / 60
