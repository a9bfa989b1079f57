"""The out-of-service screen tells citizens their alternatives: guidance registers the words with core.registry,
and incidents fills the command's params from it wherever it queues the screen without a message."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core import registry
from fleet import services as fleet_services
from fleet.models import Kiosk, RemoteCommand
from guidance import alternatives
from incidents import services as incident_services
from incidents.services import ManualReport
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def down(hall):
    return Kiosk.objects.get(serial="KS-HP-0003")


def test_the_screen_names_the_halls_working_kiosks_the_counter_the_platform_and_the_nearest_hall(down):
    params = registry.out_of_service_params(down)

    message = params["message"]
    assert message.startswith("本机暂停服务。您可以：")
    assert "使用本厅其他自助机（一楼大厅东侧、一楼大厅西侧）" in message
    assert "到人工窗口办理（一楼3号综合窗口）" in message
    assert "登录上海市“一网通办”（https://zwdt.sh.gov.cn）网上缴费" in message
    assert "外滩街道社区事务受理中心（中山东二路 9 号）" in message
    assert len(message) <= fleet_services.OUT_OF_SERVICE_MESSAGE_MAX
    alt = params["alternatives"]
    assert [k["serial"] for k in alt["kiosks"]] == ["KS-HP-0001", "KS-HP-0002"]
    assert alt["counter"] == "一楼3号综合窗口"
    assert alt["online"] == {"name": "上海市“一网通办”", "url": "https://zwdt.sh.gov.cn"}
    assert alt["hotline"] == "12345"
    assert [h["code"] for h in alt["nearby_halls"]] == ["hp-02", "ja-01"]
    assert 0.9 < alt["nearby_halls"][0]["distance_km"] < 1.1
    assert alt["status_url"].endswith("/p/halls/hp-01/")


def test_the_screen_never_names_the_contact_on_duty(down):
    text = str(registry.out_of_service_params(down))

    assert "周建国" not in text and "13912345678" not in text


def test_an_incidents_out_of_service_command_left_without_a_message_carries_the_alternatives(down):
    support = UserFactory(username="support", role="technical_support", regions=[down.site.region])
    incident, _ = incident_services.incident_report_by_citizen(kiosk=down, fault_kind="wont_start", symptom="黑屏")

    command = incident_services.incident_send_command(
        incident=incident, actor=support, kind=RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN, params={"message": ""}
    )

    assert command.params["message"].startswith("本机暂停服务")
    assert command.params["alternatives"]["counter"] == "一楼3号综合窗口"


def test_a_message_typed_by_a_person_is_sent_as_typed(down):
    support = UserFactory(username="support", role="technical_support", regions=[down.site.region])
    incident, _ = incident_services.incident_report_by_citizen(kiosk=down, fault_kind="wont_start", symptom="黑屏")

    command = incident_services.incident_send_command(
        incident=incident, actor=support, kind=RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN, params={"message": "维修中"}
    )

    assert command.params == {"message": "维修中"}


def test_a_security_lockdown_puts_the_alternatives_on_the_kiosks_screen(hall):
    kiosk = Kiosk.objects.get(serial="KS-HP-0001")
    manager = UserFactory(username="ops", role="operations_manager", regions=[hall.region])

    incident_services.incident_report(
        report=ManualReport(
            kiosk=kiosk,
            fault_kind="tampering",
            symptom="读卡口有异物",
            observed_at=timezone.now() - timedelta(minutes=1),
        ),
        actor=manager,
    )

    command = RemoteCommand.objects.get(kiosk=kiosk, kind=RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN)
    assert command.params["message"].startswith("本机暂停服务")
    assert "一楼大厅西侧" in command.params["message"]
    assert [k["serial"] for k in command.params["alternatives"]["kiosks"]] == ["KS-HP-0002"]


def test_a_provider_that_fails_leaves_the_kiosk_its_own_default_screen(down):
    def broken(kiosk):
        raise RuntimeError("boom")

    registry.unregister_out_of_service_text(alternatives.out_of_service_params)
    registry.register_out_of_service_text(broken)
    try:
        assert registry.out_of_service_params(down) == {}
    finally:
        registry.unregister_out_of_service_text(broken)
        registry.register_out_of_service_text(alternatives.out_of_service_params)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"message": "字" * 501}, "message"),
        ({"message": 42}, "message"),
        ({"message": "维修中", "alternatives": ["not", "an", "object"]}, "alternatives"),
        ({"message": "维修中", "alternatives": {"kiosks": ["x" * 5000]}}, "alternatives"),
    ],
)
def test_the_fleet_refuses_an_out_of_service_message_too_long_or_alternatives_not_a_small_object(down, params, field):
    with pytest.raises(ValidationError) as refused:
        fleet_services.command_enqueue(kiosk=down, kind=RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN, params=params)

    assert field in refused.value.message_dict
    assert not RemoteCommand.objects.filter(kiosk=down).exists()


def test_an_out_of_service_command_without_params_is_still_accepted(down):
    command = fleet_services.command_enqueue(kiosk=down, kind=RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN)

    assert command.params == {}


def test_the_incident_pages_command_form_left_without_a_message_sends_the_alternatives(down):
    from django.test import Client

    support = UserFactory(username="support", role="technical_support", regions=[down.site.region])
    incident, _ = incident_services.incident_report_by_citizen(kiosk=down, fault_kind="wont_start", symptom="黑屏")
    client = Client()
    client.force_login(support)

    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    client.post(f"/incidents/{incident.pk}/command/", {"kind": "out_of_service_screen", "message": "  "})
    client.post(
        f"/incidents/{incident.pk}/command/", {"kind": "out_of_service_screen", "message": "维修中，请到窗口办理"}
    )

    assert "屏幕提示文字" in page
    typed, filled = RemoteCommand.objects.filter(kiosk=down).order_by("-created_at", "-id")[:2]
    assert filled.params["message"].startswith("本机暂停服务") and "alternatives" in filled.params
    assert typed.params == {"message": "维修中，请到窗口办理"}


def test_a_hall_without_coordinates_points_to_its_districts_halls_with_working_kiosks(hall):
    from fleet.models import Site
    from guidance import selectors

    Site.objects.filter(pk=hall.pk).update(latitude=None, longitude=None)
    hall.refresh_from_db()

    nearby = selectors.nearest_halls(hall)

    assert [(h.code, h.distance_km) for h in nearby] == [("hp-02", None)]  # ja-01 is another district
