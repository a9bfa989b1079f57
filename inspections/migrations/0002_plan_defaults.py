"""The contingency plan's prevention schedule as the default (editable in the admin): daily — device state,
printing and payment functions; weekly — network connection test; monthly — software update and patch install;
each applied to all kiosks."""

from django.db import migrations

TEMPLATES = [
    (
        "daily",
        "每日巡检",
        "daily",
        "设备状态、打印和支付功能",
        [
            ("device_state", "设备状态（远程自检）", "", "remote", "self_test", "self_test", "module_failure"),
            ("printing", "打印功能", "打印一张测试凭条：字迹清晰、切纸正常、纸量充足", "phone", "", "", "module_failure"),
            ("payment", "支付功能", "扫码和刷卡各做一笔测试缴费（0.01 元）并撤销", "phone", "", "", "transaction_failures"),
            ("appearance", "外观与安全", "屏幕、外壳无破损；读卡口、键盘无加装异物", "phone", "", "", "physical_damage"),
        ],
    ),
    (
        "weekly",
        "每周网络测试",
        "weekly",
        "网络连接测试",
        [
            ("network", "网络连接测试（远程）", "", "remote", "network_test", "network_test", "connection_lost"),
        ],
    ),
    (
        "monthly",
        "每月软件更新",
        "monthly",
        "软件更新与补丁安装",
        [
            ("software_version", "软件版本（与核准版本比对）", "", "remote", "", "software_version", ""),
            ("patch_install", "补丁安装与重启验证", "确认已安装最新补丁，重启后各功能正常", "phone", "", "", "system_crash"),
        ],
    ),
]


def seed(apps, schema_editor):
    Template = apps.get_model("inspections", "InspectionTemplate")
    Check = apps.get_model("inspections", "TemplateCheck")
    Schedule = apps.get_model("inspections", "Schedule")
    for code, name, frequency, description, checks in TEMPLATES:
        template, created = Template.objects.get_or_create(
            code=code, defaults={"name": name, "frequency": frequency, "description": description}
        )
        if not created:
            continue
        for position, (key, label, hint, mode, command, judge, fault_kind) in enumerate(checks):
            Check.objects.create(
                template=template,
                key=key,
                label=label,
                hint=hint,
                mode=mode,
                command=command,
                judge=judge,
                fault_kind=fault_kind,
                position=position,
            )
        Schedule.objects.create(template=template, scope="all")


class Migration(migrations.Migration):
    dependencies = [("inspections", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
