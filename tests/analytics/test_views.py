"""The figures page, its exports and the six-monthly review, as an operations manager uses them."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from analytics import refresh
from analytics.models import Review, ReviewAction
from tests.analytics.test_refresh import DAY, at, flip, incident
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db
HOURS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def figures(region):
    hall = SiteFactory(region=region, code="hall-a", name="和平区政务服务大厅", opening_hours=HOURS)
    kiosk = KioskFactory(site=hall, serial="KS-A", model="ZK-200")
    flip(kiosk, at(DAY - timedelta(days=40), 8), "online", from_status="provisioned")
    flip(kiosk, at(DAY, 10), "offline")
    flip(kiosk, at(DAY, 12), "online", from_status="offline")
    incident(
        kiosk,
        at(DAY, 10, 1),
        ack=at(DAY, 10, 6),
        resolved=at(DAY, 12, 1),
        resolution="重启后恢复",
        component="receipt_printer",
        fault_kind="module_failure",
    )
    refresh.refresh(DAY - timedelta(days=40), DAY)
    return {"hall": hall, "kiosk": kiosk}


@pytest.fixture
def manager_client(client, region):
    user = UserFactory(username="manager", role="operations_manager", regions="all")
    client.force_login(user)
    client.user = user
    return client


QUERY = {"period": "custom", "start": str(DAY - timedelta(days=6)), "end": str(DAY), "by": "site"}


def test_the_figures_page_shows_availability_mttr_and_the_problems_in_chinese(manager_client, figures):
    response = manager_client.get(reverse("analytics:figures"), QUERY)

    page = response.content.decode()
    assert response.status_code == 200
    assert "和平区政务服务大厅" in page
    assert "开放时间内可用率" in page and "平均修复时间" in page
    assert "功能模块失效" in page and "重启后恢复" in page  # the problem's label and its usual fix, never a code
    assert "module_failure" not in page and "receipt_printer" not in page
    assert "echarts/echarts.min.js" in page


@pytest.mark.parametrize(
    "query",
    [
        {"period": "custom", "start": "1999-12-31", "end": "2000-01-02"},
        {"period": "custom", "start": "2026-11-20", "end": "2026-11-01"},
        {"period": "custom", "start": "2020-01-01", "end": "2026-01-01"},
        {"period": "custom", "start": "2026-11-01"},
        {"period": "decade"},
        {"by": "kiosk\x00"},
        {"period": "custom", "start": "2026-13-45", "end": "2026-11-01"},
    ],
)
def test_a_bad_period_is_a_400_that_says_why(manager_client, figures, query):
    response = manager_client.get(reverse("analytics:figures"), query)

    assert response.status_code == 400
    assert "field__errors" in response.content.decode() or "banner--error" in response.content.decode()


def test_the_figures_export_as_csv_with_a_bom_and_as_xlsx(manager_client, figures):
    response = manager_client.get(reverse("analytics:export", args=["csv"]), QUERY)
    text = response.content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))

    assert text.startswith("\ufeff") and rows[0][0] == "服务大厅"
    assert rows[1][0] == "和平区政务服务大厅" and rows[-1][0] == "全部"

    response = manager_client.get(reverse("analytics:export", args=["xlsx"]), QUERY)
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet["A2"].value == "和平区政务服务大厅"
    assert sheet["C2"].value == pytest.approx(1 - 2 / 8 / 7 * 1, abs=0.2)


def test_a_technician_does_not_see_the_figures(client, region, figures):
    client.force_login(UserFactory(username="tech", role="field_technician", regions=[region]))

    assert client.get(reverse("analytics:figures")).status_code == 403


def test_a_manager_writes_the_review_adds_an_action_and_its_owner_marks_it_done(manager_client, figures, region):
    owner = UserFactory(username="owner", role="technical_support", regions=[region], last_name="王", first_name="芳")
    year, half = DAY.year, 2

    response = manager_client.post(reverse("analytics:review-open"), {"year": year, "half": half})
    review = Review.objects.get()
    assert response.url == reverse("analytics:review", args=[review.code])
    manager_client.post(reverse("analytics:review-summary", args=[review.code]), {"summary": "打印机故障为主。"})
    manager_client.post(
        reverse("analytics:review-action-add", args=[review.code]),
        {"text": "为和平区大厅备两台打印机芯", "owner": owner.pk, "due_on": "2027-01-31"},
    )
    page = manager_client.get(reverse("analytics:review", args=[review.code])).content.decode()

    assert "打印机故障为主。" in page and "为和平区大厅备两台打印机芯" in page and "王芳" in page
    action = ReviewAction.objects.get()
    manager_client.force_login(owner)
    manager_client.post(reverse("analytics:action-done", args=[action.pk]), {"note": "已入库两台"})
    action.refresh_from_db()
    assert action.done_at is not None and action.done_note == "已入库两台"


def test_an_action_without_owner_or_with_a_nul_is_refused_and_nothing_is_stored(manager_client, figures):
    review = Review.objects.create(year=DAY.year, half=2, created_at=at(DAY, 9), created_by=manager_client.user)

    for data in (
        {"text": "x", "owner": "", "due_on": "2027-01-31"},
        {"text": "a\x00b", "owner": manager_client.user.pk, "due_on": "2027-01-31"},
        {"text": "x", "owner": manager_client.user.pk, "due_on": "2020-01-01"},
    ):
        response = manager_client.post(reverse("analytics:review-action-add", args=[review.code]), data)
        assert response.status_code == 400

    assert not ReviewAction.objects.exists()


def test_publishing_freezes_the_figures_and_open_actions_are_carried_into_the_next_review(
    manager_client, figures, region
):
    first = Review.objects.create(year=DAY.year, half=2, created_at=at(DAY, 9), created_by=manager_client.user)
    ReviewAction.objects.create(
        review=first,
        text="更换老化读卡器",
        owner=manager_client.user,
        due_on=date(2027, 3, 1),
        created_at=at(DAY, 9),
        created_by=manager_client.user,
    )
    manager_client.post(reverse("analytics:review-publish", args=[first.code]))
    first.refresh_from_db()
    assert first.status == "published" and first.snapshot["total"]["failures"] == 1

    refresh.refresh_days(DAY, DAY)  # later refreshes do not rewrite what was published
    second = Review.objects.create(year=DAY.year + 1, half=1, created_at=at(DAY, 9), created_by=manager_client.user)
    page = manager_client.get(reverse("analytics:review", args=[second.code])).content.decode()

    assert "更换老化读卡器" in page  # carried, still open


def test_the_review_pdf_says_in_chinese_what_failed_and_what_was_decided(manager_client, figures, region):
    review = Review.objects.create(
        year=DAY.year, half=2, created_at=at(DAY, 9), created_by=manager_client.user, summary="整体可用率良好。"
    )
    ReviewAction.objects.create(
        review=review,
        text="每月巡检打印机",
        owner=manager_client.user,
        due_on=date(2027, 1, 15),
        created_at=at(DAY, 9),
        created_by=manager_client.user,
    )
    from analytics.views import review_html
    from core.printing import document

    request = manager_client.get(reverse("analytics:review", args=[review.code])).wsgi_request
    html = review_html(request, review)
    words = []

    def walk(box):
        if getattr(box, "text", None):
            words.append(box.text)
        for child in getattr(box, "children", []) or []:
            walk(child)

    for page in document(html).pages:
        walk(page._page_box)
    text = "".join(words)

    assert "下半年" in text and "整体可用率良好。" in text
    assert "功能模块失效" in text and "重启后恢复" in text and "每月巡检打印机" in text
    response = manager_client.get(reverse("analytics:review-pdf", args=[review.code]))
    assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF")


def test_a_district_manager_reads_only_their_district_in_a_draft(client, figures):
    other = RegionFactory(code="xuhui", name="徐汇区")
    client.force_login(UserFactory(username="xh", role="operations_manager", regions=[other]))

    response = client.get(reverse("analytics:figures"), QUERY)

    assert "和平区政务服务大厅" not in response.content.decode()


def test_a_kiosks_page_shows_its_year_and_its_incidents(manager_client, figures):
    response = manager_client.get(reverse("analytics:kiosk", args=["KS-A"]), QUERY)

    page = response.content.decode()
    assert response.status_code == 200
    assert "KS-A" in page and "重启后恢复" in page and "功能模块失效" in page
    assert reverse("incidents:detail", args=[figures["kiosk"].incidents.get().pk]) in page


def test_another_districts_kiosk_is_a_404(client, figures):
    client.force_login(
        UserFactory(username="xh", role="operations_manager", regions=[RegionFactory(code="xuhui", name="徐汇区")])
    )

    assert client.get(reverse("analytics:kiosk", args=["KS-A"])).status_code == 404


def test_the_review_counts_the_halfs_inspections_done_on_time_late_and_missed(manager_client, figures):
    import importlib

    from django.apps import apps

    from inspections.models import Inspection, Schedule

    importlib.import_module("inspections.migrations.0002_plan_defaults").seed(apps, None)  # after a flush
    schedule = Schedule.objects.select_related("template").first()
    kiosk = figures["kiosk"]
    for n, (status, done) in enumerate([("done", 9), ("done", 18), ("missed", None), ("done", 10)]):
        day = DAY - timedelta(days=n + 1)
        Inspection.objects.create(
            schedule=schedule,
            template=schedule.template,
            kiosk=kiosk,
            site=kiosk.site,
            region=kiosk.site.region,
            period_start=day,
            period_ends_at=at(day, 23, 59),
            due_on=day,
            due_at=at(day, 17),
            status=status,
            completed_at=at(day, done) if done else None,
        )
    refresh.refresh_inspections(DAY - timedelta(days=10), DAY)  # the beat's work
    review = Review.objects.create(year=DAY.year, half=2, created_at=at(DAY, 9), created_by=manager_client.user)

    page = manager_client.get(reverse("analytics:review", args=[review.code])).content.decode()

    section = page[page.index('id="review-inspections"') :]
    assert "按时完成：50.0%" in section
    assert '<td>黄浦区</td><td class="num">2</td><td class="num">1</td><td class="num">1</td>' in section


def test_the_review_shows_the_drill_scores_of_both_halves(manager_client, figures, region):
    from drills.models import Drill

    for month, total in ((3, 70.0), (8, 85.5)):
        Drill.objects.create(
            title="演练",
            scenario="printer_jam",
            region=region,
            window_start=at(date(2026, month, 10), 10),
            window_end=at(date(2026, month, 10), 14),
            status="finished",
            score={"total": total},
            created_at=at(DAY, 9),
            created_by=manager_client.user,
        )
    review = Review.objects.create(year=2026, half=2, created_at=at(DAY, 9), created_by=manager_client.user)

    page = manager_client.get(reverse("analytics:review", args=[review.code])).content.decode()

    section = page[page.index('id="review-drills"') :]
    assert "2026Q1" in section and "70.0" in section and "2026Q3" in section and "85.5" in section


def test_the_review_prices_the_parts_fitted_and_the_stock_lost_to_expiry(manager_client, figures, region):
    from decimal import Decimal

    from parts.models import Part
    from workorders.models import PartUsed, WorkOrder

    Part.objects.create(part_number="PRN-80T", name="热敏打印机芯", unit_price=Decimal("860.00"))
    technician = UserFactory(username="t", role="field_technician", regions=[region])
    incident = figures["kiosk"].incidents.get()
    order = WorkOrder.objects.create(
        incident=incident,
        kiosk=figures["kiosk"],
        site=figures["hall"],
        region=region,
        created_at=at(DAY, 10),
        status="closed",
        assignee=technician,
    )
    PartUsed.objects.create(
        order=order,
        part_number="PRN-80T",
        name="热敏打印机芯",
        quantity=2,
        recorded_at=at(DAY, 11),
        recorded_by=technician,
    )
    review = Review.objects.create(year=DAY.year, half=2, created_at=at(DAY, 9), created_by=manager_client.user)

    page = manager_client.get(reverse("analytics:review", args=[review.code])).content.decode()

    section = page[page.index('id="review-parts"') :]
    assert "热敏打印机芯" in section and "1720.00" in section
