"""seed_demo: the demo fleet an operator meets on `make run`, built once, whatever the number of runs."""

import json
import stat
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from accounts.models import Region
from accounts.scoping import scope_kiosks
from fleet import demo, events, realtime, services
from fleet.models import DeviceCredential, Kiosk, Site
from tests.factories import KioskFactory

SHANGHAI_DISTRICTS = {
    "黄浦区", "徐汇区", "长宁区", "静安区", "普陀区", "虹口区", "杨浦区", "闵行区",
    "宝山区", "嘉定区", "浦东新区", "金山区", "松江区", "青浦区", "奉贤区", "崇明区",
}  # fmt: skip
BOARD_RELAY = "fleet.realtime.board"  # the dispatch_uid FleetConfig.ready connects the relay with
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    with override_settings(VAR_DIR=tmp_path_factory.mktemp("var")):
        yield settings.VAR_DIR


@pytest.fixture(scope="module")
def seeded(var_dir, django_db_setup, django_db_blocker):
    """The demo, seeded once for the module (it takes seconds) and removed afterwards. Tests that change it do
    so inside their own transaction, which is rolled back."""
    # Seeding here really commits, so on-commit events fire; no board is listening in a test, so do not relay.
    events.kiosks_updated.disconnect(dispatch_uid=BOARD_RELAY)
    with django_db_blocker.unblock():
        try:
            output = seed()
        finally:
            events.kiosks_updated.connect(realtime.broadcast_kiosks_updated, dispatch_uid=BOARD_RELAY)
        try:
            yield output
        finally:
            Kiosk.objects.all().delete()
            Site.objects.all().delete()
            Region.objects.all().delete()
            get_user_model().objects.filter(username__in=[u.username for u in demo.DEMO_USERS]).delete()


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def fleet_snapshot():
    return (
        sorted(Region.objects.values_list("code", "name")),
        sorted(Site.objects.values_list("code", "name", "address", "opening_hours")),
        sorted(Kiosk.objects.values_list("serial", "asset_tag", "model", "status", "software_version")),
        sorted(DeviceCredential.objects.values_list("token_hash", "revoked_at")),
        sorted(get_user_model().objects.values_list("username", "password")),
    )


@pytest.mark.django_db
def test_seed_demo_builds_shanghais_districts_about_forty_halls_and_about_three_hundred_kiosks(seeded):

    assert set(Region.objects.values_list("name", flat=True)) == SHANGHAI_DISTRICTS
    assert 35 <= Site.objects.count() <= 45
    assert 270 <= Kiosk.objects.count() <= 330
    assert not Site.objects.filter(kiosks__isnull=True).exists(), "every hall has kiosks"
    names = list(Site.objects.values_list("name", flat=True))
    assert "浦东新区市民中心" in names
    assert any(name.endswith("社区事务受理服务中心") for name in names)
    assert any(name.endswith("公安分局户政出入境服务大厅") for name in names)
    assert Kiosk.objects.filter(status="maintenance").exclude(maintenance_reason="").count() == 2
    assert not Kiosk.objects.filter(asset_tag__isnull=True).exists()
    assert Kiosk.objects.values("model").distinct().count() >= 3


@pytest.mark.django_db
def test_every_demo_hall_has_weekly_opening_hours_and_coordinates_inside_its_district(seeded):

    districts = {d.code: d for d in demo.DISTRICTS}
    saturday_halls = 0
    for site in Site.objects.select_related("region"):
        assert set(site.opening_hours) == set(WEEKDAYS), site.code
        assert site.opening_hours["sun"] == []
        for day in WEEKDAYS:
            for start, end in site.opening_hours[day]:
                assert start < end, f"{site.code} {day}"
        assert site.opening_hours["mon"], f"{site.code} opens on weekdays"
        saturday_halls += bool(site.opening_hours["sat"])
        district = districts[site.region.code]
        lat, lon = district.centre
        assert abs(float(site.latitude) - lat) <= district.spread, site.code
        assert abs(float(site.longitude) - lon) <= district.spread, site.code
        assert site.address.startswith(f"上海市{site.region.name}")
    assert 0 < saturday_halls < Site.objects.count(), "some halls, not all, open on Saturday mornings"
    assert any(len(site.opening_hours["mon"]) == 2 for site in Site.objects.all()), "some close for lunch"


@pytest.mark.django_db
def test_the_keyring_holds_a_working_token_for_every_demo_kiosk_and_only_its_owner_can_read_it(seeded, var_dir):

    path = var_dir / "demo-tokens.json"
    tokens = json.loads(path.read_text())
    assert set(tokens) == set(Kiosk.objects.values_list("serial", flat=True))
    for serial, token in list(tokens.items())[:: len(tokens) // 10]:
        assert services.kiosk_for_token(token).serial == serial
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.django_db
def test_seeding_again_changes_nothing_and_says_the_demo_already_exists(seeded, var_dir):
    before, keyring = fleet_snapshot(), (var_dir / "demo-tokens.json").read_text()

    output = seed()

    assert "already exists" in output
    assert fleet_snapshot() == before
    assert (var_dir / "demo-tokens.json").read_text() == keyring


@pytest.mark.django_db
def test_a_rerun_after_the_keyring_was_lost_reissues_tokens_so_the_simulator_can_run_again(seeded, var_dir):
    keyring = var_dir / "demo-tokens.json"
    saved = keyring.read_text()
    keyring.unlink()

    try:
        output = seed()
        tokens = json.loads(keyring.read_text())
    finally:
        keyring.write_text(saved)  # the credentials' re-issue is rolled back with the test's transaction

    assert len(tokens) == Kiosk.objects.count()
    assert f"Re-issued {len(tokens)} device tokens" in output
    some_serial = next(iter(tokens))
    assert services.kiosk_for_token(tokens[some_serial]).serial == some_serial


@pytest.mark.django_db
def test_demo_users_log_in_with_the_printed_password_and_see_their_regions(seeded, client):
    output = seeded

    assert f"password for all: {demo.DEMO_PASSWORD}" in output
    User = get_user_model()
    for username, role in [
        ("manager", "operations_manager"),
        ("support", "technical_support"),
        ("technician", "field_technician"),
        ("drill", "drill_coordinator"),
    ]:
        assert username in output
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role]
        # Through the login form: django-axes checks each login against its request.
        login = client.post("/accounts/login/", {"username": username, "password": demo.DEMO_PASSWORD})
        assert login.status_code == 302, f"{username} could not log in"
    assert User.objects.get(username="admin").is_superuser
    all_kiosks = Kiosk.objects.count()
    assert scope_kiosks(Kiosk.objects.all(), User.objects.get(username="manager")).count() == all_kiosks
    technician_sees = scope_kiosks(Kiosk.objects.all(), User.objects.get(username="technician"))
    assert set(technician_sees.values_list("site__region__name", flat=True).distinct()) == {"徐汇区", "闵行区"}


@pytest.mark.django_db
def test_seed_demo_refuses_a_database_whose_kiosks_are_not_the_demos(seeded, var_dir):
    Kiosk.objects.all().delete()
    Site.objects.all().delete()
    KioskFactory(serial="REAL-0001")
    keyring = (var_dir / "demo-tokens.json").read_text()

    with pytest.raises(CommandError, match="1 kiosks that are not the demo's"):
        seed()

    assert list(Kiosk.objects.values_list("serial", flat=True)) == ["REAL-0001"]
    assert (var_dir / "demo-tokens.json").read_text() == keyring


def test_the_demo_plan_is_the_same_on_every_run():
    first, second = demo.build_plan(), demo.build_plan()

    assert [k.serial for k in first.kiosks] == [k.serial for k in second.kiosks]
    assert len({k.serial for k in first.kiosks}) == len(first.kiosks)
    assert len({k.asset_tag for k in first.kiosks}) == len(first.kiosks)
