"""The business calendar of Chinese working days: the chinesecalendar library (statutory holidays and make-up
working days, 调休), corrected by operators' overrides. A year the library does not know falls back to Monday–
Friday and is reported, so nothing crashes and the console can warn."""

from collections.abc import Mapping
from datetime import date, timedelta

import chinese_calendar


class BusinessCalendar:
    def __init__(self, overrides: Mapping[date, bool] | None = None):
        self._overrides = dict(overrides or {})
        self._known: dict[date, bool] = {}  # a run asks about the same few weeks thousands of times
        self.unknown_years: set[int] = set()

    def is_working_day(self, day: date) -> bool:
        known = self._known.get(day)
        if known is None:
            known = self._known[day] = self._decide(day)
        return known

    def _decide(self, day: date) -> bool:
        if day in self._overrides:
            return self._overrides[day]
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            # The library has no data for this year yet (it is updated when the State Council publishes the
            # next year's holidays): assume an ordinary week and let the console say so.
            self.unknown_years.add(day.year)
            return day.weekday() < 5

    def add_working_days(self, start: date, days: int) -> date:
        """The date `days` working days after `start` (start itself not counted)."""
        current = start
        remaining = days
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (0 when end <= start)."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count

    def holidays_between(self, start: date, end: date) -> list[date]:
        """Non-working weekdays strictly after start up to end: the holidays that stretch a settlement."""
        days = []
        current = start
        while current < end:
            current += timedelta(days=1)
            if current.weekday() < 5 and not self.is_working_day(current):
                days.append(current)
        return days


def known_years() -> range:
    """The years the library has holiday data for."""
    years = [d.year for d in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)
