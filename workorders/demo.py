"""Demo data for onsite work (`make run`): technicians with skills and bases, and orders on the demo technician's
phone for incidents that a remote module restart did not fix. Idempotent: a second run changes nothing.

The incidents are reported by hand (hall staff saw the printer jam, the cracked screen …) so the simulator's kiosks,
which are healthy, do not resolve them by themselves; the simulator answers the functional test's self-test."""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone, translation

from accounts.models import Region
from accounts.roles import Role
from accounts.services import operator_set_scope
from fleet.demo import DEMO_PASSWORD
from fleet.models import Kiosk, RemoteCommand
from incidents import services as incident_services
from incidents.models import IncidentCommand
from incidents.services import ManualReport
from workorders import services
from workorders.models import TechnicianProfile, WorkOrder

# username, given name, family name, regions, base (name, lat, lon), models trained on
TECHNICIANS = (
    (
        "technician",
        "强",
        "李",
        ("xuhui", "minhang"),
        ("徐汇维修站", "31.1930", "121.4400"),
        ("GRG ZW-H68", "SNBC BST-660Z", "Cashway CW-ZF3100"),
    ),
    (
        "technician2",
        "军",
        "赵",
        ("xuhui",),
        ("漕河泾维修站", "31.1700", "121.4000"),
        ("GRG ZW-H68", "KingTeller KT-ZW560"),
    ),
    (
        "technician3",
        "洋",
        "孙",
        ("minhang",),
        ("莘庄维修站", "31.1120", "121.3850"),
        ("SNBC BST-660Z", "Yingtai YT-G20"),
    ),
)

# fault kind, component, what hall staff reported, the remote command that did not help and what it said
CASES = (
    (
        "module_failure",
        "receipt_printer",
        "凭条打印机卡纸，市民缴费后拿不到凭条",
        "restart_module",
        "打印模块重启后仍卡纸 (E-PRN-001)",
    ),
    ("physical_damage", "touchscreen", "触摸屏右下角有裂纹，部分区域点击无反应", "self_test", "自检发现触摸屏区域失灵"),
    (
        "transaction_failures",
        "card_reader",
        "近一小时刷卡多次失败，扫码支付正常",
        "restart_module",
        "读卡器重启后仍报硬件错误",
    ),
)


@dataclass
class DemoWorkOrders:
    created: bool
    technicians: int = 0
    orders: int = 0


def seed_workorders_demo() -> DemoWorkOrders:
    if WorkOrder.objects.exists():  # the demo's orders, or real ones: either way nothing is added
        return DemoWorkOrders(created=False)
    manager = get_user_model().objects.filter(username="manager").first()
    if manager is None or not Region.objects.filter(code="xuhui").exists():
        return DemoWorkOrders(created=False)
    with transaction.atomic(), translation.override("zh-hans"):
        technicians = _technicians()
        orders = _orders(manager, technicians[0])
    return DemoWorkOrders(created=True, technicians=len(technicians), orders=orders)


def _technicians() -> list:
    User = get_user_model()
    regions = {region.code: region for region in Region.objects.all()}
    group = Group.objects.get(name=Role.FIELD_TECHNICIAN)
    password = make_password(DEMO_PASSWORD)
    people = []
    for username, given, family, codes, (base, lat, lon), models in TECHNICIANS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.first_name, user.last_name, user.password = given, family, password
            user.email = f"{username}@kioskops.example"
            user.save()
            user.groups.add(group)
            operator_set_scope(user=user, regions=[regions[code] for code in codes if code in regions])
        TechnicianProfile.objects.update_or_create(
            user=user,
            defaults={"models_trained": list(models), "base_name": base, "base_latitude": lat, "base_longitude": lon},
        )
        people.append(user)
    return people


def _orders(manager, technician) -> int:
    # One kiosk in each of the first halls of the district: the phone lists orders in different places.
    candidates = (
        Kiosk.objects.filter(site__region__code="xuhui", status__in=[Kiosk.Status.ONLINE, Kiosk.Status.PROVISIONED])
        .select_related("site")
        .order_by("site__code", "serial")
    )
    by_site: dict[int, Kiosk] = {}
    for kiosk in candidates:
        by_site.setdefault(kiosk.site_id, kiosk)
    kiosks = list(by_site.values())[: len(CASES)]
    now = timezone.now()
    made = 0
    for n, (kiosk, (kind, component, symptom, command_kind, detail)) in enumerate(zip(kiosks, CASES, strict=False)):
        incident, _created = incident_services.incident_report(
            report=ManualReport(
                kiosk=kiosk,
                fault_kind=kind,
                symptom=symptom,
                observed_at=now - timedelta(minutes=90 - n * 20),
                reporter_name="大厅值班人员",
            ),
            actor=manager,
        )
        incident.component = component
        incident.save(update_fields=["component"])
        incident_services.incident_acknowledge(incident=incident, actor=manager)
        # The remote fix that did not help: a command the kiosk answered with a failure.
        params = {"module": component} if command_kind == "restart_module" else {}
        command = RemoteCommand.objects.create(
            kiosk=kiosk,
            kind=command_kind,
            params=params,
            created_by=manager,
            status=RemoteCommand.Status.FAILED,
            expires_at=now + timedelta(minutes=30),
            delivered_at=now - timedelta(minutes=40 - n * 5),
            delivery_count=1,
            completed_at=now - timedelta(minutes=38 - n * 5),
            result_detail=detail,
        )
        IncidentCommand.objects.create(incident=incident, command=command)
        incident_services.incident_commands_sync(now=now)  # records the failure and proposes onsite dispatch
        incident.refresh_from_db()
        order = services.work_order_create(incident=incident, actor=manager, assignee=technician)
        if n == 0:  # one is already late: the phone lists it first, in red
            WorkOrder.objects.filter(pk=order.pk).update(due_at=now - timedelta(minutes=25))
        if n == 1:
            services.work_order_accept(order=order, actor=technician)
        made += 1
    return made
