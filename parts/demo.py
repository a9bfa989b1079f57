"""Demo data for spare parts (`make run`): the catalog of the parts the kiosks use, a store in each district and a
van for each technician, stocked through the ledger like real stock (receipts, then transfers to the vans), with
one lot of receipt paper close to its expiry date and one expired, a store below its own reorder point for card
readers, monthly count schedules (one due in two days, one van's overdue) and the alerts raised. Idempotent: a
second run changes nothing."""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import Region
from accounts.roles import Role
from parts import services
from parts.models import CountSchedule, Depot, Lot, Movement, Part, ReorderLevel

# part number, name, component, unit, expires, reorder point, reorder quantity
CATALOG = (
    ("PRN-80T", "80毫米热敏凭条打印机", "receipt_printer", "台", False, 2, 4),
    ("CRD-EMV", "EMV 读卡器模块", "card_reader", "个", False, 2, 4),
    ("QRS-2D", "二维码扫码器", "qr_scanner", "个", False, 2, 4),
    ("CSH-BV", "纸币识别器", "cash_module", "个", False, 1, 2),
    ("TS-19", "19英寸触摸屏", "touchscreen", "块", False, 1, 2),
    ("MB-X86", "主板", "mainboard", "块", False, 1, 2),
    ("NET-4G", "4G 网络模块及网线", "network", "套", False, 2, 4),
    ("PSU-12", "电源适配器", "power", "个", False, 2, 4),
    ("PAP-80", "80毫米热敏纸卷", "receipt_printer", "卷", True, 40, 100),
)
# What one unit costs (yuan): the review's parts spending and expiry losses.
PRICES = {
    "PRN-80T": "860.00",
    "CRD-EMV": "1250.00",
    "QRS-2D": "420.00",
    "CSH-BV": "2300.00",
    "TS-19": "1980.00",
    "MB-X86": "2650.00",
    "NET-4G": "380.00",
    "PSU-12": "160.00",
    "PAP-80": "6.50",
}
VAN_KIT = {"PRN-80T": 1, "CRD-EMV": 1, "QRS-2D": 1, "PSU-12": 1, "PAP-80": 10}


@dataclass
class DemoParts:
    created: bool
    parts: int = 0
    depots: int = 0


def seed_parts_demo() -> DemoParts:
    if Part.objects.exists():
        return DemoParts(created=False)
    keeper = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    if keeper is None or not Region.objects.exists():
        return DemoParts(created=False)
    with transaction.atomic():
        parts = {
            number: Part.objects.create(
                part_number=number,
                name=name,
                component=component,
                unit=unit,
                expires=expires,
                reorder_point=point,
                reorder_quantity=quantity,
                unit_price=PRICES.get(number),
            )
            for number, name, component, unit, expires, point, quantity in CATALOG
        }
        today = timezone.localdate()
        stores = {}
        for n, region in enumerate(Region.objects.order_by("code")):
            store = Depot.objects.create(
                code=f"{region.code}-store", name=f"{region.name}备件库", kind=Depot.Kind.STORE, region=region
            )
            stores[region.code] = store
            for number, part in parts.items():
                # A few stores run low on a part the vans do not carry, so the reorder list has something in it.
                low = number not in VAN_KIT and (n + len(number)) % 5 == 0
                quantity = max(part.reorder_point - 1, 1) if low else part.reorder_quantity * 2 + 20
                expires_on = today + timedelta(days=400) if part.expires else None
                services.part_receive(
                    part=part,
                    depot=store,
                    quantity=quantity,
                    lot_number=f"{number}-{today:%y%m}-{n:02d}",
                    actor=keeper,
                    expires_on=expires_on,
                )
        # A lot of paper close to its expiry in the first district's store: the expiry list shows it.
        first = next(iter(stores.values()))
        services.part_receive(
            part=parts["PAP-80"],
            depot=first,
            quantity=12,
            lot_number=f"PAP-80-{today:%y%m}-OLD",
            actor=keeper,
            expires_on=today + timedelta(days=12),
        )
        vans = 0
        for user in get_user_model().objects.filter(groups__name=Role.FIELD_TECHNICIAN).order_by("username"):
            region = (
                user.operator_profile.regions.order_by("code").first() if hasattr(user, "operator_profile") else None
            )
            if region is None or region.code not in stores:
                continue
            van = Depot.objects.create(
                code=f"van-{user.username}"[:32],
                name=f"{user.last_name}{user.first_name}的车",
                kind=Depot.Kind.VAN,
                region=region,
                holder=user,
            )
            vans += 1
            for number, quantity in VAN_KIT.items():
                lot = (
                    Lot.objects.filter(
                        part=parts[number], balances__depot=stores[region.code], balances__quantity__gte=quantity
                    )
                    .order_by("-expires_on", "pk")
                    .first()
                )
                services.stock_transfer(
                    lot=lot, source=stores[region.code], target=van, quantity=quantity, actor=keeper, reason="车载配备"
                )
        # A lot of paper that expired on the shelf of the second store (received when it was still good): the
        # console shows it red and the alert says to scrap it.
        second = list(stores.values())[1] if len(stores) > 1 else first
        expired = Lot.objects.create(
            part=parts["PAP-80"],
            lot_number=f"PAP-80-{today:%y%m}-EXP",
            expires_on=today - timedelta(days=3),
            received_on=today - timedelta(days=200),
        )
        Movement.objects.create(
            at=timezone.now() - timedelta(days=200),
            kind=Movement.Kind.RECEIVE,
            lot=expired,
            target=second,
            quantity=6,
            actor=keeper,
            reason="期初库存",
        )
        # One store keeps more of the card reader than the catalog says: below its own reorder point.
        ReorderLevel.objects.create(depot=first, part=parts["CRD-EMV"], reorder_point=60, reorder_quantity=40)
        # Monthly counts: the first store's is due in two days, one van's is overdue, the rest later this month.
        for n, depot in enumerate(Depot.objects.order_by("kind", "code")):
            due = today + timedelta(days=2) if depot == first else today + timedelta(days=7 + n % 20)
            CountSchedule.objects.create(depot=depot, every_days=30, due_on=due)
        overdue = Depot.objects.filter(kind=Depot.Kind.VAN).order_by("code").first()
        if overdue is not None:
            CountSchedule.objects.filter(depot=overdue).update(due_on=today - timedelta(days=1))
        services.parts_alerts_refresh()
    return DemoParts(created=True, parts=len(parts), depots=len(stores) + vans)
