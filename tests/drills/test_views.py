"""The drills console as a drill coordinator uses it: plan, start, watch, abort or finish, the report as a page and a
PDF; a planner from another district sees nothing; bad plans are refused with a reason and store nothing."""

import shutil
import subprocess
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from drills import services
from drills.models import Drill
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setting(region):
    hall = SiteFactory(region=region, code="hall-v", name="视图测试大厅")
    kiosk = KioskFactory(site=hall, serial="KS-V-1")
    coordinator = UserFactory(
        username="coord", role="drill_coordinator", regions=[region], last_name="周", first_name="洁"
    )
    return {"hall": hall, "kiosk": kiosk, "coordinator": coordinator, "region": region}


def form(setting, **over):
    start = timezone.localtime() + timedelta(hours=1)
    data = {
        "title": "打印机卡纸演练",
        "scenario": "printer_jam",
        "region": setting["region"].pk,
        "kiosks": [setting["kiosk"].pk],
        "window_start": start.strftime("%Y-%m-%dT%H:%M"),
        "window_end": (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
    }
    data.update(over)
    return data


def test_a_coordinator_plans_a_drill_and_sees_it_in_chinese(client, setting):
    client.force_login(setting["coordinator"])

    response = client.post(reverse("drills:plan"), form(setting))
    drill = Drill.objects.get()
    page = client.get(response.url).content.decode()

    assert response.url == reverse("drills:detail", args=[drill.uid])
    assert "打印机卡纸演练" in page and "演练" in page and "凭条打印机卡纸" in page
    assert "printer_jam" not in page
    assert drill.targets == {"acknowledge": 10, "remote": 20, "dispatch": 40, "arrival": 120, "resolve": 240}


@pytest.mark.parametrize(
    "over",
    [
        {"title": ""},
        {"scenario": "earthquake"},
        {"kiosks": []},
        {"window_end": "2020-01-01T00:00"},
        {"target_arrival": "0"},
        {"target_arrival": "99999999999999999999"},
        {"title": "a\x00b"},
    ],
)
def test_a_bad_plan_is_refused_with_a_reason_and_nothing_is_stored(client, setting, over):
    client.force_login(setting["coordinator"])

    response = client.post(reverse("drills:plan"), form(setting, **over))

    assert response.status_code == 400
    assert not Drill.objects.exists()


def test_another_districts_coordinator_neither_sees_nor_runs_the_drill(client, setting):
    drill = services.drill_plan(
        actor=setting["coordinator"],
        title="演练",
        scenario="printer_jam",
        region=setting["region"],
        kiosks=[setting["kiosk"]],
        window_start=timezone.now(),
        window_end=timezone.now() + timedelta(hours=1),
    )
    other = UserFactory(username="xh", role="drill_coordinator", regions=[RegionFactory(code="xuhui", name="徐汇区")])
    client.force_login(other)

    assert client.get(reverse("drills:detail", args=[drill.uid])).status_code == 404
    assert client.post(reverse("drills:start", args=[drill.uid])).status_code == 404
    assert str(drill.uid) not in client.get(reverse("drills:list")).content.decode()


def test_a_finished_drill_has_a_pdf_report_in_chinese(client, setting):
    drill = services.drill_plan(
        actor=setting["coordinator"],
        title="季度演练",
        scenario="printer_jam",
        region=setting["region"],
        kiosks=[setting["kiosk"]],
        window_start=timezone.now(),
        window_end=timezone.now() + timedelta(hours=1),
    )
    Drill.objects.filter(pk=drill.pk).update(status="finished", score={"total": 72.5, "steps": [], "roles": {}})
    client.force_login(setting["coordinator"])
    services.drill_review_save(drill=drill, actor=setting["coordinator"], went_well="响应迅速", lessons="备件不足")

    from core.printing import document
    from drills.views import report_html

    request = client.get(reverse("drills:detail", args=[drill.uid])).wsgi_request
    words = []

    def walk(box):
        if getattr(box, "text", None):
            words.append(box.text)
        for child in getattr(box, "children", []) or []:
            walk(child)

    for page in document(report_html(request, Drill.objects.get(pk=drill.pk))).pages:
        walk(page._page_box)
    text = "".join(words)
    assert "【演练】季度演练" in text and "72.5" in text and "响应迅速" in text and "备件不足" in text
    response = client.get(reverse("drills:pdf", args=[drill.uid]))
    assert response.content.startswith(b"%PDF")
    if shutil.which("pdftotext"):  # the PDF's own text, as a reader's viewer extracts it
        printed = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", "-", "-"], input=response.content, capture_output=True, check=True
        ).stdout.decode()
        assert "季度演练" in printed and "72.5" in printed and "响应迅速" in printed and "备件不足" in printed


def test_the_lessons_actions_are_listed_open_and_overdue_first_in_the_readers_districts_and_through_the_api(
    client, setting
):
    coordinator = setting["coordinator"]
    now = timezone.now()
    drill = services.drill_plan(
        actor=coordinator,
        title="打印机卡纸演练",
        scenario="printer_jam",
        region=setting["region"],
        kiosks=[setting["kiosk"]],
        window_start=now - timedelta(days=20),
        window_end=now - timedelta(days=20) + timedelta(hours=2),
    )
    today = timezone.localdate()
    done = services.drill_action_add(
        drill=drill, actor=coordinator, text="更新卡纸处置步骤", owner=coordinator, due_on=today
    )
    services.drill_action_done(action=done, actor=coordinator, note="已更新")
    services.drill_action_add(
        drill=drill, actor=coordinator, text="补充备用打印机芯", owner=coordinator, due_on=today - timedelta(days=3)
    )
    elsewhere = UserFactory(username="far", role="drill_coordinator", regions=[RegionFactory(code="far")])

    client.force_login(coordinator)
    page = client.get(reverse("drills:actions")).content.decode()
    assert page.index("补充备用打印机芯") < page.index("更新卡纸处置步骤")  # open first
    assert "演练整改事项" in page and "已逾期" in page and "周洁" in page and "已更新" in page
    api = client.get("/api/v1/drill-actions/").json()
    assert [row["text"] for row in api] == ["补充备用打印机芯", "更新卡纸处置步骤"]
    assert api[0]["drill"] == str(drill.uid) and api[0]["owner"] == "周洁"

    client.force_login(elsewhere)
    assert "补充备用打印机芯" not in client.get(reverse("drills:actions")).content.decode()
    assert client.get("/api/v1/drill-actions/").json() == []
