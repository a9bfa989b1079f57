"""The fleet-health console as its users meet it: what each role sees, what each form does, what stays hidden."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from fleet import selectors, services
from fleet.models import ErrorCode, Heartbeat, Kiosk, RemoteCommand, StatusChange
from fleet.services import HeartbeatInput
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


def beat(kiosk, **kwargs) -> Kiosk:
    kwargs.setdefault("sent_at", timezone.now())
    kwargs.setdefault("components", {"receipt_printer": "ok", "card_reader": "ok"})
    services.kiosk_record_heartbeat(kiosk=kiosk, beat=HeartbeatInput(**kwargs))
    kiosk.refresh_from_db()
    return kiosk


@pytest.fixture
def other_region_kiosk(db):
    other_site = SiteFactory(
        region=RegionFactory(code="jingan", name="静安区"), code="ja-01", name="静安区政务服务中心"
    )
    return KioskFactory(site=other_site, serial="KS-JA-001")


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def coordinator_client(client, region):
    client.force_login(UserFactory(username="drill", role="drill_coordinator", regions=[region]))
    return client


def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


# --- Access and scoping ---------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(reverse("fleet:board"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_is_in_chinese_by_default(client):
    response = client.get(reverse("login"))

    assert "登录" in response.content.decode()


def test_board_shows_the_managers_kiosks_grouped_by_service_hall(manager_client, kiosk, site):
    beat(kiosk)

    response = manager_client.get(reverse("fleet:board"))

    page = response.content.decode()
    assert response.status_code == 200
    assert site.name in page
    assert f'id="hall-{site.code}"' in page and "1 台正常" in page  # counted in its hall's row, not drawn
    hall = manager_client.get(reverse("fleet:board"), {"site": site.code}).content.decode()
    assert 'id="kiosk-KS-00001"' in hall
    assert 'data-status="online"' in hall
    assert "在线" in hall


def test_manager_does_not_see_kiosks_of_another_region_on_the_board(manager_client, kiosk, other_region_kiosk):
    Kiosk.objects.update(status=Kiosk.Status.OFFLINE)  # both listed as problems, if the manager could see both

    page = manager_client.get(reverse("fleet:board")).content.decode()

    assert "KS-00001" in page
    assert "KS-JA-001" not in page
    assert "静安区" not in page


def test_kiosk_of_another_region_is_not_found_for_the_manager(manager_client, other_region_kiosk):
    assert manager_client.get(reverse("fleet:kiosk", args=["KS-JA-001"])).status_code == 404
    assert manager_client.get(reverse("fleet:kiosk-live", args=["KS-JA-001"])).status_code == 404
    response = manager_client.post(reverse("fleet:command-issue", args=["KS-JA-001"]), {"kind": "restart"})
    assert response.status_code == 404
    assert not RemoteCommand.objects.exists()


def test_live_tiles_never_include_a_kiosk_of_another_region(manager_client, kiosk, other_region_kiosk):
    Kiosk.objects.update(status=Kiosk.Status.OFFLINE)

    response = manager_client.get(reverse("fleet:board-tiles"), {"serials": "KS-00001,KS-JA-001"})

    page = response.content.decode()
    assert 'id="problem-KS-00001"' in page
    assert "KS-JA-001" not in page


def test_user_with_all_regions_sees_every_kiosk(client, kiosk, other_region_kiosk):
    client.force_login(UserFactory(username="city", role="operations_manager", regions="all"))
    Kiosk.objects.update(status=Kiosk.Status.OFFLINE)

    page = client.get(reverse("fleet:board")).content.decode()

    assert "KS-00001" in page and "KS-JA-001" in page


def test_user_without_a_role_is_refused_the_board(client, region):
    client.force_login(UserFactory(username="nobody", regions=[region]))

    assert client.get(reverse("fleet:board")).status_code == 403


# --- The board ------------------------------------------------------------------------------------------


def test_board_counts_kiosks_per_status(manager_client, site):
    online = KioskFactory(site=site)
    beat(online)
    KioskFactory(site=site, status=Kiosk.Status.OFFLINE)
    KioskFactory(site=site, status=Kiosk.Status.OFFLINE)

    page = manager_client.get(reverse("fleet:board")).content.decode()

    assert "<b>3</b> 全部" in page
    assert 'data-status-count="offline"><b>2</b> 离线' in page
    assert 'data-status-count="online"><b>1</b> 在线' in page


def test_board_filters_by_status(manager_client, site):
    online = KioskFactory(site=site, serial="KS-ON")
    beat(online)
    KioskFactory(site=site, serial="KS-OFF", status=Kiosk.Status.OFFLINE)

    page = manager_client.get(reverse("fleet:board"), {"status": "offline"}).content.decode()

    assert 'id="problem-KS-OFF"' in page
    assert "KS-ON" not in page


def test_board_filters_by_failing_component(manager_client, site):
    jammed = beat(KioskFactory(site=site, serial="KS-JAM"), components={"receipt_printer": "user_error"})
    beat(KioskFactory(site=site, serial="KS-FINE"))
    assert jammed.status == Kiosk.Status.DEGRADED

    page = manager_client.get(reverse("fleet:board"), {"component": "receipt_printer"}).content.decode()

    assert 'id="problem-KS-JAM"' in page
    assert "KS-FINE" not in page


def test_board_ignores_a_region_filter_outside_the_users_scope(manager_client, kiosk, other_region_kiosk):
    page = manager_client.get(reverse("fleet:board"), {"region": "jingan"}).content.decode()

    assert "KS-JA-001" not in page


def test_board_marks_fraud_differently_from_a_fault(manager_client, site):
    beat(KioskFactory(site=site, serial="KS-SKIM"), components={"card_reader": "fraud_attempt"})
    beat(KioskFactory(site=site, serial="KS-BROKEN"), components={"card_reader": "hardware_error"})

    page = manager_client.get(reverse("fleet:board")).content.decode()

    assert 'class="problem problem--degraded problem--fraud"' in page
    assert 'class="chip chip--fraud"' in page
    assert 'class="chip chip--fault"' in page
    assert "疑似欺诈" in page or "欺诈" in page


def test_board_shows_a_flapping_badge(manager_client, site):
    KioskFactory(site=site, serial="KS-FLAP", is_flapping=True, status=Kiosk.Status.ONLINE)

    page = manager_client.get(reverse("fleet:board")).content.decode()

    assert 'id="problem-KS-FLAP"' in page
    assert 'data-flapping="true"' in page
    assert "频繁切换" in page


def test_board_runs_the_same_number_of_queries_for_5_and_50_kiosks(manager_client, site, django_assert_num_queries):
    halls = [site, SiteFactory(region=site.region), SiteFactory(region=site.region)]

    def fill(n):
        for i in range(n - Kiosk.objects.count()):
            kiosk = KioskFactory(site=halls[i % 3])
            beat(kiosk, components={"receipt_printer": "degraded"}, error_codes=["E-PRN-002"])

    fill(5)
    with CaptureQueriesContext(connection) as five:
        assert manager_client.get(reverse("fleet:board")).status_code == 200
    fill(50)
    with django_assert_num_queries(len(five.captured_queries)):
        response = manager_client.get(reverse("fleet:board"))
    assert response.content.decode().count('class="problem ') == 50


def test_live_tiles_swap_only_the_changed_kiosks_out_of_band(manager_client, site):
    a = KioskFactory(site=site, serial="KS-A", status=Kiosk.Status.OFFLINE)
    KioskFactory(site=site, serial="KS-B", status=Kiosk.Status.OFFLINE)
    key = selectors.problem_sort_key(a)

    page = manager_client.get(
        reverse("fleet:board-tiles"), {"serials": "KS-A", "shown": f"KS-A~{key}"}
    ).content.decode()

    assert '<li id="problem-KS-A"' in page and 'hx-swap-oob="true"' in page
    assert "KS-B" not in page
    assert 'id="board-counts" class="counts" hx-swap-oob="true"' in page


def test_live_tiles_send_the_whole_grid_when_the_board_is_filtered(manager_client, site):
    KioskFactory(site=site, serial="KS-A", status=Kiosk.Status.OFFLINE)

    page = manager_client.get(reverse("fleet:board-tiles"), {"serials": "KS-A", "status": "offline"}).content.decode()

    assert 'id="board-problems" class="card board-problems"' in page and 'hx-swap-oob="true"' in page
    assert 'id="problem-KS-A"' in page


# --- The kiosk page -------------------------------------------------------------------------------------


def test_kiosk_page_shows_the_hall_its_hours_and_the_device(manager_client, kiosk, site):
    beat(kiosk, software_version="3.2.1", sent_at=timezone.now() - timedelta(seconds=400))

    page = manager_client.get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()

    assert site.name in page
    assert "09:00–17:00" in page
    assert "ZW-3000" in page
    assert "3.2.1" in page
    assert "时钟偏差" in page and "-400" in page


def test_kiosk_page_explains_error_codes_in_chinese_by_default(manager_client, kiosk):
    beat(kiosk, components={"receipt_printer": "user_error"}, error_codes=["E-PRN-001"])

    page = manager_client.get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()

    assert "打印机卡纸" in page
    assert "打开打印机舱清除卡纸" in page


def test_kiosk_page_explains_error_codes_in_english_when_english_is_chosen(manager_client, kiosk):
    beat(kiosk, components={"receipt_printer": "user_error"}, error_codes=["E-PRN-001"])

    page = english(manager_client).get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()

    assert "Receipt printer paper jam" in page
    assert "Open the printer bay and clear the jam" in page
    assert "Remote commands" in page


def test_kiosk_page_draws_metric_charts_from_the_last_day_of_heartbeats(manager_client, kiosk):
    for paper in (80, 60, 40):
        beat(kiosk, metrics={"paper_pct": paper, "net_latency_ms": 120})

    page = manager_client.get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()

    assert 'data-metric="paper_pct"' in page
    assert 'data-metric="net_latency_ms"' in page
    assert "<svg" in page
    assert "<script" not in page.split("<main", 1)[1]


def test_kiosk_page_lists_status_changes_with_their_reason(manager_client, kiosk):
    beat(kiosk)
    beat(kiosk, components={"receipt_printer": "hardware_error"})

    page = manager_client.get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()

    assert StatusChange.objects.filter(kiosk=kiosk).count() == 2
    assert "首次心跳" in page
    assert "部件异常" in page
    # The stored detail names the component by its code: a tooltip, not text on the page.
    assert 'title="receipt_printer=hardware_error"' in page
    assert "receipt_printer=hardware_error" not in re.sub(r'title="[^"]*"', "", page)


# --- Remote commands ------------------------------------------------------------------------------------


def test_issuing_a_restart_shows_it_as_pending(manager_client, kiosk):
    response = manager_client.post(
        reverse("fleet:command-issue", args=[kiosk.serial]), {"kind": "restart"}, follow=True
    )

    page = response.content.decode()
    assert RemoteCommand.objects.get().kind == "restart"
    assert 'data-command-status="queued" data-command-kind="restart"' in page
    assert "重启" in page


def test_restarting_a_module_without_naming_it_is_refused_next_to_the_field(manager_client, kiosk):
    response = manager_client.post(reverse("fleet:command-issue", args=[kiosk.serial]), {"kind": "restart_module"})

    assert response.status_code == 400
    assert 'id="id_module_errors"' in response.content.decode()
    assert not RemoteCommand.objects.exists()


def test_an_unknown_command_is_refused_next_to_the_field(manager_client, kiosk):
    response = manager_client.post(reverse("fleet:command-issue", args=[kiosk.serial]), {"kind": "self_destruct"})

    assert response.status_code == 400
    assert 'id="id_kind_errors"' in response.content.decode()
    assert not RemoteCommand.objects.exists()


def test_a_service_refusal_shows_on_the_form_and_queues_nothing(manager_client, kiosk):
    Kiosk.objects.filter(pk=kiosk.pk).update(status=Kiosk.Status.RETIRED)

    response = manager_client.post(reverse("fleet:command-issue", args=[kiosk.serial]), {"kind": "restart"})

    assert response.status_code == 400
    assert "已退役的设备不能接收指令" in response.content.decode()
    assert not RemoteCommand.objects.exists()


def test_cancelling_a_pending_command(manager_client, kiosk, manager):
    command = services.command_enqueue(kiosk=kiosk, kind="restart", actor=manager)

    manager_client.post(reverse("fleet:command-cancel", args=[kiosk.serial, command.pk]))

    command.refresh_from_db()
    assert command.status == RemoteCommand.Status.CANCELLED


def test_drill_coordinator_cannot_issue_commands(coordinator_client, kiosk):
    page = coordinator_client.get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()
    response = coordinator_client.post(reverse("fleet:command-issue", args=[kiosk.serial]), {"kind": "restart"})

    assert 'id="command-form"' not in page
    assert response.status_code == 403
    assert not RemoteCommand.objects.exists()


# --- Maintenance ----------------------------------------------------------------------------------------


def test_maintenance_with_a_reason_puts_the_kiosk_in_maintenance(manager_client, kiosk):
    response = manager_client.post(
        reverse("fleet:maintenance-start", args=[kiosk.serial]), {"reason": "更换打印机"}, follow=True
    )

    kiosk.refresh_from_db()
    assert kiosk.status == Kiosk.Status.MAINTENANCE
    assert 'id="kiosk-status-badge">维护中' in response.content.decode()


def test_maintenance_without_a_reason_is_refused_next_to_the_field(manager_client, kiosk):
    response = manager_client.post(reverse("fleet:maintenance-start", args=[kiosk.serial]), {"reason": " "})

    kiosk.refresh_from_db()
    assert response.status_code == 400
    assert 'id="id_reason_errors"' in response.content.decode()
    assert "请说明" in response.content.decode()
    assert kiosk.status == Kiosk.Status.PROVISIONED


def test_maintenance_ending_in_the_past_is_refused_next_to_the_field(manager_client, kiosk):
    past = timezone.localtime() - timedelta(hours=1)

    response = manager_client.post(
        reverse("fleet:maintenance-start", args=[kiosk.serial]),
        {"reason": "巡检", "until": past.strftime("%Y-%m-%dT%H:%M")},
    )

    kiosk.refresh_from_db()
    assert response.status_code == 400
    assert 'id="id_until_errors"' in response.content.decode()
    assert kiosk.status == Kiosk.Status.PROVISIONED


def test_ending_maintenance_returns_the_kiosk_to_what_its_heartbeats_say(manager_client, kiosk, manager):
    beat(kiosk)
    services.kiosk_start_maintenance(kiosk=kiosk, actor=manager, reason="巡检")

    manager_client.post(reverse("fleet:maintenance-end", args=[kiosk.serial]))

    kiosk.refresh_from_db()
    assert kiosk.status == Kiosk.Status.ONLINE


def test_drill_coordinator_cannot_start_maintenance(coordinator_client, kiosk):
    response = coordinator_client.post(reverse("fleet:maintenance-start", args=[kiosk.serial]), {"reason": "演练"})

    kiosk.refresh_from_db()
    assert response.status_code == 403
    assert kiosk.status == Kiosk.Status.PROVISIONED


# --- Tokens and provisioning ----------------------------------------------------------------------------


def test_a_rotated_token_is_shown_once_and_never_again(manager_client, kiosk):
    response = manager_client.post(reverse("fleet:token-rotate", args=[kiosk.serial]), follow=True)

    page = response.content.decode()
    token = page.split('<code class="token" id="fresh-token">', 1)[1].split("</code>", 1)[0]
    assert services.kiosk_for_token(token) == kiosk
    assert services.kiosk_for_token(kiosk.token) is None
    assert response["Cache-Control"] == "no-store"
    again = manager_client.get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()
    assert token not in again
    assert 'id="fresh-token"' not in again


def test_revoking_the_token_locks_the_kiosk_out(manager_client, kiosk):
    response = manager_client.post(reverse("fleet:token-revoke", args=[kiosk.serial]), follow=True)

    assert services.kiosk_for_token(kiosk.token) is None
    assert "没有有效令牌" in response.content.decode()


def test_drill_coordinator_sees_no_token_buttons_and_cannot_rotate(coordinator_client, kiosk):
    page = coordinator_client.get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()
    response = coordinator_client.post(reverse("fleet:token-rotate", args=[kiosk.serial]))

    assert 'id="token-rotate"' not in page
    assert 'id="token-revoke"' not in page
    assert response.status_code == 403
    assert services.kiosk_for_token(kiosk.token) == kiosk


def test_provisioning_registers_the_kiosk_and_shows_its_token_once(manager_client, site):
    response = manager_client.post(
        reverse("fleet:kiosk-provision"),
        {
            "site": site.code,
            "serial": "KS-NEW-1",
            "model": "ZW-5000",
            "asset_tag": "A-1",
            "heartbeat_interval_s": 30,
            "grace_s": 60,
        },
        follow=True,
    )

    kiosk = Kiosk.objects.get(serial="KS-NEW-1")
    page = response.content.decode()
    token = page.split('<code class="token" id="fresh-token">', 1)[1].split("</code>", 1)[0]
    assert services.kiosk_for_token(token) == kiosk
    assert (kiosk.heartbeat_interval_s, kiosk.grace_s, kiosk.site) == (30, 60, site)
    assert token not in manager_client.get(reverse("fleet:kiosk", args=["KS-NEW-1"])).content.decode()


def test_provisioning_a_duplicate_serial_is_refused_next_to_the_serial(manager_client, kiosk, site):
    response = manager_client.post(
        reverse("fleet:kiosk-provision"),
        {"site": site.code, "serial": kiosk.serial, "heartbeat_interval_s": 60, "grace_s": 90},
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_serial_errors"' in page
    assert kiosk.serial in page
    assert Kiosk.objects.count() == 1


def test_provisioning_with_a_too_short_interval_is_refused_next_to_the_field(manager_client, site):
    response = manager_client.post(
        reverse("fleet:kiosk-provision"),
        {"site": site.code, "serial": "KS-FAST", "heartbeat_interval_s": 1, "grace_s": 0},
    )

    assert response.status_code == 400
    assert 'id="id_heartbeat_interval_s_errors"' in response.content.decode()
    assert not Kiosk.objects.exists()


def test_provisioning_into_a_hall_of_another_region_is_refused(manager_client, other_region_kiosk):
    response = manager_client.post(
        reverse("fleet:kiosk-provision"),
        {"site": "ja-01", "serial": "KS-SNEAK", "heartbeat_interval_s": 60, "grace_s": 90},
    )

    assert response.status_code == 400
    assert 'id="id_site_errors"' in response.content.decode()
    assert not Kiosk.objects.filter(serial="KS-SNEAK").exists()


def test_drill_coordinator_cannot_provision(coordinator_client, site):
    assert coordinator_client.get(reverse("fleet:kiosk-provision")).status_code == 403


# --- Language -------------------------------------------------------------------------------------------


def test_switching_to_english_shows_english_labels(manager_client, kiosk):
    response = manager_client.post(
        reverse("set_language"), {"language": "en", "next": reverse("fleet:board")}, follow=True
    )

    page = response.content.decode()
    assert "Fleet board" in page
    assert "Provisioned" in page
    assert "设备看板" not in page


def test_heartbeats_older_than_a_day_are_not_charted(manager_client, kiosk):
    beat(kiosk, metrics={"paper_pct": 50})
    Heartbeat.objects.update(received_at=timezone.now() - timedelta(days=2))

    page = manager_client.get(reverse("fleet:kiosk", args=[kiosk.serial])).content.decode()

    assert 'data-metric="paper_pct"' not in page


# --- Admin ----------------------------------------------------------------------------------------------


def test_admin_shows_reference_data_and_keeps_commands_read_only(client, kiosk, manager):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    command = services.command_enqueue(kiosk=kiosk, kind="restart", actor=manager)

    for name in ("site", "kiosk", "errorcode", "remotecommand"):
        assert client.get(reverse(f"admin:fleet_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:accounts_region_changelist")).status_code == 200
    error_code = ErrorCode.objects.create(
        code="E-TEST-1", category="device", kind="wont_start", title_zh="测", title_en="T"
    )
    assert client.get(reverse("admin:fleet_errorcode_change", args=[error_code.pk])).status_code == 200
    assert client.get(reverse("admin:fleet_kiosk_add")).status_code == 403
    command_page = client.get(reverse("admin:fleet_remotecommand_change", args=[command.pk])).content.decode()
    assert 'name="_save"' not in command_page
    user_page = client.get(reverse("admin:auth_user_change", args=[manager.pk])).content.decode()
    assert "operator_profile-0-regions" in user_page
