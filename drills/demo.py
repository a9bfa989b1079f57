"""Demo drills (`make run`): the last two quarters' drills of 徐汇区, finished, with their scores, report, lessons
and actions and a training record per participant, and next quarter's drill planned. Idempotent.

The past drills are records of drills that ran (their scores computed by drills/scoring.py from the step times
below); they left no stand-in kiosks or incidents behind, as a finished drill does not. To see a drill run through
the pipeline, start the planned one."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import Region
from drills import scenarios, scoring
from drills.models import Drill, DrillAction, DrillEvent, DrillTarget, TrainingRecord
from fleet.models import Kiosk

# (quarters back, scenario, minutes to: acknowledge, first remote attempt, dispatch, arrival, recovery; part fitted)
PAST = (
    (2, "kiosk_dark", (8, 25, 34, 150, 260), "PSU-12"),
    (1, "printer_jam", (6, 14, 30, 95, 180), "PRN-80T"),
)


@dataclass
class DemoDrills:
    created: bool
    drills: int = 0


def _quarter_start(day: date, back: int) -> date:
    """The first day of the quarter `back` quarters before the one of `day` (negative: after)."""
    index = day.year * 4 + (day.month - 1) // 3 - back
    return date(index // 4, 3 * (index % 4) + 1, 1)


def seed_drills_demo() -> DemoDrills:
    if Drill.objects.exists():
        return DemoDrills(created=False)
    users = get_user_model().objects
    coordinator, region = users.filter(username="drill").first(), Region.objects.filter(code="xuhui").first()
    if coordinator is None or region is None:
        return DemoDrills(created=False)
    kiosk = Kiosk.objects.filter(site__region=region, drill_of__isnull=True).order_by("serial").first()
    people = [u for u in (users.filter(username=name).first() for name in ("manager", "support", "technician")) if u]
    zone = timezone.get_current_timezone()
    today = timezone.localdate()
    with transaction.atomic():
        for back, code, minutes, part in PAST:
            plan = scenarios.scenario(code)
            start = datetime.combine(_quarter_start(today, back) + timedelta(days=40), time(10), zone)
            opened = start + timedelta(minutes=2)
            at = [opened + timedelta(minutes=m) for m in minutes]
            score = scoring.score(
                [
                    scoring.Timings(
                        opened_at=opened,
                        acknowledged_at=at[0],
                        first_remote_at=at[1],
                        dispatched_at=at[2],
                        arrived_at=at[3],
                        resolved_at=at[4],
                        checklist_done=5,
                        checklist_total=6,
                        parts=(part,),
                    )
                ],
                plan.targets,
                plan.expected_part,
            )
            drill = Drill.objects.create(
                title=f"{start.year}年第{(start.month - 1) // 3 + 1}季度应急演练：{plan.label}",
                scenario=code,
                region=region,
                site=kiosk.site if kiosk else None,
                window_start=start,
                window_end=start + timedelta(hours=6),
                targets=plan.targets,
                expected_part=plan.expected_part,
                status=Drill.Status.FINISHED,
                created_at=start - timedelta(days=14),
                created_by=coordinator,
                started_at=start,
                ended_at=at[4] + timedelta(minutes=10),
                score=score,
                went_well="值班人员 10 分钟内确认并开始远程排查；维修人员带对了备件。",
                lessons="派单等待较久：夜间值班表未更新，系统推荐的维修人员不在岗。",
            )
            drill.participants.set(people)
            if kiosk:
                DrillTarget.objects.create(drill=drill, kiosk=kiosk)
            DrillEvent.objects.bulk_create(
                [
                    DrillEvent(
                        drill=drill, at=start - timedelta(days=14), actor=coordinator, text=f"已计划：{plan.label}"
                    ),
                    DrillEvent(drill=drill, at=start, actor=coordinator, text="已开始：1 台演练替身终端上线"),
                    DrillEvent(
                        drill=drill,
                        at=at[4] + timedelta(minutes=10),
                        actor=coordinator,
                        text=f"已完成：得分 {score['total']}",
                    ),
                ]
            )
            DrillAction.objects.create(
                drill=drill,
                text="每周一更新夜间值班表并同步到派单推荐",
                owner=people[0] if people else coordinator,
                due_on=(start + timedelta(days=30)).date(),
                created_at=start + timedelta(days=1),
                done_at=start + timedelta(days=20) if back == 2 else None,
                done_note="已纳入周例会" if back == 2 else "",
            )
            TrainingRecord.objects.bulk_create(
                [
                    TrainingRecord(person=p, topic=f"演练：{plan.label}", trained_on=start.date(), drill=drill)
                    for p in people
                ]
            )
        next_start = datetime.combine(_quarter_start(today, -1) + timedelta(days=20), time(10), zone)
        planned = Drill.objects.create(
            title=f"{next_start.year}年第{(next_start.month - 1) // 3 + 1}季度应急演练：区域网络中断",
            scenario="network_outage",
            region=region,
            site=None,
            window_start=next_start,
            window_end=next_start + timedelta(hours=4),
            targets=scenarios.scenario("network_outage").targets,
            created_at=timezone.now(),
            created_by=coordinator,
        )
        planned.participants.set(people)
        for target in Kiosk.objects.filter(site__region=region, drill_of__isnull=True).order_by("serial")[:3]:
            DrillTarget.objects.create(drill=planned, kiosk=target)
        DrillEvent.objects.create(drill=planned, at=timezone.now(), actor=coordinator, text="已计划：区域网络中断")
        if people:
            TrainingRecord.objects.create(
                person=people[-1],
                topic="自助机应急预案培训（故障分类与初步排查）",
                trained_on=today - timedelta(days=60),
            )
    return DemoDrills(created=True, drills=len(PAST) + 1)
