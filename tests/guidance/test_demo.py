"""The demo's guidance: every region gets the online platform, hotline and fees, once; what people changed stays."""

import pytest
from django.core.management import call_command

from guidance.models import RegionGuidance
from tests.factories import RegionFactory

pytestmark = pytest.mark.django_db


def test_seeding_the_demo_twice_gives_every_region_its_guidance_once_and_keeps_changes():
    RegionFactory(code="huangpu", name="黄浦区")
    RegionFactory(code="xuhui", name="徐汇区")

    call_command("seed_guidance_demo", stdout=open("/dev/null", "w"))
    RegionGuidance.objects.filter(region__code="xuhui").update(hotline="021-12345678")
    call_command("seed_guidance_demo", stdout=open("/dev/null", "w"))

    rows = {g.region.code: g for g in RegionGuidance.objects.select_related("region")}
    assert set(rows) == {"huangpu", "xuhui"}
    assert rows["huangpu"].online_platform_name == "上海市“一网通办”"
    assert rows["huangpu"].online_platform_url == "https://zwdt.sh.gov.cn"
    assert rows["huangpu"].hotline == "12345"
    assert "居民身份证工本费" in rows["huangpu"].fee_list
    assert rows["xuhui"].hotline == "021-12345678"
