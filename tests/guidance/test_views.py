"""The console's guidance page: halls of the user's regions, out-of-service ones first, with their notice, public
page and stickers; who may open it; phone numbers in full only for those who work incidents."""

import pytest
from django.test import Client

from guidance import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def test_the_page_lists_the_halls_of_the_users_regions_with_out_of_service_ones_first(hall):
    manager = UserFactory(username="ops", role="operations_manager", regions=[hall.region])

    response = logged_in(manager).get("/guidance/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "用户引导" in html  # the navigation entry and the title
    assert "黄浦区政务服务中心" in html and "外滩街道社区事务受理中心" in html
    assert "静安区政务服务中心" not in html  # another region
    assert html.index('id="hall-hp-01"') < html.index('id="hall-hp-02"')
    assert html.index('id="hall-hp-03"') < html.index('id="hall-hp-02"')
    assert "/guidance/halls/hp-01/notice.pdf" in html
    assert "/p/halls/hp-01/" in html
    assert "/guidance/halls/hp-01/stickers.pdf" in html
    assert "上海市“一网通办”" in html and "居民身份证工本费" in html


@pytest.mark.parametrize("role", ["operations_manager", "technical_support", "counter_staff"])
def test_operations_technical_support_and_counter_staff_may_open_it(hall, role):
    user = UserFactory(username=role, role=role, regions=[hall.region])

    assert logged_in(user).get("/guidance/").status_code == 200


def test_a_field_technician_may_not(hall):
    technician = UserFactory(username="tech", role="field_technician", regions=[hall.region])

    assert logged_in(technician).get("/guidance/").status_code == 403
    assert logged_in(technician).get("/guidance/halls/hp-01/notice.pdf").status_code == 403


def test_printouts_of_another_regions_hall_are_not_found(hall):
    manager = UserFactory(username="ops", role="operations_manager", regions=[hall.region])
    client = logged_in(manager)

    assert client.get("/guidance/halls/ja-01/notice.pdf").status_code == 404
    assert client.get("/guidance/halls/ja-01/stickers.pdf").status_code == 404
    assert client.get("/guidance/kiosks/KS-JA-0001/sticker.pdf").status_code == 404


def test_the_notice_stickers_and_one_sticker_download_as_pdf(hall):
    client = logged_in(UserFactory(username="ops", role="operations_manager", regions=[hall.region]))

    for url in (
        "/guidance/halls/hp-01/notice.pdf",
        "/guidance/halls/hp-01/notice.pdf?kiosk=KS-HP-0003",
        "/guidance/halls/hp-01/stickers.pdf",
        "/guidance/kiosks/KS-HP-0001/sticker.pdf",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
    assert client.get("/guidance/halls/hp-01/notice.pdf?kiosk=KS-JA-0001").status_code == 404
    assert client.get("/guidance/halls/hp-01/notice.pdf?kiosk=KS%00").status_code == 404
    assert client.get("/guidance/halls/hp-01/notice.pdf?kiosk=" + "K" * 65).status_code == 404


def test_the_console_shows_a_citizens_phone_in_full_only_to_those_who_work_incidents(hall):
    from fleet.models import Kiosk

    services.citizen_report_submit(
        kiosk=Kiosk.objects.get(serial="KS-HP-0001"), symptom="no_receipt", phone="13800138000"
    )
    manager = UserFactory(username="ops", role="operations_manager", regions=[hall.region])
    counter = UserFactory(username="counter", role="counter_staff", regions=[hall.region])

    assert "13800138000" in logged_in(manager).get("/guidance/").content.decode()
    shown = logged_in(counter).get("/guidance/").content.decode()
    assert "13800138000" not in shown and "*******8000" in shown


def test_the_admin_masks_a_citizens_phone_for_staff_who_do_not_work_incidents(hall):
    from django.contrib.auth.models import Permission

    from fleet.models import Kiosk

    services.citizen_report_submit(
        kiosk=Kiosk.objects.get(serial="KS-HP-0001"), symptom="no_receipt", phone="13800138000"
    )
    staff = UserFactory(username="auditor", regions="all", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_citizenreport"))
    superuser = UserFactory(username="root", regions="all", is_staff=True, is_superuser=True)

    masked = logged_in(staff).get("/admin/guidance/citizenreport/").content.decode()
    full = logged_in(superuser).get("/admin/guidance/citizenreport/").content.decode()

    assert "13800138000" not in masked and "*******8000" in masked
    assert "13800138000" in full


def test_the_console_lists_only_the_citizen_reports_of_the_users_regions(hall):
    from fleet.models import Kiosk

    services.citizen_report_submit(kiosk=Kiosk.objects.get(serial="KS-HP-0001"), symptom="no_receipt")
    services.citizen_report_submit(kiosk=Kiosk.objects.get(serial="KS-JA-0001"), symptom="frozen")
    manager = UserFactory(username="ops", role="operations_manager", regions=[hall.region])

    html = logged_in(manager).get("/guidance/").content.decode()
    reports = html[html.index('id="guidance-reports"') :]

    assert "KS-HP-0001" in reports and "无法打印凭条" in reports
    assert "KS-JA-0001" not in reports


def test_the_admin_of_region_guidance_and_citizen_reports_reads_in_chinese(hall):
    from fleet.models import Kiosk
    from guidance.models import RegionGuidance

    services.citizen_report_submit(kiosk=Kiosk.objects.get(serial="KS-HP-0001"), symptom="no_receipt")
    client = logged_in(UserFactory(username="root", regions="all", is_staff=True, is_superuser=True))
    guidance = RegionGuidance.objects.get(region=hall.region)

    for url, words in (
        ("/admin/guidance/regionguidance/", ["辖区引导信息", "网上办理平台"]),
        (f"/admin/guidance/regionguidance/{guidance.pk}/change/", ["可在自助机缴纳的费用", "每行一项费用"]),
        ("/admin/guidance/citizenreport/", ["市民报修", "故障现象", "无法打印凭条"]),
    ):
        html = client.get(url).content.decode()
        for word in words:
            assert word in html, (url, word)


def test_posting_the_notice_is_recorded_on_the_out_of_service_kiosks_incidents(hall):
    from fleet.models import Kiosk
    from incidents import services as incident_services
    from incidents.models import TimelineEntry

    down = Kiosk.objects.get(serial="KS-HP-0003")
    incident, _ = incident_services.incident_report_by_citizen(kiosk=down, fault_kind="wont_start", symptom="黑屏")
    working, _ = incident_services.incident_report_by_citizen(
        kiosk=Kiosk.objects.get(serial="KS-HP-0002"), fault_kind="module_failure", symptom="现金模块"
    )
    counter = UserFactory(
        username="counter", first_name="丽", last_name="孙", role="counter_staff", regions=[hall.region]
    )
    client = logged_in(counter)

    response = client.post("/guidance/halls/hp-01/notice-posted/", follow=True)

    assert "已在 1 个故障事件中记录" in response.content.decode()
    [guided] = TimelineEntry.objects.filter(kind="citizens_guided")
    assert guided.incident_id == incident.pk and guided.actor == counter
    assert guided.measure == "已在自助机区域张贴告示"
    assert not TimelineEntry.objects.filter(incident=working, kind="citizens_guided").exists()
    assert client.get("/guidance/halls/hp-01/notice-posted/").status_code == 405
    assert client.post("/guidance/halls/ja-01/notice-posted/").status_code == 404
