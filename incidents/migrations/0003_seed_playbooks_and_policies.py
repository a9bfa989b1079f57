"""Seed the triage playbooks (the contingency plan's first checks, 排查步骤), the SLA targets per severity and a
default escalation chain per severity. Operators edit them in the admin afterwards; this only adds what is
missing, so a re-run or a later edit is never overwritten."""

from django.db import migrations

PLAYBOOKS = {
    "wont_start": (
        "无法启动或无反应",
        [
            ("power", "检查电源线和插座是否松动、大厅是否停电"),
            ("self_test", "按自检键并读取屏幕上的故障代码"),
            ("sleep", "确认是否长时间闲置后强制关机或自动休眠"),
            ("remote_restart", "远程重启设备，观察是否恢复心跳"),
        ],
    ),
    "transaction_failures": (
        "交易失败频繁",
        [
            ("outlets", "检查钞箱、票据出口是否堵塞"),
            ("payment_modules", "检查刷卡器、扫码器等支付模块连接是否正常"),
            ("journal", "检查交易日志是否完整、有无重复记录"),
            ("remote_self_test", "远程执行支付模块自检"),
        ],
    ),
    "physical_damage": (
        "机具损坏或异常显示",
        [
            ("stop_use", "停止使用，张贴“设备维修中”（远程切换停止服务画面）"),
            ("photo", "拍照记录损坏情况"),
            ("supplier", "联系供应商维修或更换"),
        ],
    ),
    "connection_lost": (
        "网络连接中断",
        [
            ("link", "检查 Wi-Fi 或网线连接"),
            ("router", "重启路由器或交换机"),
            ("carrier", "用手机热点测试运营商网络"),
            ("hall", "确认同一服务厅其他设备是否同时离线（大厅网络或供电）"),
        ],
    ),
    "transmission_delay": (
        "数据传输延迟",
        [
            ("bandwidth", "检查是否有其他设备占用带宽"),
            ("protocol", "请技术支持优化传输协议参数"),
            ("backup_line", "高峰时段启用备用线路"),
        ],
    ),
    "system_crash": (
        "系统崩溃",
        [
            ("force_restart", "长按电源键强制重启，记录是否触发保护机制"),
            ("patch", "确认是否有可用补丁，由技术支持远程推送"),
            ("factory_reset", "仍无法解决：先备份数据，再恢复出厂设置"),
        ],
    ),
    "module_failure": (
        "功能模块失效",
        [
            ("driver", "检查该模块的驱动和配置"),
            ("restart_module", "远程重启该模块"),
            ("replace", "仍无法使用：现场更换部件"),
        ],
    ),
    "tampering": (
        "安全事件：疑似盗刷或被撬",
        [
            ("out_of_service", "立即停止服务（远程切换停止服务画面），禁止继续使用"),
            ("security", "通知安全联系人，保护现场，勿擦拭设备"),
            ("evidence", "核对冻结的心跳与故障代码证据，拍照记录读卡口与机柜"),
            ("police", "确认存在盗刷装置时报警并配合调查"),
        ],
    ),
}

SLA = [
    # severity, acknowledge, first remote attempt, onsite arrival, resolve (minutes), clock
    (1, 5, 15, 60, 240, "wall"),
    (2, 15, 30, 120, 480, "opening_hours"),
    (3, 30, 60, 240, 1440, "opening_hours"),
    (4, 120, 240, 1440, 2880, "opening_hours"),
]

CHAINS = {
    1: ("P1 升级链", [("technical_support", 5), ("operations_manager", 10), ("operations_manager", 15)]),
    2: ("P2 升级链", [("technical_support", 15), ("operations_manager", 30)]),
    3: ("P3 升级链", [("technical_support", 30), ("operations_manager", 60)]),
    4: ("P4 升级链", [("operations_manager", 120)]),
}


def seed(apps, schema_editor):
    Playbook = apps.get_model("incidents", "Playbook")
    PlaybookVersion = apps.get_model("incidents", "PlaybookVersion")
    SlaPolicy = apps.get_model("incidents", "SlaPolicy")
    EscalationChain = apps.get_model("incidents", "EscalationChain")
    EscalationStep = apps.get_model("incidents", "EscalationStep")
    for kind, (title, steps) in PLAYBOOKS.items():
        playbook, created = Playbook.objects.get_or_create(fault_kind=kind, defaults={"title": title})
        if created:
            PlaybookVersion.objects.create(
                playbook=playbook,
                number=1,
                steps=[{"key": key, "text": text} for key, text in steps],
                note="应急预案首版",
            )
    for severity, ack, remote, onsite, resolve, clock in SLA:
        SlaPolicy.objects.get_or_create(
            severity=severity,
            defaults=dict(acknowledge_min=ack, remote_min=remote, onsite_min=onsite, resolve_min=resolve, clock=clock),
        )
    for severity, (name, steps) in CHAINS.items():
        chain, created = EscalationChain.objects.get_or_create(severity=severity, region=None, defaults={"name": name})
        if created:
            EscalationStep.objects.bulk_create(
                EscalationStep(chain=chain, position=n, role=role, wait_min=wait)
                for n, (role, wait) in enumerate(steps, start=1)
            )


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_timeline_append_only")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
