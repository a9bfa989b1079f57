"""Citizens' pages: a hall's status and a kiosk's "report a problem" page — what they show, what they never show,
and how they answer abuse (always a page in Chinese, never a 500, nothing stored)."""

import pytest
from django.test import Client

from fleet.models import Kiosk
from guidance import protect
from guidance.models import CitizenReport
from incidents.models import Incident, Source, TimelineEntry
from tests.guidance.conftest import DUTY_NAME, DUTY_PHONE

pytestmark = pytest.mark.django_db

REPORTER_PHONE = "13800138000"
HALL = "/p/halls/hp-01/"
KIOSK = "/p/k/KS-HP-0001/"


@pytest.fixture
def citizen():
    return Client(HTTP_ACCEPT_LANGUAGE="zh-hans", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="Mobile Safari")


def report(client, serial="KS-HP-0001", **data):
    data.setdefault("symptom", "no_receipt")
    return client.post(f"/p/k/{serial}/", data)


def test_a_halls_public_page_shows_which_kiosks_work_and_how_citizens_can_pay(hall, citizen):
    response = citizen.get(HALL)
    html = response.content.decode()

    assert response.status_code == 200
    assert "黄浦区政务服务中心" in html
    assert "目前有 2 台自助机可用" in html
    assert "一楼大厅东侧" in html and "二楼等候区" in html
    west = html[html.index('id="kiosk-KS-HP-0002"') :]
    west = west[: west.index("</li>\n    \n      <li") if "</li>\n    \n      <li" in west else 2000]
    assert "✗ 现金" in west and "✓ 银行卡" in west and "✓ 扫码支付" in west and "✓ 打印凭条" in west
    assert "居民身份证工本费" in html and "户口簿工本费" in html and "出入境证件费" in html
    assert "开放时间" in html and "00:00–24:00" in html
    assert "一楼3号综合窗口" in html
    assert "上海市“一网通办”" in html and 'href="https://zwdt.sh.gov.cn"' in html
    assert html.index("外滩街道社区事务受理中心") < html.index("静安区政务服务中心")
    assert "没有可用自助机的大厅" not in html


def test_public_pages_never_show_the_contact_on_duty_nor_a_reporters_phone(hall, citizen):
    assert report(citizen, text="凭条出不来", phone=REPORTER_PHONE).status_code == 302

    pages = [citizen.get(HALL), citizen.get(KIOSK), citizen.get(KIOSK + "?sent=1"), citizen.get("/p/halls/hp-02/")]

    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert DUTY_NAME not in html and DUTY_PHONE not in html
        assert REPORTER_PHONE not in html and REPORTER_PHONE[-4:] not in html


def test_a_halls_page_is_cached_for_thirty_seconds(hall, citizen, django_assert_num_queries):
    first = citizen.get(HALL)
    with django_assert_num_queries(0):
        second = citizen.get(HALL)

    assert second.content == first.content
    assert "max-age=30" in second["Cache-Control"] and "public" in second["Cache-Control"]


def test_an_unknown_hall_is_a_404_page_in_chinese(db, citizen):
    response = citizen.get("/p/halls/nowhere/")

    assert response.status_code == 404
    assert "找不到该大厅" in response.content.decode()


def test_a_kiosks_sticker_page_shows_its_hall_its_place_and_whether_it_works(hall, citizen):
    working = citizen.get(KIOSK).content.decode()
    down = citizen.get("/p/k/KS-HP-0003/").content.decode()

    assert "黄浦区政务服务中心" in working and "一楼大厅东侧" in working
    assert "这台自助机可以正常使用" in working
    assert "这台自助机暂停服务" in down and "一楼大厅东侧" in down  # the other kiosks, where they stand
    assert "屏幕无反应/黑屏" in working and "无法打印凭条" in working
    assert 'name="csrfmiddlewaretoken"' in working


def test_a_citizens_report_opens_the_kiosks_incident_and_a_second_joins_it(hall, citizen):
    first = report(citizen, symptom="screen_blank", text="按了没反应", phone="138 0013 8000")
    second = report(Client(REMOTE_ADDR="198.51.100.2"), symptom="screen_blank")

    assert first.status_code == second.status_code == 302
    assert first["Location"] == KIOSK + "?sent=1"
    incident = Incident.objects.get(kiosk__serial="KS-HP-0001")
    assert incident.source == Source.CITIZEN
    assert incident.fault_kind == "wont_start"
    assert incident.occurrences == 2
    assert incident.reported_by is None and incident.reporter_contact == "" and incident.reporter_name == ""
    one, two = CitizenReport.objects.order_by("id")
    assert (one.incident, two.incident) == (incident, incident)
    assert (one.opened_incident, two.opened_incident) == (True, False)
    entries = TimelineEntry.objects.filter(incident=incident, kind="reported")
    assert [e.result for e in entries] == ["市民报修：屏幕无反应/黑屏：按了没反应", "市民报修：屏幕无反应/黑屏"]
    assert all(e.actor_id is None for e in entries)
    assert REPORTER_PHONE not in str(list(TimelineEntry.objects.filter(incident=incident).values()))
    assert "已收到" in citizen.get(first["Location"]).content.decode()


def test_a_reporters_phone_is_stored_encrypted(hall, citizen):
    report(citizen, phone=REPORTER_PHONE)

    stored = CitizenReport.objects.get()
    assert REPORTER_PHONE not in stored.phone_encrypted
    assert protect.decrypt(stored.phone_encrypted) == REPORTER_PHONE
    assert stored.phone_masked == "*******8000"
    assert len(stored.client_hash) == 64 and "203.0.113.7" not in stored.client_hash


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"text": "打印机\x00坏了"}, "空字符"),
        ({"text": "字" * 100_000}, "1000"),
        ({"text": "<script>alert(1)</script>"}, "网页代码"),
        ({"text": "<img src=x onerror=alert(1)>"}, "网页代码"),
        ({"phone": "12345"}, "11 位手机号码"),
        ({"symptom": "tampering"}, "请选择遇到的问题"),
        ({"symptom": ""}, "请选择遇到的问题"),
        ({"symptom": "other"}, "请简单描述遇到的问题"),
    ],
)
def test_bad_input_is_answered_in_chinese_next_to_the_field_and_nothing_is_stored(hall, citizen, data, expected):
    response = report(citizen, **data)

    assert response.status_code == 400
    html = response.content.decode()
    assert expected in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert not CitizenReport.objects.exists()
    assert not Incident.objects.exists()


def test_text_with_lone_surrogates_or_bytes_that_are_not_utf8_is_refused_in_chinese(hall, citizen):
    body = b"symptom=no_receipt&text=%ED%A0%80abc%FF&phone="

    response = citizen.post(KIOSK, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert "无法识别的字符" in response.content.decode()
    assert not CitizenReport.objects.exists()


def test_a_lone_surrogate_reaching_the_service_is_refused(hall):
    from django.core.exceptions import ValidationError

    from guidance import services

    with pytest.raises(ValidationError):
        services.citizen_report_submit(kiosk=Kiosk.objects.get(serial="KS-HP-0001"), symptom="other", text="坏\ud800")
    assert not CitizenReport.objects.exists()


@pytest.mark.parametrize("serial", ["KS-NOPE-9999", "KS-RETIRED"])
def test_an_unknown_or_retired_kiosk_is_a_404_page_in_chinese_and_stores_nothing(hall, citizen, serial):
    retired = Kiosk.objects.get(serial="KS-HP-0003")
    Kiosk.objects.filter(pk=retired.pk).update(serial="KS-RETIRED", status="retired")

    page = citizen.get(f"/p/k/{serial}/")
    sent = report(citizen, serial=serial)

    assert page.status_code == sent.status_code == 404
    assert "找不到这台自助机" in page.content.decode()
    assert not CitizenReport.objects.exists()


def test_a_serial_the_database_cannot_hold_is_a_404_not_a_500(db, citizen):
    assert citizen.get("/p/k/" + "K" * 65 + "/").status_code == 404
    assert citizen.get("/p/k/KS%00X/").status_code == 404


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_a_wrong_method_is_a_405_page_in_chinese(hall, citizen, method):
    response = getattr(citizen, method)(KIOSK)

    assert response.status_code == 405
    assert "无法完成此操作" in response.content.decode()
    assert "POST" in response["Allow"]
    assert citizen.post(HALL).status_code == 405


def test_a_report_without_the_csrf_token_is_refused(hall):
    client = Client(enforce_csrf_checks=True)

    assert client.post(KIOSK, {"symptom": "no_receipt"}).status_code == 403
    assert not CitizenReport.objects.exists()


def test_too_many_reports_from_one_client_get_a_429_page_in_chinese_and_are_not_stored(hall, citizen, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "GUIDANCE_REPORT_RATE": "2/10m"}

    answers = [report(citizen).status_code for _ in range(3)]
    limited = report(citizen)

    assert answers == [302, 302, 429]
    assert limited.status_code == 429
    assert "请求过于频繁" in limited.content.decode()
    assert limited["Retry-After"] == "60"
    assert CitizenReport.objects.count() == 2
    assert report(Client(REMOTE_ADDR="198.51.100.9")).status_code == 302  # another client is not held back


def test_one_kiosks_reports_are_limited_whoever_sends_them(hall, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "GUIDANCE_KIOSK_REPORT_RATE": "2/h"}

    answers = [report(Client(REMOTE_ADDR=f"198.51.100.{n}")).status_code for n in range(3)]

    assert answers == [302, 302, 429]
    assert report(Client(REMOTE_ADDR="198.51.100.50"), serial="KS-HP-0002").status_code == 302


def test_too_many_page_views_from_one_client_get_a_429_page(hall, citizen, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "GUIDANCE_PAGE_RATE": "3/m"}

    answers = [citizen.get(HALL).status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    assert "请稍等一分钟再试" in citizen.get(KIOSK).content.decode()


def test_a_halls_page_reads_the_same_number_of_queries_whatever_its_number_of_kiosks(hall, citizen):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import KioskFactory

    with CaptureQueriesContext(connection) as few:
        citizen.get(HALL)
    for n in range(20):
        KioskFactory(site=hall, serial=f"KS-HP-1{n:03d}")
    Kiosk.objects.filter(serial__startswith="KS-HP-1").update(status="online")
    from django.core.cache import cache

    cache.clear()
    with CaptureQueriesContext(connection) as many:
        page = citizen.get(HALL)

    assert len(many) == len(few)
    assert "目前有 22 台自助机可用" in page.content.decode()


def test_a_kiosk_not_yet_in_service_has_its_sticker_page_saying_it_does_not_work(hall, citizen):
    from tests.factories import KioskFactory

    KioskFactory(site=hall, serial="KS-HP-0099")  # provisioned, never heard from

    page = citizen.get("/p/k/KS-HP-0099/")

    assert page.status_code == 200
    assert "这台自助机暂停服务" in page.content.decode()


def test_a_citizen_whose_phone_asks_for_english_reads_the_hall_page_in_english(hall):
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(HALL).content.decode()

    assert "2 kiosks are working now" in page
    assert "Bank card" in page and "Opening hours" in page
