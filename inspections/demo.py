"""Demo data for inspections (`make run`): the approved software versions, today's inspections assigned to the
demo technicians (some done, one with a failed check and its incident, the week's network tests late), and four
months of past inspections so compliance has a shape. Idempotent: a second run changes nothing."""

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from fleet.models import Kiosk
from inspections import services
from inspections.checks import version_key
from inspections.models import OPEN_STATUSES, ApprovedVersion, CheckResult, Inspection, Mode, Result, Status

HISTORY_DAYS = 120
# Of the past inspections: done on time, done late, the rest missed (a technician's bad week, a holiday backlog).
ON_TIME, LATE = 0.86, 0.08


@dataclass
class DemoResult:
    created: int = 0
    history: int = 0
    today: int = 0


def _approve_versions() -> None:
    """Each model's newest released version in the fleet is the approved one: kiosks behind it are the laggards."""
    versions: dict[str, str] = {}
    # Releases only: a pilot's pre-release (3.5.0-rc1) is not what the fleet should run.
    released = Kiosk.objects.exclude(model="").exclude(software_version="").exclude(software_version__contains="-")
    for model, version in released.values_list("model", "software_version"):
        if model not in versions or version_key(version) > version_key(versions[model]):
            versions[model] = version
    for model, version in versions.items():
        ApprovedVersion.objects.get_or_create(
            kiosk_model=model, defaults={"version": version, "note": "演示：该型号当前最新版本"}
        )


def _history(now: datetime) -> int:
    """Past periods' inspections, made due day by day as the beat task would have, then finished or missed."""
    rng = random.Random(20261126)
    zone = timezone.get_current_timezone()
    today = timezone.localdate(now)
    for back in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=back)
        services.inspections_generate(now=datetime.combine(day, time(8, 0), zone))
    services.inspections_assign(now=now)
    # A region no technician covers would only have missed inspections: the demo's history leaves it out.
    Inspection.objects.filter(due_on__lt=today, assignee__isnull=True).delete()
    earlier = list(
        Inspection.objects.filter(status__in=OPEN_STATUSES, due_on__lt=today).values_list(
            "pk", "due_at", "assignee_id", "period_ends_at"
        )
    )
    done_on_time, done_late, missed = [], [], []
    for pk, due_at, assignee_id, ends_at in earlier:
        roll = rng.random()
        if roll < ON_TIME:
            done_on_time.append((pk, due_at - timedelta(minutes=rng.randint(30, 300)), assignee_id))
        elif roll < ON_TIME + LATE:
            done_late.append((pk, min(due_at + timedelta(minutes=rng.randint(20, 600)), ends_at, now), assignee_id))
        elif ends_at <= now:
            missed.append(pk)
        # else: still open this week or month, and late
    for pk, at, assignee_id in done_on_time + done_late:
        Inspection.objects.filter(pk=pk).update(
            status=Status.DONE, started_at=at - timedelta(minutes=15), completed_at=at, completed_by_id=assignee_id
        )
    Inspection.objects.filter(pk__in=missed).update(status=Status.MISSED)
    made = Inspection.objects.filter(due_on__lt=today).count()
    return made


def _finish(inspection: Inspection, actor, at: datetime, *, fail: str = "") -> None:
    """The technician's checks of one inspection, all passed but ``fail`` (a check key), and done."""
    for check in inspection.template.checks.filter(mode=Mode.PHONE):
        failed = check.key == fail
        services.inspection_record_check(
            inspection=inspection,
            actor=actor,
            key=check.key,
            result=Result.FAIL if failed else Result.PASS,
            note="切纸刀卡住，凭条无法切断" if failed else "",
            measure="已清理纸屑，仍需更换切纸刀" if failed else "",
            at=at,
        )
    if not fail:
        services.inspection_complete(inspection=inspection, actor=actor, at=at)


def _today(now: datetime) -> int:
    services.inspections_generate(now=now)
    services.inspections_assign(now=now)
    services.inspections_mark_overdue(now=now)
    services.inspections_run_remote_checks(now=now)
    User = get_user_model()
    today = timezone.localdate(now)
    for username in ("technician", "technician2"):
        actor = User.objects.filter(username=username).first()
        if actor is None:
            continue
        daily = list(
            Inspection.objects.filter(assignee=actor, template__code="daily", due_on=today).order_by("kiosk__serial")
        )
        if CheckResult.objects.filter(inspection__in=daily, recorded_by=actor).exists():
            continue
        for inspection in daily[:2]:
            _finish(inspection, actor, min(now, inspection.due_at) - timedelta(minutes=5))
        if username == "technician" and len(daily) > 2:
            _finish(daily[2], actor, now - timedelta(minutes=2), fail="printing")
    from incidents import engine

    engine.run_until_drained()
    services.inspections_link_incidents()
    return Inspection.objects.filter(due_on=today).count()


def seed_inspections_demo(*, now: datetime | None = None) -> DemoResult:
    now = now or timezone.now()
    result = DemoResult()
    if not Kiosk.objects.exists():
        return result
    with transaction.atomic():
        _approve_versions()
        before = Inspection.objects.count()
        result.history = _history(now)
    result.today = _today(now)
    result.created = Inspection.objects.count() - before

    return result
