"""Thin tasks: the recent days' summaries, kept fresh by beat; any period on demand. Safe to run twice."""

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from analytics import services

RECENT_DAYS = 3  # today, and the days whose late flips, incidents and journals may still arrive


@shared_task(ignore_result=True)
def refresh_recent() -> dict:
    today = timezone.localdate()
    return services.analytics_refresh(first=today - timedelta(days=RECENT_DAYS - 1), last=today)


@shared_task(ignore_result=True)
def refresh_period(first: str, last: str) -> dict:
    return services.analytics_refresh(first=date.fromisoformat(first), last=date.fromisoformat(last))
