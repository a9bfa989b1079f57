"""Thin tasks: the drills' feeder (every few seconds) and the quarterly reminder (daily). Safe to run twice."""

from celery import shared_task

from drills import services


@shared_task(ignore_result=True)
def feed() -> int:
    return services.drills_feed()


@shared_task(ignore_result=True)
def remind_quarterly() -> int:
    return services.drills_remind_quarterly()
