"""The console's navigation shows each person the screens their role may open, as the apps registered them."""

import re

import pytest

from core import registry
from tests.factories import UserFactory


def nav_links(response) -> list[tuple[str, str, bool]]:
    """(label, href, current) of each link in the top navigation, in order."""
    html = response.content.decode()
    nav = re.search(r'<nav class="topnav">(.*?)</nav>', html, re.S).group(1)
    return [
        (label.strip(), href, "aria-current" in attrs)
        for href, attrs, label in re.findall(r'<a href="([^"]+)"([^>]*)>([^<]*)</a>', nav)
    ]


@pytest.mark.parametrize(
    ("role", "page", "links"),
    [
        (
            "operations_manager",
            "/incidents/",
            [
                ("事件处置", "/incidents/", True),
                ("工单", "/workorders/", False),
                ("巡检", "/inspections/", False),
                ("备件", "/parts/", False),
                ("设备看板", "/", False),
                ("登记新终端", "/provision/", False),
                ("用户引导", "/guidance/", False),
                ("应急演练", "/drills/", False),
                ("统计分析", "/analytics/", False),
            ],
        ),
        (
            "field_technician",
            "/incidents/",
            [
                ("我的工单", "/workorders/m/", False),
                ("事件处置", "/incidents/", True),
                ("我的巡检", "/inspections/m/", False),
                ("备件", "/parts/", False),
                ("设备看板", "/", False),
            ],
        ),
        (
            "finance_officer",
            "/reconciliation/",
            [
                ("设备看板", "/", False),
                ("对账", "/reconciliation/", True),
                ("对账日报", "/reconciliation/reports/", False),
                ("缴费查询", "/reconciliation/lookup/", False),
                ("文件导入", "/reconciliation/imports/", False),
            ],
        ),
        (
            "counter_staff",
            "/reconciliation/lookup/",
            [("用户引导", "/guidance/", False), ("缴费查询", "/reconciliation/lookup/", True)],
        ),
    ],
)
def test_each_role_sees_in_chinese_the_screens_it_may_open_and_no_other(client, db, role, page, links):
    client.force_login(UserFactory(role=role, regions="all"))

    response = client.get(page)

    assert response.status_code == 200
    assert nav_links(response) == links


def test_an_administrator_sees_every_screen_and_the_administration(admin_client):
    labels = [label for label, _, _ in nav_links(admin_client.get("/"))]

    assert labels == [
        "我的工单",
        "事件处置",
        "我的巡检",
        "工单",
        "巡检",
        "备件",
        "设备看板",
        "登记新终端",
        "用户引导",
        "应急演练",
        "对账",
        "对账日报",
        "缴费查询",
        "文件导入",
        "统计分析",
        "管理后台",
    ]


def test_the_navigation_speaks_english_to_a_reader_who_chose_it(client, db):
    client.force_login(UserFactory(role="counter_staff", regions="all"))
    client.cookies["django_language"] = "en"

    response = client.get("/reconciliation/lookup/")

    assert [label for label, _, _ in nav_links(response)] == ["Citizen guidance", "Payment lookup"]


def test_a_registered_entry_appears_only_for_users_holding_its_permission(client, db, monkeypatch):
    # An app plugged in later: its entry shows for technical support (who may change error codes), not for a
    # field technician, without any change to accounts or the base template.
    monkeypatch.setattr(registry._registry, "nav", dict(registry._registry.nav))
    registry.add_nav(registry.NavEntry("landing", "故障代码", ("fleet.change_errorcode",), order=15))

    client.force_login(UserFactory(role="technical_support", regions="all"))
    assert "故障代码" in [label for label, _, _ in nav_links(client.get("/"))]

    client.force_login(UserFactory(role="field_technician", regions="all"))
    assert "故障代码" not in [label for label, _, _ in nav_links(client.get("/"))]
