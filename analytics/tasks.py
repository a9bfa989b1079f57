"""Thin tasks: the recent days' summaries, kept fresh by beat; any period on demand. Safe to run twice."""

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from analytics import services

RECENT_DAYS = 3  # today, and the days whose late flips, incidents and journals may still arrive


@shared_task(ignore_result=True)
def refresh_recent() -> dict:
    from analytics import refresh

    today = timezone.localdate()
    done = services.analytics_refresh(first=today - timedelta(days=RECENT_DAYS - 1), last=today)
    # Inspections finish (or are missed) up to a month after their period starts.
    done["inspections"] = refresh.refresh_inspections(today - timedelta(days=refresh.INSPECTION_WINDOW_DAYS), today)
    return done


@shared_task(ignore_result=True)
def refresh_period(first: str, last: str) -> dict:
    return services.analytics_refresh(first=date.fromisoformat(first), last=date.fromisoformat(last))
