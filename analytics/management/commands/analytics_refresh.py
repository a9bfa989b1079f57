"""Recompute the analytics summaries of any period: `manage.py analytics_refresh --from 2026-01-01 --to 2026-06-30`.
Idempotent: the period's rows are replaced, month by month (services.analytics_refresh_period)."""

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics import services


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
        totals = services.analytics_refresh_period(first=first, last=last)
        self.stdout.write(
            f"{totals['kiosk_days']} kiosk-days and {totals['incidents']} incidents from {first} to {last}"
        )
