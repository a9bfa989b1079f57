"""Demo data for incident response (`make run`): notification channels that print to the console, and 90 days of
past incidents on the demo fleet — closed, each with the remote command or part that fixed it — so the likely-cause
statistics on a new incident have a history to count. Idempotent: a second run changes nothing."""

import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone, translation

from fleet.models import Kiosk, RemoteCommand
from fleet.vocabulary import FAULT_KIND_CATEGORY, FaultKind
from incidents import engine
from incidents.models import (
    Incident,
    IncidentCommand,
    NotificationChannel,
    PlaybookVersion,
    Source,
    State,
    TimelineEntry,
)

HISTORY_DAYS = 90
HISTORY_SIZE = 360
DEMO_MARK = "demo-history"

# (fault kind, component, the measure tried, how often it worked, what fixed it otherwise)
PATTERNS = [
    (FaultKind.MODULE_FAILURE, "receipt_printer", RemoteCommand.Kind.RESTART_MODULE, 0.78, "更换打印机"),
    (FaultKind.MODULE_FAILURE, "qr_scanner", RemoteCommand.Kind.RESTART_MODULE, 0.6, "更换扫码器"),
    (FaultKind.MODULE_FAILURE, "card_reader", RemoteCommand.Kind.SELF_TEST, 0.35, "更换读卡器"),
    (FaultKind.WONT_START, "", RemoteCommand.Kind.RESTART, 0.55, "更换电源适配器"),
    (FaultKind.CONNECTION_LOST, "network", RemoteCommand.Kind.RESTART, 0.3, "重启大厅交换机"),
    (FaultKind.SYSTEM_CRASH, "", RemoteCommand.Kind.PUSH_PATCH, 0.7, "恢复出厂设置"),
    (FaultKind.PHYSICAL_DAMAGE, "touchscreen", RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN, 0.0, "更换触摸屏"),
    (FaultKind.TRANSACTION_FAILURES, "cash_module", RemoteCommand.Kind.SELF_TEST, 0.5, "清理钞箱堵塞"),
]


@dataclass
class DemoIncidents:
    created: bool
    channels: int = 0
    history: int = 0


def seed_incidents_demo(*, seed: int = 7) -> DemoIncidents:
    if Incident.objects.filter(evidence__demo=DEMO_MARK).exists():
        return DemoIncidents(created=False)
    kiosks = list(Kiosk.objects.exclude(status=Kiosk.Status.RETIRED).select_related("site").order_by("pk"))
    if not kiosks:
        return DemoIncidents(created=False)
    with transaction.atomic(), translation.override("zh-hans"):
        channels = _channels()
        history = _history(kiosks, random.Random(seed))
    return DemoIncidents(created=True, channels=channels, history=history)


def _channels() -> int:
    if NotificationChannel.objects.exists():
        return 0
    NotificationChannel.objects.bulk_create(
        [
            NotificationChannel(
                name="运维值班邮箱", kind=NotificationChannel.Kind.EMAIL, target="oncall@kioskops.local"
            ),
            NotificationChannel(
                name="安全联系人",
                kind=NotificationChannel.Kind.EMAIL,
                target="security@kioskops.local",
                security=True,
            ),
            NotificationChannel(
                name="技术支持组",
                kind=NotificationChannel.Kind.EMAIL,
                target="support@kioskops.local",
                role="technical_support",
            ),
            NotificationChannel(
                name="运营管理组",
                kind=NotificationChannel.Kind.EMAIL,
                target="ops@kioskops.local",
                role="operations_manager",
            ),
        ]
    )
    return 4


def _history(kiosks: list[Kiosk], rng: random.Random) -> int:
    """Closed incidents of the last 90 days, with the command each started with and what fixed it."""
    now = timezone.now()
    versions = dict(
        PlaybookVersion.objects.order_by("playbook__fault_kind", "number").values_list("playbook__fault_kind", "pk")
    )
    incidents, plans = [], []
    for _ in range(HISTORY_SIZE):
        kind, component, measure, works, otherwise = rng.choice(PATTERNS)
        kiosk = rng.choice(kiosks)
        opened = now - timedelta(days=rng.uniform(2, HISTORY_DAYS), minutes=rng.randint(0, 600))
        fixed_remotely = rng.random() < works
        resolved = opened + timedelta(minutes=rng.randint(8, 50) if fixed_remotely else rng.randint(90, 600))
        resolution = f"{RemoteCommand.Kind(measure).label}后恢复" if fixed_remotely else f"现场处理：{otherwise}"
        incidents.append(
            Incident(
                kiosk=kiosk,
                site=kiosk.site,
                region_id=kiosk.site.region_id,
                fault_kind=kind,
                category=FAULT_KIND_CATEGORY[kind],
                component=component,
                source=Source.HEALTH,
                severity=3 if kind in (FaultKind.MODULE_FAILURE, FaultKind.PHYSICAL_DAMAGE) else 2,
                severity_reason="演示历史数据",
                state=State.CLOSED,
                title=f"{FaultKind(kind).label} · {kiosk.serial}",
                evidence={"rule": "component_fault" if component else "silent_no_warning", "demo": DEMO_MARK},
                opened_at=opened,
                last_seen_at=opened,
                acknowledged_at=opened + timedelta(minutes=rng.randint(1, 12)),
                first_remote_at=opened + timedelta(minutes=rng.randint(3, 15)),
                onsite_at=None if fixed_remotely else opened + timedelta(minutes=rng.randint(40, 80)),
                resolved_at=resolved,
                closed_at=resolved + timedelta(minutes=rng.randint(5, 60)),
                resolution=resolution,
                playbook_version_id=versions.get(kind),
            )
        )
        plans.append((measure, component, fixed_remotely, otherwise))
    Incident.objects.bulk_create(incidents, batch_size=500)
    commands, links, entries = [], [], []
    for incident, (measure, component, fixed_remotely, _otherwise) in zip(incidents, plans, strict=True):
        sent = incident.first_remote_at
        command = RemoteCommand(
            kiosk_id=incident.kiosk_id,
            kind=measure,
            params={"module": component}
            if measure == RemoteCommand.Kind.RESTART_MODULE
            else ({"version": "3.2.2"} if measure == RemoteCommand.Kind.PUSH_PATCH else {}),
            status=RemoteCommand.Status.SUCCEEDED if fixed_remotely else RemoteCommand.Status.FAILED,
            expires_at=sent + timedelta(minutes=15),
            delivered_at=sent + timedelta(seconds=40),
            delivery_count=1,
            completed_at=sent + timedelta(minutes=2),
            result_detail="ok" if fixed_remotely else "module did not come back",
        )
        commands.append(command)
        links.append(IncidentCommand(incident=incident, command=command, result_recorded=True))
        entries += [
            TimelineEntry(incident=incident, at=incident.opened_at, kind="detected", measure="由事件引擎发现"),
            TimelineEntry(
                incident=incident, at=incident.acknowledged_at, kind="acknowledged", measure="已确认，开始排查"
            ),
            TimelineEntry(
                incident=incident, at=sent, kind="command_sent", measure=str(RemoteCommand.Kind(measure).label)
            ),
            TimelineEntry(
                incident=incident,
                at=command.completed_at,
                kind="command_result",
                measure=str(RemoteCommand.Kind(measure).label),
                result="成功" if fixed_remotely else "失败",
            ),
        ]
        if not fixed_remotely:
            entries.append(
                TimelineEntry(
                    incident=incident, at=incident.onsite_at, kind="state_changed", measure="远程修复中 → 现场处理中"
                )
            )
        entries += [
            TimelineEntry(
                incident=incident,
                at=incident.resolved_at,
                kind="resolved",
                measure="已恢复",
                result=incident.resolution,
            ),
            TimelineEntry(incident=incident, at=incident.closed_at, kind="closed", measure="已关闭"),
        ]
    RemoteCommand.objects.bulk_create(commands, batch_size=500)
    # created_at is set on insert; the history's commands were sent when their incidents were worked.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {RemoteCommand._meta.db_table} c SET created_at = v.at "
            "FROM unnest(%s::uuid[], %s::timestamptz[]) AS v(id, at) WHERE c.id = v.id",
            [[c.pk for c in commands], [i.first_remote_at for i in incidents]],
        )
    IncidentCommand.objects.bulk_create(links, batch_size=500)
    TimelineEntry.objects.bulk_create(entries, batch_size=1000)
    # The feed's cursors start after the demo's own history: only what the simulator does from now on is news.
    engine.run_until_drained()
    return len(incidents)
