"""The A4 notice and the QR stickers: Chinese, live at print time, and real PDFs."""

from datetime import UTC, datetime

import pytest

from fleet.models import Kiosk
from guidance import printing
from incidents import services as incident_services
from incidents.models import Incident

pytestmark = pytest.mark.django_db


def pdf_text(html: str) -> str:
    """The text WeasyPrint laid out on the pages (no PDF reader is installed: read the boxes it drew)."""
    document = printing.document(html)
    words = []

    def walk(box):
        text = getattr(box, "text", None)
        if text:
            words.append(text)
        for child in getattr(box, "children", ()) or ():
            walk(child)

    for page in document.pages:
        walk(page._page_box)
    return "".join(words)


def test_the_notice_says_in_chinese_what_is_wrong_where_to_pay_instead_and_when_the_kiosk_is_back(hall):
    kiosk = Kiosk.objects.get(serial="KS-HP-0003")
    incident, _ = incident_services.incident_report_by_citizen(kiosk=kiosk, fault_kind="wont_start", symptom="黑屏")
    Incident.objects.filter(pk=incident.pk).update(resolve_due_at=datetime(2026, 11, 27, 6, 30, tzinfo=UTC))

    html = printing.notice_html(hall)
    text = pdf_text(html)

    assert "自助机暂停服务" in text
    assert "KS-HP-0003" in text and "二楼等候区" in text
    assert "无法启动或无反应" in text  # the fault kind's label, never its code
    assert "wont_start" not in html
    assert "11月27日 14:30" in text  # resolve_due_at in Beijing time
    assert "一楼大厅东侧" in text and "一楼大厅西侧" in text  # the working kiosks and their places
    assert "一楼3号综合窗口" in text
    assert "上海市“一网通办”" in text and "https://zwdt.sh.gov.cn" in text
    # The nearest halls with working kiosks, nearest first, with their address; the hall without one is left out.
    assert text.index("外滩街道社区事务受理中心") < text.index("静安区政务服务中心")
    assert "中山东二路 9 号" in text
    assert "没有可用自助机的大厅" not in text
    assert "<svg" in html and "/p/halls/hp-01/" in html  # the QR code to the hall's public page


def test_a_kiosk_out_of_service_without_a_known_recovery_time_is_expected_back_as_soon_as_possible(hall):
    text = pdf_text(printing.notice_html(hall))

    assert "尽快恢复" in text
    assert "设备故障，暂停使用" in text


def test_the_notice_is_a_one_page_a4_pdf_with_the_chinese_font_embedded(hall):
    from weasyprint import HTML

    html = printing.notice_html(hall)
    content = printing.pdf(html)

    assert content.startswith(b"%PDF-")
    assert len(printing.document(html).pages) == 1
    assert b"Noto-Sans-CJK-SC" in HTML(string=html).write_pdf(uncompressed_pdf=True)


def test_the_notice_for_one_kiosk_lists_only_that_kiosk(hall):
    other = Kiosk.objects.get(serial="KS-HP-0001")
    Kiosk.objects.filter(pk=other.pk).update(status="maintenance", maintenance_reason="更换打印机")

    one = pdf_text(printing.notice_html(hall, serial="KS-HP-0003"))
    both = pdf_text(printing.notice_html(hall))

    assert "KS-HP-0003" in one and "设备维护中" not in one
    assert "设备维护中" in both


def test_a_sheet_of_stickers_carries_each_kiosks_qr_code_serial_and_asset_tag(hall):
    kiosks = printing.hall_sticker_kiosks(hall)
    html = printing.stickers_html(kiosks, title=hall.name)
    text = pdf_text(html)

    assert text.count("扫码报修 / 查看其他缴费渠道") == 3
    assert "KS-HP-0003" in text and "ZW-HP-0003" in text
    assert html.count("<svg") == 3
    assert printing.pdf(html).startswith(b"%PDF-")


def test_a_stickers_qr_code_encodes_the_public_report_page_of_its_kiosk(hall, settings):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "PUBLIC_BASE_URL": "https://kiosk.example.gov.cn/"}
    [sticker] = printing.stickers([Kiosk.objects.select_related("site").get(serial="KS-HP-0001")])

    assert sticker.url == "https://kiosk.example.gov.cn/p/k/KS-HP-0001/"
