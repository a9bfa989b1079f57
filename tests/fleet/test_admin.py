"""The fleet's admin speaks Chinese: every list's title, column headers, filters and choice values, for each fleet
model registered there."""

import re

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from fleet import services
from fleet.models import ErrorCode, HeartbeatDeadLetter

pytestmark = pytest.mark.django_db

FLEET_MODELS = sorted(
    (model._meta.model_name for model in admin.site._registry if model._meta.app_label == "fleet"),
)
LATIN = re.compile(r"[A-Za-z]")


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def fleet_rows(kiosk, manager):
    """One row of every fleet model the admin lists, so each list renders its table."""
    services.command_enqueue(kiosk=kiosk, kind="restart_module", params={"module": "qr_scanner"}, actor=manager)
    services.command_enqueue(kiosk=kiosk, kind="factory_reset", params={"backup": True}, confirm_serial=kiosk.serial)
    HeartbeatDeadLetter.objects.create(entry_id="1-0", kiosk=kiosk, set_aside_at=timezone.now(), body=b"{", error="x")
    if not ErrorCode.objects.exists():
        ErrorCode.objects.create(
            code="PRN-001", component="receipt_printer", category="device", kind="module_failure",
            title_zh="打印机卡纸", title_en="Printer jam",
        )  # fmt: skip


def test_every_fleet_model_is_in_the_admin(db):
    assert {"site", "kiosk", "errorcode", "remotecommand", "heartbeatdeadletter"} <= set(FLEET_MODELS)


@pytest.mark.parametrize("model_name", FLEET_MODELS)
def test_each_fleet_admin_list_has_a_chinese_title_column_headers_and_filters(admin_client, fleet_rows, model_name):
    response = admin_client.get(reverse(f"admin:fleet_{model_name}_changelist"), HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 200
    page = response.content.decode()
    headers = [_text(th) for th in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', page, re.S)]
    headers = [header for header in headers if header]
    assert headers, "the list has a table"
    english = sorted({header for header in headers if LATIN.search(header)})
    assert not english, english
    filters = re.findall(r'data-filter-title="([^"]*)"', page)
    assert not [title for title in filters if LATIN.search(title)], filters
    title = _text(re.search(r"<h1>(.*?)</h1>", page, re.S).group(1))
    assert not LATIN.search(title), title


def test_the_commands_list_shows_kinds_statuses_and_the_deferred_filter_in_chinese(admin_client, fleet_rows):
    page = admin_client.get(reverse("admin:fleet_remotecommand_changelist"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    text = _text(page.content.decode())

    assert "重启模块" in text and "恢复出厂设置（先备份）" in text and "排队中" in text
    assert "因缴费暂缓" in text and "仍在等待缴费结束" in text
    assert "发出人" in text
