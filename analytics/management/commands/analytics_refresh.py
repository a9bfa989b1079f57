"""Recompute the analytics summaries of any period: `manage.py analytics_refresh --from 2026-01-01 --to 2026-06-30`.
Idempotent: the period's rows are replaced. Run month by month, so one long period does not hold one huge
transaction."""

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics import services


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


class Command(BaseCommand):
    help = "Recompute the analytics summary tables for a period (default: the last 30 days)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", type=date.fromisoformat)
        parser.add_argument("--to", dest="last", type=date.fromisoformat)

    def handle(self, *args, first=None, last=None, **options):
        last = last or timezone.localdate()
        first = first or last - timedelta(days=29)
        if last < first:
            raise CommandError("--to is before --from")
        day, totals = first, {"kiosk_days": 0, "incidents": 0}
        while day <= last:
            end = min(_month_end(day), last)
            done = services.analytics_refresh(first=day, last=end)
            for key in totals:
                totals[key] += done[key]
            day = end + timedelta(days=1)
        self.stdout.write(
            f"{totals['kiosk_days']} kiosk-days and {totals['incidents']} incidents from {first} to {last}"
        )
