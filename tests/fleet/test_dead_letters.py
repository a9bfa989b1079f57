"""The heartbeats set aside: the board's warning leads the people who act on it to a console page listing them."""

import pytest
from django.utils import timezone

from fleet.models import HeartbeatDeadLetter
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory


def set_aside(kiosk, body: bytes, error: str, entry_id: str) -> HeartbeatDeadLetter:
    now = timezone.now()
    return HeartbeatDeadLetter.objects.create(
        entry_id=entry_id, kiosk=kiosk, received_at=now, set_aside_at=now, body=body, error=error
    )


@pytest.fixture(autouse=True)
def _persistent_redis(monkeypatch):
    from fleet import ingest

    monkeypatch.setattr(ingest, "unpersisted", lambda: False)


@pytest.mark.parametrize("role", ["operations_manager", "technical_support"])
def test_the_board_warning_leads_managers_and_support_to_the_heartbeats_set_aside(client, kiosk, role):
    set_aside(
        kiosk, b'{"software_version": "3.2\x00x"}', "A string literal cannot contain NUL (0x00) characters.", "1-0"
    )
    client.force_login(UserFactory(role=role, regions="all"))

    banner = client.get("/").content.decode().split('id="ingest-dead-letters"')[1].split("</div>")[0]
    page = client.get("/heartbeats/set-aside/")

    assert 'href="/heartbeats/set-aside/"' in banner
    assert "查看这些心跳及其错误" in banner
    assert page.status_code == 200
    html = page.content.decode()
    assert "无法入库的心跳" in html
    assert kiosk.serial in html
    assert "cannot contain NUL" in html
    assert "3.2\\u0000x" in html


def test_a_field_technician_is_told_an_administrator_can_see_them_and_may_not_open_the_page(client, kiosk):
    set_aside(kiosk, b"{}", "refused", "1-0")
    client.force_login(UserFactory(role="field_technician", regions="all"))

    banner = client.get("/").content.decode().split('id="ingest-dead-letters"')[1].split("</div>")[0]

    assert "/heartbeats/set-aside/" not in banner
    assert "管理员可在后台查看这些心跳及其错误" in banner
    assert client.get("/heartbeats/set-aside/").status_code == 403


def test_a_manager_of_one_district_sees_only_the_heartbeats_of_its_kiosks(client, kiosk, manager):
    other = KioskFactory(site=SiteFactory(region=RegionFactory(code="xuhui", name="徐汇区")), serial="KS-OTHER")
    set_aside(kiosk, b"{}", "own district", "1-0")
    set_aside(other, b"{}", "other district", "2-0")
    set_aside(None, b"\xff\xfe", "body is not UTF-8", "3-0")
    client.force_login(manager)

    html = client.get("/heartbeats/set-aside/").content.decode()

    assert "own district" in html
    assert "other district" not in html and "KS-OTHER" not in html
    assert "body is not UTF-8" not in html, "a letter of no known kiosk is for those who see every region"


def test_with_nothing_set_aside_the_page_says_so(client, db):
    client.force_login(UserFactory(role="technical_support", regions="all"))

    assert "没有被搁置的心跳" in client.get("/heartbeats/set-aside/").content.decode()


def test_the_page_says_why_in_chinese_and_keeps_the_stored_error_as_technical_detail(client, kiosk):
    set_aside(kiosk, b'{"a": 1}', "DataError: value out of range for type integer", "1-0")
    set_aside(kiosk, b"\xff", "The buffer entry has no readable kiosk or arrival time.", "2-0")
    client.force_login(UserFactory(role="technical_support", regions="all"))

    html = client.get("/heartbeats/set-aside/").content.decode()

    assert "数据库拒绝写入该心跳。" in html
    assert "该缓冲条目缺少可读的终端或接收时间。" in html
    assert "技术细节" in html and "value out of range for type integer" in html
