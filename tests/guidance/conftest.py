"""Citizen guidance tests: a district with its online platform, a hall with kiosks working and out of service, its
contact on duty (who must never appear publicly), and two other halls at known distances."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.core.cache import cache

from fleet.models import Kiosk
from guidance import services
from tests.factories import KioskFactory, RegionFactory, SiteFactory

seed_migration = importlib.import_module("incidents.migrations.0003_seed_playbooks_and_policies")
error_codes_migration = importlib.import_module("fleet.migrations.0002_seed_error_codes")
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
ALL_OK = {"card_reader": "ok", "qr_scanner": "ok", "cash_module": "ok", "receipt_printer": "ok", "network": "ok"}

DUTY_NAME = "周建国"
DUTY_PHONE = "13912345678"


TEST_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "guidance-tests"}}


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Rate-limit counters and cached pages live in the cache: each test starts without them, in a cache of its
    own (clearing the configured one would empty a Redis database others may share)."""
    settings.CACHES = TEST_CACHE
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def policies(db):
    seed_migration.seed(django_apps, None)
    error_codes_migration.seed(django_apps, None)


def set_kiosk(kiosk, status, components=None):
    Kiosk.objects.filter(pk=kiosk.pk).update(status=status, components=components or {})
    kiosk.refresh_from_db()
    return kiosk


@pytest.fixture
def huangpu(db):
    region = RegionFactory(code="huangpu", name="黄浦区")
    services.region_guidance_set(
        region=region,
        platform_name="上海市“一网通办”",
        platform_url="https://zwdt.sh.gov.cn",
        hotline="12345",
        fees=["居民身份证工本费", "户口簿工本费", "出入境证件费"],
    )
    return region


@pytest.fixture
def hall(huangpu, policies):
    """黄浦区政务服务中心: two kiosks working (one without cash), one offline; 1 km and 5 km from two others."""
    site = SiteFactory(
        region=huangpu,
        code="hp-01",
        name="黄浦区政务服务中心",
        address="西藏南路 1 号",
        latitude=Decimal("31.230000"),
        longitude=Decimal("121.480000"),
        opening_hours=ALWAYS_OPEN,
        counter_location="一楼3号综合窗口",
        duty_contact_name=DUTY_NAME,
        duty_contact_phone=DUTY_PHONE,
    )
    set_kiosk(KioskFactory(site=site, serial="KS-HP-0001", location="一楼大厅东侧"), "online", ALL_OK)
    set_kiosk(
        KioskFactory(site=site, serial="KS-HP-0002", location="一楼大厅西侧"),
        "degraded",
        ALL_OK | {"cash_module": "hardware_error"},
    )
    set_kiosk(KioskFactory(site=site, serial="KS-HP-0003", location="二楼等候区", asset_tag="ZW-HP-0003"), "offline")
    near = SiteFactory(
        region=huangpu,
        code="hp-02",
        name="外滩街道社区事务受理中心",
        address="中山东二路 9 号",
        latitude=Decimal("31.239000"),  # about 1 km north
        longitude=Decimal("121.480000"),
    )
    set_kiosk(KioskFactory(site=near, serial="KS-HP-0010"), "online", ALL_OK)
    far = SiteFactory(
        region=RegionFactory(code="jingan", name="静安区"),
        code="ja-01",
        name="静安区政务服务中心",
        address="天目中路 1 号",
        latitude=Decimal("31.275000"),  # about 5 km north
        longitude=Decimal("121.480000"),
    )
    set_kiosk(KioskFactory(site=far, serial="KS-JA-0001"), "online", ALL_OK)
    dark = SiteFactory(
        region=huangpu,
        code="hp-03",
        name="没有可用自助机的大厅",
        latitude=Decimal("31.2301"),
        longitude=Decimal("121.4801"),
    )
    set_kiosk(KioskFactory(site=dark, serial="KS-HP-0020"), "offline")
    return site
