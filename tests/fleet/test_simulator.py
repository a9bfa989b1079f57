"""The kiosk simulator: each simulated kiosk behaves like a real one, and the fleet runner speaks the real
device protocol. Kiosks are driven through simulated hours by handing them clock values; no sleeping."""

import asyncio
import json
import random
from datetime import datetime

import httpx
import pytest
from django.core.cache import cache

from fleet.api.serializers import HeartbeatIn
from fleet.models import Heartbeat, Kiosk
from fleet.simulator import (
    MINUTE,
    Fault,
    FleetSimulator,
    SimulatedKiosk,
    SimulationSettings,
    kiosks_from_keyring,
)
from fleet.vocabulary import Component, ComponentState
from tests.factories import KioskFactory

T0 = 1_000.0
NOON = datetime.fromisoformat("2025-06-03T12:00:00+08:00")  # a Tuesday: the halls are busy


def make_kiosk(rate=0.0, speed=1.0, seed=1, **kwargs) -> SimulatedKiosk:
    return SimulatedKiosk(
        "KS-00001",
        "kt_token",
        now=T0,
        settings=SimulationSettings(rate=rate, speed=speed),
        rng=random.Random(seed),
        **kwargs,
    )


def run_for(kiosk: SimulatedKiosk, seconds: float, start: float = T0, step: float = 30.0) -> float:
    """Advance the kiosk through `seconds` in steps, as the runner would. Returns the end time."""
    now = start
    while now < start + seconds:
        now += step
        kiosk.advance(now, local_time=NOON)
    return now


def accepted_by_the_server(body: dict) -> dict:
    """The device API's own input serializer: what it accepts is a valid heartbeat."""
    serializer = HeartbeatIn(data=json.loads(json.dumps(body)))
    assert serializer.is_valid(), serializer.errors
    return serializer.validated_data


def test_a_healthy_kiosk_sends_a_heartbeat_the_device_api_accepts():
    kiosk = make_kiosk()

    body = kiosk.heartbeat(NOON)

    data = accepted_by_the_server(body)
    assert data["sent_at"].utcoffset() is not None
    assert body["components"] == {name: "ok" for name in Component.values}
    assert body["error_codes"] == []
    assert set(body["metrics"]) == {"paper_pct", "cash_box_pct", "cpu_temp_c", "disk_free_mb", "net_latency_ms"}


def test_heartbeats_stay_valid_and_physically_plausible_through_a_faulty_simulated_day():
    kiosk = make_kiosk(rate=50, speed=5, seed=7)
    now = T0
    seen_states, seen_codes = set(), set()
    for _ in range(24 * 60):
        now += MINUTE
        kiosk.advance(now, local_time=NOON)
        body = kiosk.heartbeat(NOON)
        accepted_by_the_server(body)
        metrics = body["metrics"]
        assert 0 <= metrics["paper_pct"] <= 100
        assert 0 <= metrics["cash_box_pct"] <= 100
        assert 20 < metrics["cpu_temp_c"] < 85
        assert metrics["disk_free_mb"] > 0
        assert metrics["net_latency_ms"] > 0
        assert set(body["components"].values()) <= set(ComponentState.values)
        seen_states |= set(body["components"].values())
        seen_codes |= set(body["error_codes"])

    assert {"ok", "degraded", "hardware_error"} <= seen_states
    assert {"E-PRN-002", "E-MOD-001"} <= seen_codes


def test_paper_running_out_warns_then_errors_until_staff_refill_the_printer():
    kiosk = make_kiosk()
    kiosk.inject(Fault.PAPER_OUT, T0)
    kiosk.advance(T0 + 1, local_time=NOON)

    assert kiosk.components()["receipt_printer"] == "degraded"
    assert kiosk.error_codes() == ["E-PRN-002"]

    kiosk.advance(kiosk.paper_out_at, local_time=NOON)
    assert kiosk.components()["receipt_printer"] == "degraded"
    assert kiosk.error_codes() == ["E-PRN-003"]
    assert kiosk.metrics()["paper_pct"] == 0

    kiosk.advance(kiosk.paper_refill_at, local_time=NOON)
    assert kiosk.components()["receipt_printer"] == "ok"
    assert kiosk.error_codes() == []
    assert kiosk.metrics()["paper_pct"] == 100


def test_a_printer_jam_needs_a_person_and_clears_when_staff_have_dealt_with_it():
    kiosk = make_kiosk()
    kiosk.inject(Fault.PRINTER_JAM, T0)

    assert kiosk.components()["receipt_printer"] == "user_error"
    assert "E-PRN-001" in kiosk.error_codes()

    run_for(kiosk, 30 * MINUTE)
    assert kiosk.components()["receipt_printer"] == "ok"
    assert "E-PRN-001" not in kiosk.error_codes()


def test_a_scanner_failure_is_a_hardware_error_that_a_module_restart_command_usually_fixes():
    outcomes = []
    for seed in range(40):
        kiosk = make_kiosk(seed=seed)
        kiosk.inject(Fault.SCANNER_FAILURE, T0)
        assert kiosk.components()["qr_scanner"] == "hardware_error"
        assert kiosk.error_codes() == ["E-MOD-001"]

        kiosk.on_heartbeat_response(
            T0 + 5, 200, {"interval_s": 60, "commands": [{"id": "c-1", "kind": "restart_module", "params": {}}]}
        )

        (result,) = kiosk.results
        fixed = kiosk.components()["qr_scanner"] == "ok"
        assert result.status == ("succeeded" if fixed else "failed")
        assert fixed or "still hardware_error" in result.detail
        outcomes.append(fixed)
    assert 25 <= sum(outcomes) < 40, "usually, not always"


def test_restarting_the_printer_module_does_not_clear_a_paper_jam():
    kiosk = make_kiosk()
    kiosk.inject(Fault.PRINTER_JAM, T0)
    command = {"id": "m", "kind": "restart_module", "params": {"module": "receipt_printer"}}

    kiosk.on_heartbeat_response(T0, 200, {"interval_s": 60, "commands": [command]})

    assert [(r.status, "jammed" in r.detail) for r in kiosk.results] == [("failed", True)]
    assert kiosk.components()["receipt_printer"] == "user_error"


def test_a_fraud_attempt_on_the_card_reader_is_reported_as_such_and_survives_a_restart():
    kiosk = make_kiosk()
    kiosk.inject(Fault.FRAUD, T0)
    kiosk.on_heartbeat_response(T0, 200, {"interval_s": 60, "commands": [{"id": "r", "kind": "restart"}]})
    run_for(kiosk, 60)

    assert not kiosk.is_silent
    assert kiosk.components()["card_reader"] == "fraud_attempt"
    assert "E-SEC-001" in kiosk.error_codes()


def test_a_network_loss_silences_the_kiosk_for_a_few_minutes_then_it_reports_again():
    kiosk = make_kiosk()
    kiosk.inject(Fault.NETWORK_LOSS, T0)

    assert kiosk.is_silent and not kiosk.wants_heartbeat(T0 + MINUTE)
    assert 2 * MINUTE <= kiosk.silent_until - T0 <= 6 * MINUTE

    end = run_for(kiosk, 6 * MINUTE + 10, step=5)
    assert not kiosk.is_silent
    assert kiosk.wants_heartbeat(end)


def test_a_kiosk_that_goes_dark_stays_silent_far_longer_than_the_offline_grace():
    kiosk = make_kiosk(speed=100)
    kiosk.inject(Fault.DARK, T0)

    assert kiosk.silent_until - T0 >= 5 * MINUTE, "long enough for the server to call it offline"
    run_for(kiosk, 4 * MINUTE)
    assert kiosk.is_silent


def test_a_restart_command_makes_the_kiosk_quiet_for_about_twenty_seconds_then_healthy_and_reporting():
    kiosk = make_kiosk(seed=3)
    kiosk.inject(Fault.SCANNER_FAILURE, T0)
    restart = {"id": "cmd-restart", "kind": "restart", "params": {}, "expires_at": "2025-06-03T12:15:00+08:00"}

    new = kiosk.on_heartbeat_response(T0, 200, {"interval_s": 60, "status": "degraded", "commands": [restart]})

    assert new == 1
    kiosk.advance(T0 + 10, local_time=NOON)
    assert kiosk.is_silent and not kiosk.wants_heartbeat(T0 + 10)
    assert kiosk.results == [], "the result is reported once the kiosk is back"

    kiosk.advance(T0 + 30, local_time=NOON)
    assert not kiosk.is_silent
    assert kiosk.wants_heartbeat(T0 + 30)
    assert [(r.command_id, r.status) for r in kiosk.results] == [("cmd-restart", "succeeded")]
    assert set(kiosk.heartbeat(NOON)["components"].values()) == {"ok"}


def test_a_redelivered_command_is_carried_out_only_once():
    kiosk = make_kiosk()
    command = {"id": "cmd-1", "kind": "self_test", "params": {}}

    first = kiosk.on_heartbeat_response(T0, 200, {"interval_s": 60, "commands": [command]})
    again = kiosk.on_heartbeat_response(T0 + 60, 200, {"interval_s": 60, "commands": [command]})

    assert (first, again) == (1, 0)
    assert [r.command_id for r in kiosk.results] == ["cmd-1"]


def test_a_self_test_fails_naming_the_faulty_component():
    kiosk = make_kiosk()
    kiosk.inject(Fault.PRINTER_JAM, T0)

    kiosk.on_heartbeat_response(T0, 200, {"interval_s": 60, "commands": [{"id": "st", "kind": "self_test"}]})

    (result,) = kiosk.results
    assert result.status == "failed"
    assert "receipt_printer=user_error" in result.detail
    assert result.data["error_codes"] == ["E-PRN-001"]


def test_other_commands_succeed_and_a_pushed_patch_installs_the_version_chosen_after_a_restart():
    kiosk = make_kiosk(software_version="3.4.1", seed=2)
    commands = [
        {"id": "p", "kind": "push_patch", "params": {"version": "3.4.2"}},
        {"id": "c", "kind": "check_config", "params": {}},
        {"id": "o", "kind": "out_of_service_screen", "params": {}},
    ]

    kiosk.on_heartbeat_response(T0, 200, {"interval_s": 60, "commands": commands})

    assert {r.command_id: r.status for r in kiosk.results} == {"c": "succeeded", "o": "succeeded"}
    assert kiosk.is_silent, "installing the patch restarts the kiosk"
    run_for(kiosk, 2 * MINUTE, step=5)
    assert not kiosk.is_silent
    patch = next(r for r in kiosk.results if r.command_id == "p")
    assert (patch.status, patch.data) == ("succeeded", {"software_version": "3.4.2"})
    assert kiosk.heartbeat(NOON)["software_version"] == "3.4.2"


def test_a_factory_reset_backs_up_first_takes_longer_than_a_restart_and_reports_the_backup():
    kiosk = make_kiosk(seed=4)
    unbacked = {"id": "no", "kind": "factory_reset", "params": {}}
    reset = {"id": "fr", "kind": "factory_reset", "params": {"backup": True}}

    kiosk.on_heartbeat_response(T0, 200, {"interval_s": 60, "commands": [unbacked, reset]})

    assert [(r.command_id, r.status) for r in kiosk.results] == [("no", "failed")]
    assert kiosk.silent_until - T0 >= 4 * 15, "restoring an image takes longer than a reboot"
    run_for(kiosk, 3 * MINUTE, step=5)
    result = next(r for r in kiosk.results if r.command_id == "fr")
    assert result.status == "succeeded" and result.data["backup"].startswith("backup-KS-00001-")
    assert "backed up" in result.detail


def test_a_busy_kiosk_reports_a_payment_in_progress_for_a_few_heartbeats_now_and_then():
    kiosk = make_kiosk(seed=5)
    reports = []
    now = T0
    for _ in range(240):  # four hours of heartbeats at the hall's busiest
        now += 60
        kiosk.advance(now, local_time=NOON)
        reports.append(accepted_by_the_server(kiosk.heartbeat(NOON))["payment_session_active"])

    runs, run = [], 0
    for paying in reports:
        if paying:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert 10 <= len(runs), "payments come and go"
    assert 0.05 < sum(reports) / len(reports) < 0.6, "most heartbeats report no payment"
    assert max(runs) <= 4, "a payment lasts a few heartbeats"


def test_a_disruptive_command_that_arrives_as_a_payment_starts_waits_for_its_end():
    kiosk = make_kiosk(seed=6)
    kiosk.paying_until = T0 + 100
    kiosk.advance(T0 + 1, local_time=NOON)
    assert kiosk.heartbeat(NOON)["payment_session_active"] is True
    commands = [{"id": "r", "kind": "restart", "params": {}}, {"id": "c", "kind": "check_config", "params": {}}]

    kiosk.on_heartbeat_response(T0 + 2, 200, {"interval_s": 60, "commands": commands})

    assert [r.command_id for r in kiosk.results] == ["c"], "checking the configuration does not disturb a payment"
    assert not kiosk.is_silent and [c["id"] for c in kiosk.postponed] == ["r"]
    kiosk.advance(T0 + 101, local_time=NOON)
    assert kiosk.is_silent and kiosk.restart_command == "r", "the restart runs once the payment is over"
    assert kiosk.heartbeat(NOON)["payment_session_active"] is False


def test_a_restart_usually_clears_a_module_fault_and_says_so_when_it_does_not():
    details = []
    for seed in range(30):
        kiosk = make_kiosk(seed=seed)
        kiosk.inject(Fault.SCANNER_FAILURE, T0)
        kiosk.on_heartbeat_response(T0, 200, {"interval_s": 60, "commands": [{"id": "r", "kind": "restart"}]})
        run_for(kiosk, MINUTE, step=5)
        (result,) = kiosk.results
        assert result.status == "succeeded"
        details.append(result.detail)
    cleared = [detail for detail in details if "still failing" not in detail]
    assert 18 <= len(cleared) < 30
    assert all("qr_scanner=hardware_error" in d for d in details if d not in cleared)


def test_the_kiosk_adopts_the_servers_interval_and_backs_off_when_told_to_slow_down():
    kiosk = make_kiosk()

    kiosk.on_heartbeat_response(T0, 200, {"interval_s": 30, "commands": []})
    assert kiosk.interval_s == 30
    assert T0 + 25 <= kiosk.next_beat_at <= T0 + 32

    kiosk.on_heartbeat_response(T0, 429, None, retry_after=120)
    assert kiosk.next_beat_at >= T0 + 120

    kiosk.on_heartbeat_response(T0, 401, None)
    assert kiosk.unauthorised and kiosk.next_beat_at >= T0 + 5 * MINUTE


def test_with_a_fault_rate_of_zero_nothing_ever_breaks():
    kiosk = make_kiosk(rate=0)

    for hour in range(24):
        kiosk.advance(T0 + (hour + 1) * 3600, local_time=NOON)

    assert kiosk.faults == {} and not kiosk.is_silent


def test_the_keyring_becomes_one_simulated_kiosk_per_serial_limited_and_seeded_from_the_demo_plan():
    tokens = {"B-2": "kt_b", "A-1": "kt_a", "C-3": "kt_c"}

    kiosks = kiosks_from_keyring(tokens, now=T0, settings=SimulationSettings(), limit=2, known={"A-1": ("3.3.9", 30)})

    assert [(k.serial, k.token) for k in kiosks] == [("A-1", "kt_a"), ("B-2", "kt_b")]
    assert (kiosks[0].software_version, kiosks[0].interval_s) == ("3.3.9", 30)
    assert all(T0 <= k.next_beat_at <= T0 + k.interval_s for k in kiosks), "first beats spread over an interval"


# --- The runner, against a fake server ------------------------------------------------------------------


class FakeServer:
    """Answers the device protocol like KioskOps: a restart for the first heartbeat, then nothing."""

    def __init__(self, down_for: int = 0):
        self.requests: list[httpx.Request] = []
        self.down_for = down_for  # refuse this many connections first, like a server still starting

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down_for:
            self.down_for -= 1
            raise httpx.ConnectError("connection refused", request=request)
        self.requests.append(request)
        if request.url.path == "/api/v1/device/heartbeat":
            beats = [r for r in self.requests if r.url.path.endswith("heartbeat")]
            commands = [{"id": "cmd-9", "kind": "restart", "params": {}}] if len(beats) == 1 else []
            return httpx.Response(200, json={"interval_s": 60, "status": "online", "commands": commands})
        if request.url.path.startswith("/api/v1/device/commands/"):
            return httpx.Response(200, json={"id": "cmd-9", "status": "succeeded"})
        return httpx.Response(302)


def test_the_runner_waits_for_the_server_then_heartbeats_with_the_device_token_and_reports_results():
    server = FakeServer(down_for=2)

    async def scenario():
        loop = asyncio.get_running_loop()
        # A restart normally takes ~20 s; a quick one lets the test see the result reported.
        quick = SimulationSettings(rate=0, restart_s=(0.2, 0.2))
        kiosk = SimulatedKiosk("KS-1", "kt_secret", now=loop.time(), settings=quick, rng=random.Random(5))
        kiosk.next_beat_at = loop.time()
        lines = []
        simulator = FleetSimulator(
            "http://kioskops.test",
            [kiosk],
            log=lines.append,
            clock=loop.time,
            transport=httpx.MockTransport(server.handle),
        )
        await simulator.run(duration=2.5)
        return simulator, lines

    simulator, lines = asyncio.run(scenario())

    paths = [r.url.path for r in server.requests]
    assert paths[0] == "/", "it waited for the server to answer"
    assert "waiting for the server at http://kioskops.test …" in lines
    heartbeat = next(r for r in server.requests if r.url.path == "/api/v1/device/heartbeat")
    assert heartbeat.headers["Authorization"] == "Device kt_secret"
    accepted_by_the_server(json.loads(heartbeat.content))
    result = next(r for r in server.requests if "/commands/" in r.url.path)
    assert result.url.path == "/api/v1/device/commands/cmd-9/result"
    assert json.loads(result.content)["status"] == "succeeded"
    assert paths.index(result.url.path) < len(paths) - 1, "then it heartbeats again, back from its restart"
    assert simulator.tally.commands == 1 and simulator.tally.results == 1
    assert lines[-1].startswith("stopped.")


def test_the_runner_keeps_going_when_the_server_stops_answering():
    kiosk_box = {}

    def handler(request):
        if request.url.path == "/":
            return httpx.Response(302)
        raise httpx.ConnectError("connection refused", request=request)

    async def scenario():
        loop = asyncio.get_running_loop()
        kiosk = SimulatedKiosk("KS-1", "kt_secret", now=loop.time(), settings=SimulationSettings(rate=0))
        kiosk.next_beat_at = loop.time()
        kiosk_box["kiosk"] = kiosk
        lines = []
        simulator = FleetSimulator(
            "http://kioskops.test", [kiosk], log=lines.append, clock=loop.time, transport=httpx.MockTransport(handler)
        )
        await simulator.run(duration=1.0)
        return simulator, lines, loop.time()

    simulator, lines, end = asyncio.run(scenario())

    assert simulator.tally.unreachable == 1
    assert any("not answering" in line for line in lines)
    assert kiosk_box["kiosk"].next_beat_at > end - 1, "it will try again within an interval"


# --- The runner, against the real device API ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_simulated_kiosks_heartbeat_through_the_real_device_api_and_come_online(live_server):
    registered = [KioskFactory(serial=f"SIM-{n}") for n in range(3)]
    cache.clear()  # the device API's rate-limit counters

    async def scenario():
        loop = asyncio.get_running_loop()
        tokens = {kiosk.serial: kiosk.token for kiosk in registered}
        kiosks = kiosks_from_keyring(tokens, now=loop.time(), settings=SimulationSettings(rate=0))
        for kiosk in kiosks:
            kiosk.next_beat_at = loop.time()
        simulator = FleetSimulator(live_server.url, kiosks, log=lambda line: None, clock=loop.time)
        await simulator.run(duration=3)
        return simulator

    simulator = asyncio.run(scenario())

    assert simulator.tally.by_status == {200: 3}
    assert set(Kiosk.objects.values_list("status", flat=True)) == {"online"}
    assert Heartbeat.objects.count() == 3


def test_a_slow_answer_counts_as_a_timeout_not_as_the_server_going_away():
    def handler(request):
        if request.url.path == "/":
            return httpx.Response(302)
        raise httpx.ReadTimeout("timed out", request=request)

    async def scenario():
        loop = asyncio.get_running_loop()
        kiosk = SimulatedKiosk("KS-1", "kt_secret", now=loop.time(), settings=SimulationSettings(rate=0))
        kiosk.next_beat_at = loop.time()
        lines = []
        simulator = FleetSimulator(
            "http://kioskops.test", [kiosk], log=lines.append, clock=loop.time, transport=httpx.MockTransport(handler)
        )
        await simulator.run(duration=1.0)
        return simulator, lines

    simulator, lines = asyncio.run(scenario())

    assert (simulator.tally.timeouts, simulator.tally.unreachable) == (1, 0)
    assert simulator.server_up
    assert not any("not answering" in line for line in lines)


def test_a_hall_outage_silences_every_kiosk_of_that_hall_and_no_other():
    class Always(random.Random):
        def random(self):
            return 0.0  # the dice always say "now"

    kiosks = [make_kiosk(rate=1.0, seed=n, hall="xh-01" if n < 3 else "pd-02") for n in range(5)]
    simulator = FleetSimulator("http://127.0.0.1:9", kiosks, log=lambda line: None, clock=lambda: 100.0)
    halls = {"xh-01": kiosks[:3]}

    hall = simulator.hall_outage_tick(halls, Always(), tick_s=30)

    assert hall == "xh-01"
    assert [kiosk.is_silent for kiosk in kiosks] == [True, True, True, False, False]
    assert {kiosk.silent_reason for kiosk in kiosks[:3]} == {"hall_outage"}
