"""The operator's command-line tools: register a kiosk, rotate or revoke its token, run a health pass."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone, translation

from fleet import services
from fleet.models import Kiosk
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
