"""The operator's command-line tools (register a kiosk, rotate or revoke its token, run a health pass), and the
remote commands tech support sends a kiosk: the remote-fix set's rules and the event each finished command sends."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone, translation

from fleet import services
from fleet.models import Kiosk, RemoteCommand
from tests.factories import KioskFactory


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    # Messages from the models are translated; read them in English here.
    with translation.override("en"):
        call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_register_kiosk_prints_only_a_token_that_authenticates_the_new_kiosk(site):
    out, err = run(
        "register_kiosk", "KS-NEW-01", "--site", site.code, "--model", "GRG ZW-H68", "--asset-tag", "ZW-1",
        "--interval", "30", "--grace", "45",
    )  # fmt: skip

    token = out.strip()
    assert "\n" not in token, "stdout carries the token alone, for TOKEN=$(…)"
    kiosk = services.kiosk_for_token(token)
    assert kiosk.serial == "KS-NEW-01"
    assert (kiosk.site, kiosk.model, kiosk.asset_tag) == (site, "GRG ZW-H68", "ZW-1")
    assert (kiosk.heartbeat_interval_s, kiosk.grace_s) == (30, 45)
    assert "KS-NEW-01" in err and site.name in err


def test_register_kiosk_without_interval_or_grace_uses_the_configured_defaults(site, settings):
    out, _ = run("register_kiosk", "KS-NEW-02", "--site", site.code)

    kiosk = services.kiosk_for_token(out.strip())
    assert kiosk.heartbeat_interval_s == settings.KIOSKOPS["DEFAULT_HEARTBEAT_INTERVAL_S"]
    assert kiosk.grace_s == settings.KIOSKOPS["DEFAULT_GRACE_S"]


def test_register_kiosk_at_an_unknown_site_fails_naming_the_site_and_creates_nothing(db):
    with pytest.raises(CommandError, match="Unknown site 'no-such-hall'") as failure:
        run("register_kiosk", "KS-NEW-03", "--site", "no-such-hall")

    assert failure.value.returncode != 0
    assert not Kiosk.objects.exists()


def test_register_kiosk_with_a_serial_already_registered_fails_and_leaves_the_first_kiosk_alone(kiosk, site):
    with pytest.raises(CommandError, match="SERIAL: A kiosk with serial KS-00001 already exists") as failure:
        run("register_kiosk", "KS-00001", "--site", site.code)

    assert failure.value.returncode != 0
    assert Kiosk.objects.count() == 1
    assert services.kiosk_for_token(kiosk.token) == kiosk, "the first kiosk's token still works"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--interval", "2"], "The heartbeat interval must be at least 5 seconds"),
        (["--asset-tag", "TAKEN"], "--asset-tag: Asset tag TAKEN is already used"),
    ],
)
def test_register_kiosk_explains_a_bad_option(site, extra, message):
    KioskFactory(site=site, serial="KS-OTHER", asset_tag="TAKEN")

    with pytest.raises(CommandError, match=message):
        run("register_kiosk", "KS-NEW-04", "--site", site.code, *extra)

    assert not Kiosk.objects.filter(serial="KS-NEW-04").exists()


def test_rotating_a_token_prints_a_new_one_that_works_and_the_old_one_stops_working(kiosk):
    out, err = run("rotate_kiosk_token", kiosk.serial)

    new_token = out.strip()
    assert services.kiosk_for_token(new_token) == kiosk
    assert services.kiosk_for_token(kiosk.token) is None
    assert "revoked" in err


def test_rotating_a_simulated_demo_kiosks_token_updates_the_simulators_keyring(kiosk, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    keyring = tmp_path / "demo-tokens.json"
    keyring.write_text(json.dumps({kiosk.serial: kiosk.token, "OTHER": "kt_other"}))

    out, _ = run("rotate_kiosk_token", kiosk.serial)

    assert json.loads(keyring.read_text()) == {kiosk.serial: out.strip(), "OTHER": "kt_other"}


def test_revoking_a_token_locks_the_kiosk_out_and_a_second_revoke_changes_nothing(kiosk):
    out, _ = run("revoke_kiosk_token", kiosk.serial)

    assert services.kiosk_for_token(kiosk.token) is None
    assert "Revoked the token of kiosk KS-00001" in out
    again, _ = run("revoke_kiosk_token", kiosk.serial)
    assert "had no active token; nothing changed" in again


@pytest.mark.parametrize("command", ["rotate_kiosk_token", "revoke_kiosk_token"])
def test_token_commands_fail_clearly_for_an_unknown_serial(db, command):
    with pytest.raises(CommandError, match="Unknown kiosk 'NOPE'"):
        run(command, "NOPE")


def test_a_retired_kiosk_gets_no_new_token(kiosk):
    services.kiosk_retire(kiosk=kiosk, actor=None)

    with pytest.raises(CommandError, match="retired"):
        run("rotate_kiosk_token", kiosk.serial)


def test_sweep_health_takes_silent_kiosks_offline_and_prints_the_counts(kiosk):
    long_ago = timezone.now() - timedelta(minutes=10)
    services.kiosk_record_heartbeat(
        kiosk=kiosk, beat=services.HeartbeatInput(sent_at=long_ago, components={"network": "ok"}), received_at=long_ago
    )

    out, _ = run("sweep_health")

    assert out.strip() == "went offline: 1, maintenance ended: 0, flapping ended: 0"
    kiosk.refresh_from_db()
    assert kiosk.status == "offline"
    again, _ = run("sweep_health")
    assert again.strip() == "went offline: 0, maintenance ended: 0, flapping ended: 0"


def test_simulate_fleet_without_a_keyring_says_to_seed_the_demo_first(settings, tmp_path):
    settings.VAR_DIR = tmp_path

    with pytest.raises(CommandError, match="No kiosk tokens in .*demo-tokens.json. Run `manage.py seed_demo` first."):
        run("simulate_fleet", "--duration", "1")


# --- The remote-fix command set (fleet.services.command_enqueue) and its finished event -----------------------
# The rules live in the service, so the console, the staff API and the incidents app all meet the same ones.


@pytest.fixture
def finished():
    """The command_finished events published on commit (kwargs of each)."""
    from fleet import events

    captured = []

    def on_finished(sender, **kw):
        captured.append(kw)

    events.command_finished.connect(on_finished, dispatch_uid="test-command-finished")
    yield captured
    events.command_finished.disconnect(dispatch_uid="test-command-finished")


def refusal(**kwargs) -> dict:
    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        services.command_enqueue(**kwargs)
    return refused.value.message_dict


def test_a_factory_reset_is_queued_only_with_a_backup_first_and_the_serial_typed_again(kiosk):
    command = services.command_enqueue(
        kiosk=kiosk, kind="factory_reset", params={"backup": True}, confirm_serial=f" {kiosk.serial} "
    )

    assert (command.kind, command.status, command.params) == ("factory_reset", "queued", {"backup": True})


@pytest.mark.parametrize(
    ("params", "confirm", "field"),
    [
        ({"backup": True}, "", "confirm_serial"),
        ({"backup": True}, "KS-99999", "confirm_serial"),
        ({}, "KS-00001", "backup"),
        ({"backup": False}, "KS-00001", "backup"),
        ({"backup": "yes"}, "KS-00001", "backup"),
    ],
)
def test_a_factory_reset_without_backup_or_confirmation_is_refused_in_chinese(kiosk, params, confirm, field):
    errors = refusal(kiosk=kiosk, kind="factory_reset", params=params, confirm_serial=confirm)

    assert list(errors) == [field]
    assert "恢复出厂设置" in errors[field][0]
    assert not RemoteCommand.objects.exists()


@pytest.mark.parametrize("version", ["3.2.2", "3.3.0-rc.1", "2026.11.1+hotfix2", "10.0", " 3.2.3 "])
def test_a_patch_goes_out_with_the_version_chosen(kiosk, version):
    command = services.command_enqueue(kiosk=kiosk, kind="push_patch", params={"version": version})

    assert command.params == {"version": version.strip()}


@pytest.mark.parametrize(
    "version", [None, "", 3.2, "latest", "v3.2.2", "3", "3.2.2; rm -rf /", "3..2", "1." + "1" * 70]
)
def test_a_patch_without_a_version_the_kiosk_understands_is_refused_in_chinese(kiosk, version):
    params = {} if version is None else {"version": version}

    errors = refusal(kiosk=kiosk, kind="push_patch", params=params)

    assert list(errors) == ["version"]
    assert "版本" in errors["version"][0]
    assert not RemoteCommand.objects.exists()


def test_restarting_an_unknown_module_is_refused(kiosk):
    assert list(refusal(kiosk=kiosk, kind="restart_module", params={"module": "coffee_maker"})) == ["module"]
    assert list(refusal(kiosk=kiosk, kind="restart_module", params={})) == ["module"]


def test_the_staff_api_queues_a_factory_reset_only_with_the_serial_confirmed(api_client, manager, kiosk):
    api_client.force_authenticate(manager)
    url = f"/api/v1/kiosks/{kiosk.serial}/commands/"
    body = {"kind": "factory_reset", "params": {"backup": True}}

    refused = api_client.post(url, body, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    queued = api_client.post(url, {**body, "confirm_serial": kiosk.serial}, format="json")

    assert refused.status_code == 400
    assert "confirm_serial" in refused.json()["errors"]
    assert "序列号" in refused.json()["errors"]["confirm_serial"][0]
    assert queued.status_code == 201 and queued.json()["kind"] == "factory_reset"
    assert RemoteCommand.objects.count() == 1


def test_the_staff_api_refuses_a_patch_without_a_version_naming_the_field(api_client, manager, kiosk):
    api_client.force_authenticate(manager)

    response = api_client.post(f"/api/v1/kiosks/{kiosk.serial}/commands/", {"kind": "push_patch"}, format="json")

    assert response.status_code == 400 and list(response.json()["errors"]) == ["version"]


def test_the_console_asks_twice_before_a_factory_reset(client, manager, kiosk):
    client.force_login(manager)
    url = reverse("fleet:command-issue", args=[kiosk.serial])

    unticked = client.post(url, {"kind": "factory_reset", "confirm_serial": kiosk.serial})
    untyped = client.post(url, {"kind": "factory_reset", "backup": "on"})
    assert unticked.status_code == 400 and 'id="id_backup_errors"' in unticked.content.decode()
    assert untyped.status_code == 400 and 'id="id_confirm_serial_errors"' in untyped.content.decode()
    assert "请输入该终端的序列号" in untyped.content.decode()
    assert not RemoteCommand.objects.exists()

    confirmed = client.post(url, {"kind": "factory_reset", "backup": "on", "confirm_serial": kiosk.serial})

    assert confirmed.status_code == 302
    assert RemoteCommand.objects.get().params == {"backup": True}


def test_the_console_sends_a_patch_with_its_version_or_says_what_is_wrong(client, manager, kiosk):
    client.force_login(manager)
    url = reverse("fleet:command-issue", args=[kiosk.serial])

    wrong = client.post(url, {"kind": "push_patch", "version": "latest"})
    right = client.post(url, {"kind": "push_patch", "version": "3.2.2"})

    assert wrong.status_code == 400 and 'id="id_version_errors"' in wrong.content.decode()
    assert "不是终端能安装的版本" in wrong.content.decode()
    assert right.status_code == 302
    assert RemoteCommand.objects.get().params == {"version": "3.2.2"}


def _report(client, kiosk, command, status, detail=""):
    return client.post(
        f"/api/v1/device/commands/{command.pk}/result",
        json.dumps({"status": status, "detail": detail}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {kiosk.token}",
    )


def test_a_command_finishing_is_announced_once_with_plain_data(
    client, kiosk, site, finished, django_capture_on_commit_callbacks
):
    restart = services.command_enqueue(kiosk=kiosk, kind="restart")
    test = services.command_enqueue(kiosk=kiosk, kind="self_test")

    with django_capture_on_commit_callbacks(execute=True):
        assert _report(client, kiosk, restart, "succeeded", "restarted in 41 s").status_code == 200
        assert _report(client, kiosk, restart, "succeeded", "restarted in 41 s").status_code == 200  # repeated
        assert _report(client, kiosk, test, "failed", "receipt_printer: head jam").status_code == 200

    assert [(e["kind"], e["status"], e["detail"]) for e in finished] == [
        ("restart", "succeeded", "restarted in 41 s"),
        ("self_test", "failed", "receipt_printer: head jam"),
    ], "a result reported twice is announced once"
    first = finished[0]
    assert first["command_id"] == str(restart.pk)
    assert (first["kiosk_id"], first["serial"], first["region_id"]) == (kiosk.pk, kiosk.serial, site.region_id)
    restart.refresh_from_db()
    assert first["completed_at"] == restart.completed_at
    plain = {name: value for name, value in first.items() if name != "signal"}
    assert all(isinstance(value, (str, int, type(restart.completed_at))) for value in plain.values())


def test_cancelled_expired_and_retired_commands_are_announced(
    kiosk, manager, finished, django_capture_on_commit_callbacks
):
    cancelled = services.command_enqueue(kiosk=kiosk, kind="restart")
    expiring = services.command_enqueue(kiosk=kiosk, kind="check_config")
    retired = services.command_enqueue(kiosk=kiosk, kind="in_service_screen")
    RemoteCommand.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        services.command_cancel(command=cancelled, actor=manager)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.commands_expire() == 1
        assert services.commands_expire() == 0, "expiring twice announces nothing more"
    with django_capture_on_commit_callbacks(execute=True):
        services.kiosk_retire(kiosk=kiosk, actor=manager)

    assert [(e["command_id"], e["status"]) for e in finished] == [
        (str(cancelled.pk), "cancelled"),
        (str(expiring.pk), "expired"),
        (str(retired.pk), "cancelled"),
    ]
    assert finished[2]["detail"] == "kiosk retired"


def test_nothing_is_announced_when_the_transaction_rolls_back(kiosk, finished, django_capture_on_commit_callbacks):
    from django.db import transaction

    command = services.command_enqueue(kiosk=kiosk, kind="restart")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            services.command_record_result(kiosk=kiosk, command_id=command.pk, succeeded=True)
            raise RuntimeError("the request failed after recording")

    assert finished == []
