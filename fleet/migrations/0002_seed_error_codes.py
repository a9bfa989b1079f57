"""Seed the error-code catalog with the codes of the contingency plan's fault taxonomy.

Operators edit the catalog in the admin afterwards; this migration only adds codes that are missing."""

from django.db import migrations

# code, component, category, kind, severity, title_zh, title_en, first checks zh, first checks en
CODES = [
    ("E-PWR-001", "power", "device", "wont_start", "critical", "电源故障：设备无法启动", "Power failure: kiosk will not start",
     "检查电源线和插座是否松动\n按自检键并读取故障代码\n确认是否因长时间闲置强制关机或自动休眠",
     "Check the power cable and socket\nPress the self-test key and read the fault code\nCheck for a forced shutdown or auto-sleep after long idle"),
    ("E-PWR-002", "power", "device", "wont_start", "warning", "市电中断，UPS 供电中", "Mains lost, running on UPS",
     "确认大厅供电是否正常\n估算 UPS 剩余时间，必要时张贴“设备维修中”",
     "Check the hall's mains supply\nEstimate remaining UPS time; post \"out of service\" if needed"),
    ("E-MB-001", "mainboard", "device", "wont_start", "critical", "主板无响应", "Mainboard not responding",
     "观察电源指示灯与屏幕是否黑屏\n按自检键读取故障代码\n远程重启无效则派现场更换主板",
     "Look at the power light and whether the screen is black\nPress the self-test key and read the fault code\nIf a remote restart fails, dispatch onsite to replace the mainboard"),
    ("E-TXN-001", "card_reader", "device", "transaction_failures", "warning", "交易失败频繁", "Frequent transaction failures",
     "检查刷卡器、扫码器等支付模块连接\n检查钞箱/票据出口是否堵塞\n检查交易日志是否完整、有无重复记录",
     "Check the payment modules (card reader, scanner) are connected\nCheck the cash box / receipt outlet for jams\nCheck the transaction log is complete, with no duplicate records"),
    ("E-TXN-002", "mainboard", "device", "transaction_failures", "critical", "交易记录未能保存", "Transaction records not saved",
     "检查磁盘剩余空间\n检查交易日志是否完整、有无重复记录\n联系技术支持核对已上传流水",
     "Check free disk space\nCheck the transaction log is complete, with no duplicates\nAsk technical support to compare with uploaded journals"),
    ("E-CASH-001", "cash_module", "device", "transaction_failures", "warning", "钞箱堵塞", "Cash box jammed",
     "打开钞箱检查堵塞纸币\n清理后执行模块自检",
     "Open the cash box and clear the jammed notes\nRun the module self-test after clearing"),
    ("E-CASH-002", "cash_module", "device", "transaction_failures", "warning", "钞箱将满", "Cash box nearly full",
     "安排清机收款\n清机前暂停现金收款", "Schedule a cash collection\nSuspend cash payments until collected"),
    ("E-PRN-001", "receipt_printer", "device", "physical_damage", "warning", "打印机卡纸", "Receipt printer paper jam",
     "打开打印机舱清除卡纸\n检查打印头是否损坏\n执行打印自检",
     "Open the printer bay and clear the jam\nCheck the print head for damage\nRun a print self-test"),
    ("E-PRN-002", "receipt_printer", "device", "module_failure", "info", "打印纸将尽", "Receipt paper low",
     "更换打印纸卷", "Replace the paper roll"),
    ("E-PRN-003", "receipt_printer", "device", "module_failure", "warning", "打印纸用尽", "Receipt paper out",
     "更换打印纸卷\n引导市民通过其他渠道获取缴费凭证", "Replace the paper roll\nGuide citizens to get their payment voucher another way"),
    ("E-SCR-001", "touchscreen", "device", "physical_damage", "critical", "屏幕破裂或触摸失灵", "Cracked screen or dead touch",
     "停止使用并张贴“设备维修中”\n拍照记录损坏情况\n联系供应商维修或更换",
     "Stop use and post \"out of service\"\nPhotograph the damage\nContact the supplier for repair or replacement"),
    ("E-NET-001", "network", "network", "connection_lost", "critical", "网络连接中断", "Network connection lost",
     "检查 Wi-Fi 或网线连接\n重启路由器或交换机\n用手机热点测试运营商网络",
     "Check the Wi-Fi or network cable\nRestart the router or switch\nTest the carrier network with a phone hotspot"),
    ("E-NET-002", "network", "network", "transmission_delay", "warning", "数据传输延迟", "Data transmission delay",
     "检查是否有其他设备占用带宽\n请技术人员优化传输协议\n高峰时段启用备用线路",
     "Check for other devices taking bandwidth\nAsk tech support to tune the transfer protocol\nUse a backup line at peak hours"),
    ("E-SW-001", "mainboard", "software", "system_crash", "critical", "系统崩溃或死机", "System crash or freeze",
     "长按电源键强制重启（记录是否触发保护机制）\n确认是否有可用补丁（由技术人员推送）\n仍无法恢复时先备份数据再恢复出厂设置",
     "Long-press power to force a restart (note whether protection triggered)\nCheck whether a patch is available (tech support pushes it)\nIf it still fails, back up data then factory reset"),
    ("E-SW-002", "mainboard", "software", "system_crash", "warning", "应用异常重启", "Application restarted unexpectedly",
     "查看应用日志中的异常\n确认软件版本与补丁", "Read the application log for the exception\nCheck the software version and patches"),
    ("E-MOD-001", "qr_scanner", "software", "module_failure", "warning", "扫码模块失效", "QR scanner module failure",
     "检查扫码器驱动与配置\n远程重启模块\n仍无效则更换部件",
     "Check the scanner's driver and configuration\nRestart the module remotely\nReplace the part if it still fails"),
    ("E-MOD-002", "card_reader", "software", "module_failure", "warning", "刷卡模块失效", "Card reader module failure",
     "检查刷卡器驱动与配置\n远程重启模块\n仍无效则更换部件",
     "Check the card reader's driver and configuration\nRestart the module remotely\nReplace the part if it still fails"),
    ("E-SEC-001", "card_reader", "security", "tampering", "critical", "检测到疑似盗刷装置", "Suspected skimming device detected",
     "立即停止使用该设备\n不要触碰读卡口，保护现场\n通知安保与技术支持",
     "Stop the kiosk immediately\nDo not touch the card slot; preserve the scene\nNotify security and technical support"),
    ("E-SEC-002", "mainboard", "security", "tampering", "critical", "机箱被打开（防拆开关触发）", "Cabinet opened (tamper switch)",
     "核实是否为授权维护\n非授权则停止使用并通知安保",
     "Check whether this is authorised maintenance\nIf not, stop the kiosk and notify security"),
]


def seed(apps, schema_editor):
    ErrorCode = apps.get_model("fleet", "ErrorCode")
    existing = set(ErrorCode.objects.values_list("code", flat=True))
    ErrorCode.objects.bulk_create(
        [
            ErrorCode(
                code=code, component=component, category=category, kind=kind, severity=severity,
                title_zh=title_zh, title_en=title_en, first_checks_zh=checks_zh, first_checks_en=checks_en,
            )
            for code, component, category, kind, severity, title_zh, title_en, checks_zh, checks_en in CODES
            if code not in existing
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("fleet", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
