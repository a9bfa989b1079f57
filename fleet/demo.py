"""The demo fleet: Shanghai's sixteen districts, ~40 service halls, ~300 kiosks, one user per role.

Everything is generated from a fixed seed, so every `make run` builds the same fleet. The device tokens are
written to a keyring file (var/demo-tokens.json) because the database keeps only their hashes: the file is how
the simulator gets to speak for the demo kiosks, and it exists for the demo only.
"""

import json
import os
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import Region
from accounts.roles import Role
from accounts.services import operator_set_scope
from fleet import services
from fleet.models import DeviceCredential, Kiosk, Site

SEED = 20240601
DEMO_PASSWORD = "kioskops-demo"


@dataclass(frozen=True)
class District:
    code: str  # slug, used for Region.code and site codes
    name: str
    division: str  # the national administrative division code (行政区划代码), used in asset tags
    centre: tuple[float, float]  # (latitude, longitude) of the district's built-up centre
    spread: float  # how far (degrees) halls may lie from the centre and still be inside the district
    roads: tuple[str, ...]  # real roads of the district, for addresses
    streets: tuple[str, ...]  # 街道 and 镇 whose community affairs centres may get kiosks
    halls: int  # community affairs centres in the demo (besides the district centre)
    police: bool  # whether the police sub-bureau's household-registration hall has kiosks


DISTRICTS = (
    District("huangpu", "黄浦区", "310101", (31.2317, 121.4846), 0.010,
             ("福建中路", "西藏南路", "河南南路", "复兴中路", "徐家汇路"),
             ("南京东路街道", "外滩街道", "打浦桥街道", "淮海中路街道", "豫园街道", "五里桥街道"), 1, True),
    District("xuhui", "徐汇区", "310104", (31.1885, 121.4365), 0.020,
             ("漕溪北路", "宛平南路", "龙华西路", "田林路", "钦州路"),
             ("天平路街道", "湖南路街道", "田林街道", "康健新村街道", "长桥街道", "漕河泾街道", "华泾镇"), 1, True),
    District("changning", "长宁区", "310105", (31.2204, 121.4247), 0.015,
             ("长宁路", "天山路", "愚园路", "仙霞路", "哈密路"),
             ("华阳路街道", "江苏路街道", "新华路街道", "天山路街道", "仙霞新村街道", "新泾镇"), 1, False),
    District("jingan", "静安区", "310106", (31.2490, 121.4560), 0.018,
             ("共和新路", "万荣路", "延长中路", "江场西路", "康定路"),
             ("江宁路街道", "南京西路街道", "曹家渡街道", "大宁路街道", "彭浦新村街道", "临汾路街道", "彭浦镇"),
             1, True),
    District("putuo", "普陀区", "310107", (31.2495, 121.3972), 0.018,
             ("大渡河路", "曹杨路", "长寿路", "真北路", "同普路"),
             ("曹杨新村街道", "长风新村街道", "长寿路街道", "甘泉路街道", "万里街道", "长征镇", "桃浦镇"), 1, False),
    District("hongkou", "虹口区", "310109", (31.2646, 121.5052), 0.012,
             ("飞虹路", "四川北路", "大连西路", "曲阳路", "广灵二路"),
             ("欧阳路街道", "曲阳路街道", "广中路街道", "嘉兴路街道", "凉城新村街道", "北外滩街道"), 0, False),
    District("yangpu", "杨浦区", "310110", (31.2700, 121.5260), 0.020,
             ("江浦路", "控江路", "四平路", "国和路", "殷行路"),
             ("平凉路街道", "江浦路街道", "控江路街道", "延吉新村街道", "殷行街道", "五角场街道", "长海路街道"),
             1, True),
    District("minhang", "闵行区", "310112", (31.1128, 121.3818), 0.050,
             ("沪闵路", "莘松路", "七莘路", "虹梅南路", "都市路"),
             ("江川路街道", "古美路街道", "新虹街道", "莘庄镇", "七宝镇", "梅陇镇", "浦江镇", "华漕镇"), 2, True),
    District("baoshan", "宝山区", "310113", (31.3900, 121.4500), 0.050,
             ("友谊路", "牡丹江路", "淞滨路", "沪太路", "共和新路"),
             ("友谊路街道", "吴淞街道", "张庙街道", "大场镇", "顾村镇", "杨行镇", "罗店镇"), 1, True),
    District("jiading", "嘉定区", "310114", (31.3747, 121.2655), 0.060,
             ("博乐路", "塔城路", "城中路", "曹安公路", "墨玉路"),
             ("新成路街道", "真新街道", "嘉定镇街道", "南翔镇", "安亭镇", "马陆镇", "江桥镇"), 1, False),
    District("pudong", "浦东新区", "310115", (31.2215, 121.5446), 0.080,
             ("合欢路", "世纪大道", "张杨路", "浦东南路", "川沙路", "沪南公路"),
             ("陆家嘴街道", "潍坊新村街道", "塘桥街道", "花木街道", "洋泾街道", "金杨新村街道", "周家渡街道",
              "川沙新镇", "张江镇", "三林镇", "周浦镇", "惠南镇", "高桥镇"), 3, True),
    District("jinshan", "金山区", "310116", (30.7419, 121.3419), 0.060,
             ("龙山路", "卫零路", "蒙山路", "金山大道", "朱泾镇人民路"),
             ("石化街道", "朱泾镇", "枫泾镇", "亭林镇", "山阳镇"), 0, False),
    District("songjiang", "松江区", "310117", (31.0322, 121.2277), 0.060,
             ("荣乐东路", "中山中路", "人民北路", "文诚路", "谷阳北路"),
             ("岳阳街道", "永丰街道", "方松街道", "广富林街道", "九里亭街道", "泗泾镇", "九亭镇", "车墩镇"), 1, True),
    District("qingpu", "青浦区", "310118", (31.1510, 121.1241), 0.060,
             ("公园路", "城中北路", "华青路", "外青松公路", "淀山湖大道"),
             ("夏阳街道", "盈浦街道", "香花桥街道", "朱家角镇", "徐泾镇", "赵巷镇"), 1, False),
    District("fengxian", "奉贤区", "310120", (30.9178, 121.4740), 0.060,
             ("解放东路", "南桥路", "望园路", "百齐路", "环城东路"),
             ("西渡街道", "奉浦街道", "金海街道", "南桥镇", "奉城镇", "金汇镇"), 1, False),
    District("chongming", "崇明区", "310151", (31.6230, 121.3972), 0.050,
             ("人民路", "八一路", "翠竹路", "东门路", "鼓浦路"),
             ("城桥镇", "堡镇", "新河镇", "陈家镇", "长兴镇"), 0, False),
)  # fmt: skip

# District-level centres have their own names in some districts; the rest follow "<district>行政服务中心".
CENTRE_NAMES = {"pudong": "浦东新区市民中心", "jingan": "静安区政务服务中心", "minhang": "闵行区行政服务中心"}

# (vendor, model, share of the fleet, serial prefix, heartbeat interval in seconds or None for the default)
KIOSK_MODELS = (
    ("广电运通", "GRG ZW-H68", 0.35, "GRG", None),
    ("新北洋", "SNBC BST-660Z", 0.25, "SNB", None),
    ("恒银金融", "Cashway CW-ZF3100", 0.20, "CWF", None),
    ("御银", "KingTeller KT-ZW560", 0.12, "KTL", 30),
    ("中科英泰", "Yingtai YT-G20", 0.08, "YTG", 30),
)
SOFTWARE_VERSIONS = (("3.4.2", 0.6), ("3.4.1", 0.25), ("3.3.9", 0.1), ("3.5.0-rc1", 0.05))

# Opening hours of the kinds of hall (local time). Big district centres stay open through lunch; community
# centres and police halls close for lunch; some open on Saturday morning.
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
HOURS_CONTINUOUS = [["09:00", "17:00"]]
HOURS_WITH_LUNCH = [["09:00", "12:00"], ["13:30", "17:00"]]
HOURS_EARLY_WITH_LUNCH = [["08:30", "11:30"], ["13:00", "17:00"]]
SATURDAY_MORNING = [["09:00", "12:00"]]


def _opening_hours(weekday: list, saturday: list) -> dict:
    return {day: weekday for day in _WEEKDAYS} | {"sat": saturday, "sun": []}


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str | None  # None for the superuser
    first_name: str
    last_name: str
    regions: tuple[str, ...] | None  # region codes; None means every region


DEMO_USERS = (
    DemoUser("admin", None, "管理员", "", None),
    DemoUser("manager", Role.OPERATIONS_MANAGER, "敏", "王", None),
    DemoUser("support", Role.TECHNICAL_SUPPORT, "磊", "陈", None),
    DemoUser("technician", Role.FIELD_TECHNICIAN, "强", "李", ("xuhui", "minhang")),
    DemoUser("drill", Role.DRILL_COORDINATOR, "芳", "张", None),
    DemoUser("finance", Role.FINANCE_OFFICER, "静", "刘", None),
    DemoUser("supervisor", Role.FINANCE_SUPERVISOR, "伟", "赵", None),
    DemoUser("counter", Role.COUNTER_STAFF, "丽", "孙", ("huangpu", "xuhui")),
)

# Kiosks the demo starts in maintenance, so the board shows one from the first minute.
MAINTENANCE = {0: "更换热敏打印机（供应商上门）", 7: "触摸屏裂纹，等待备件"}


@dataclass
class PlannedKiosk:
    site_code: str
    serial: str
    asset_tag: str
    model: str
    installed_on: date
    software_version: str
    heartbeat_interval_s: int | None


@dataclass
class DemoPlan:
    """The whole demo fleet as plain data, before anything touches the database."""

    regions: list[Region] = field(default_factory=list)
    sites: list[tuple[str, Site]] = field(default_factory=list)  # (region code, unsaved site)
    kiosks: list[PlannedKiosk] = field(default_factory=list)


def build_plan(seed: int = SEED) -> DemoPlan:
    """Lay out regions, halls and kiosks deterministically from `seed` (the same serials on every run)."""
    rng = random.Random(seed)
    # A fixed "today" keeps installation dates, and so serials, the same whatever day the demo is seeded.
    today = date(2025, 6, 1)
    plan = DemoPlan()
    counters: dict[str, int] = {}
    for district in DISTRICTS:
        plan.regions.append(Region(code=district.code, name=district.name))
        halls = [(CENTRE_NAMES.get(district.code, f"{district.name}行政服务中心"), "centre")]
        if district.police:
            halls.append(
                (f"{district.name.removesuffix('新区').removesuffix('区')}公安分局户政出入境服务大厅", "police")
            )
        for street in rng.sample(district.streets, district.halls):
            halls.append((f"{street}社区事务受理服务中心", "community"))
        for number, (name, kind) in enumerate(halls, start=1):
            site = _plan_site(rng, district, number, name, kind)
            plan.sites.append((district.code, site))
            kiosk_count = {"centre": rng.randint(10, 14), "police": rng.randint(5, 7), "community": rng.randint(3, 6)}
            for _ in range(kiosk_count[kind]):
                plan.kiosks.append(_plan_kiosk(rng, district, site.code, counters, today))
    return plan


def _plan_site(rng: random.Random, district: District, number: int, name: str, kind: str) -> Site:
    lat, lon = district.centre
    # A hall within the district: the centre hall near the centre, others scattered inside `spread`.
    reach = district.spread * (0.3 if kind == "centre" else 1.0)
    latitude = Decimal(f"{lat + rng.uniform(-reach, reach):.6f}")
    longitude = Decimal(f"{lon + rng.uniform(-reach, reach):.6f}")
    if kind == "centre":
        hours = _opening_hours(HOURS_CONTINUOUS, SATURDAY_MORNING if rng.random() < 0.5 else [])
    elif kind == "police":
        hours = _opening_hours(HOURS_WITH_LUNCH, SATURDAY_MORNING)
    else:
        weekday = HOURS_WITH_LUNCH if rng.random() < 0.6 else HOURS_EARLY_WITH_LUNCH
        hours = _opening_hours(weekday, SATURDAY_MORNING if rng.random() < 0.3 else [])
    return Site(
        code=f"{district.code}-{number:02d}",
        name=name,
        # The district centre stands on the district's main road (listed first), the others anywhere.
        address=f"上海市{district.name}{district.roads[0] if kind == 'centre' else rng.choice(district.roads)}"
        f"{rng.randint(1, 1200)}号",
        latitude=latitude,
        longitude=longitude,
        opening_hours=hours,
    )


# Hall details drawn from an RNG of their own (seeded by the hall's code), so adding them left the fleet's
# serials, which come from the plan's RNG, unchanged.
DUTY_FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
DUTY_GIVEN = ("敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "建华")
KIOSK_SPOTS = ("一楼大厅东侧", "一楼大厅西侧", "一楼入口左侧", "二楼等候区", "自助服务区", "取号机旁")


def hall_details(site: Site) -> dict:
    """The staffed counter and the contact on duty of a demo hall."""
    rng = random.Random(f"hall:{site.code}")
    return {
        "counter_location": f"一楼{rng.randint(1, 12)}号综合窗口",
        "duty_contact_name": rng.choice(DUTY_FAMILY) + rng.choice(DUTY_GIVEN),
        "duty_contact_phone": f"021-{rng.randint(5000, 6999)}{rng.randint(1000, 9999)}",
    }


def kiosk_location(serial: str) -> str:
    return random.Random(f"kiosk:{serial}").choice(KIOSK_SPOTS)


def fill_hall_details() -> int:
    """Give demo halls and kiosks created before these fields existed their counter, contact and place (idempotent)."""
    filled = 0
    for site in Site.objects.filter(duty_contact_name=""):
        for name, value in hall_details(site).items():
            setattr(site, name, value)
        site.save(update_fields=["counter_location", "duty_contact_name", "duty_contact_phone"])
        filled += 1
    for kiosk in Kiosk.objects.filter(location="").only("id", "serial"):
        Kiosk.objects.filter(pk=kiosk.pk).update(location=kiosk_location(kiosk.serial))
    return filled


def _plan_kiosk(rng: random.Random, district: District, site_code: str, counters: dict, today: date) -> PlannedKiosk:
    _vendor, model, _share, prefix, interval = rng.choices(KIOSK_MODELS, weights=[m[2] for m in KIOSK_MODELS])[0]
    installed_on = today - timedelta(days=rng.randint(60, 5 * 365))
    counters[prefix] = counters.get(prefix, 0) + 1
    counters[district.code] = counters.get(district.code, 0) + 1
    version = rng.choices([v for v, _ in SOFTWARE_VERSIONS], weights=[w for _, w in SOFTWARE_VERSIONS])[0]
    return PlannedKiosk(
        site_code=site_code,
        serial=f"{prefix}{installed_on:%y}{counters[prefix]:05d}",
        asset_tag=f"ZW-{district.division}-{counters[district.code]:04d}",
        model=model,
        installed_on=installed_on,
        software_version=version,
        heartbeat_interval_s=interval,
    )


# --- Writing the demo -----------------------------------------------------------------------------------


@dataclass
class SeedResult:
    created: bool
    regions: int = 0
    sites: int = 0
    kiosks: int = 0
    users: list[DemoUser] = field(default_factory=list)
    keyring_path: Path | None = None
    tokens_reissued: int = 0


class DemoRefused(Exception):
    """The database holds a fleet that is not the demo's; seeding would mix fake kiosks into it."""


def keyring_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-tokens.json"


def demo_exists() -> bool:
    return Site.objects.filter(code=f"{DISTRICTS[0].code}-01").exists()


def seed_demo() -> SeedResult:
    """Create the demo fleet and users once. A second run changes nothing, except that it re-issues the tokens
    of demo kiosks missing from the keyring (e.g. after the var folder was deleted) so the simulator can run."""
    path = keyring_path()
    if demo_exists():
        fill_hall_details()
        return SeedResult(created=False, keyring_path=path, tokens_reissued=_repair_keyring(path))
    if Kiosk.objects.exists():
        raise DemoRefused(
            f"The database already has {Kiosk.objects.count()} kiosks that are not the demo's; "
            "seed_demo only seeds an empty fleet."
        )
    plan = build_plan()
    with transaction.atomic():
        tokens = _create_fleet(plan)
        fill_hall_details()
        users = _create_users()
    keyring_write(path, tokens)
    return SeedResult(
        created=True,
        regions=len(plan.regions),
        sites=len(plan.sites),
        kiosks=len(plan.kiosks),
        users=users,
        keyring_path=path,
    )


def _create_fleet(plan: DemoPlan) -> dict[str, str]:
    Region.objects.bulk_create(plan.regions)
    region_ids = dict(Region.objects.filter(code__in=[r.code for r in plan.regions]).values_list("code", "id"))
    for region_code, site in plan.sites:
        site.region_id = region_ids[region_code]
    Site.objects.bulk_create([site for _, site in plan.sites])
    sites = {site.code: site for site in Site.objects.filter(code__in=[s.code for _, s in plan.sites])}
    tokens = {}
    versions: dict[str, list[str]] = {}
    # kiosk_register is the one way a kiosk and its first token come into being; ~300 calls of a few queries
    # each take well under a second, so the demo does not bypass it for speed.
    for planned in plan.kiosks:
        kiosk, token = services.kiosk_register(
            site=sites[planned.site_code],
            serial=planned.serial,
            model=planned.model,
            asset_tag=planned.asset_tag,
            installed_on=planned.installed_on,
            heartbeat_interval_s=planned.heartbeat_interval_s,
        )
        tokens[kiosk.serial] = token
        versions.setdefault(planned.software_version, []).append(kiosk.serial)
    for version, serials in versions.items():
        Kiosk.objects.filter(serial__in=serials).update(software_version=version)
    admin = None
    for index, reason in MAINTENANCE.items():
        admin = admin or _admin_actor()
        kiosk = Kiosk.objects.get(serial=plan.kiosks[index].serial)
        services.kiosk_start_maintenance(kiosk=kiosk, actor=admin, reason=reason, until=None)
    return tokens


def _admin_actor():
    user, _ = get_user_model().objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True, "first_name": "管理员"}
    )
    return user


def _create_users() -> list[DemoUser]:
    User = get_user_model()
    regions = {r.code: r for r in Region.objects.all()}
    # Hashing is deliberately slow (PBKDF2); the users share one password, so hash it once.
    password_hash = make_password(DEMO_PASSWORD)
    for demo in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=demo.username)
        user.first_name, user.last_name = demo.first_name, demo.last_name
        user.email = f"{demo.username}@kioskops.example"
        user.is_staff = user.is_superuser = demo.role is None
        user.password = password_hash
        user.save()
        if demo.role:
            user.groups.add(Group.objects.get(name=demo.role))
            if demo.regions is None:
                operator_set_scope(user=user, all_regions=True)
            else:
                operator_set_scope(user=user, regions=[regions[code] for code in demo.regions])
    return list(DEMO_USERS)


# --- The keyring ----------------------------------------------------------------------------------------


def keyring_read(path: Path | None = None) -> dict[str, str]:
    path = path or keyring_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def keyring_write(path: Path, tokens: dict[str, str]) -> None:
    """Replace the keyring atomically, readable by its owner only: the tokens are live credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(dict(sorted(tokens.items())), fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, path)


def keyring_update(serial: str, token: str, path: Path | None = None) -> bool:
    """Put a kiosk's new token in the keyring if the kiosk is one of the simulated ones. True when it was."""
    path = path or keyring_path()
    tokens = keyring_read(path)
    if serial not in tokens:
        return False
    tokens[serial] = token
    keyring_write(path, tokens)
    return True


def _repair_keyring(path: Path) -> int:
    """Re-issue tokens for the live demo kiosks whose keyring entry is missing or no longer active."""
    tokens = keyring_read(path)
    active_hashes = set(
        DeviceCredential.objects.filter(revoked_at__isnull=True, kiosk__serial__in=list(tokens)).values_list(
            "token_hash", flat=True
        )
    )
    valid = {serial: token for serial, token in tokens.items() if services.hash_token(token) in active_hashes}
    missing = (
        Kiosk.objects.filter(serial__in=[k.serial for k in build_plan().kiosks])
        .exclude(serial__in=list(valid))
        .exclude(status=Kiosk.Status.RETIRED)
        .select_related("site")
    )
    reissued = 0
    with transaction.atomic():
        for kiosk in missing:
            valid[kiosk.serial] = services.credential_issue(kiosk=kiosk)
            reissued += 1
    if reissued or valid != tokens:
        keyring_write(path, valid)
    return reissued
