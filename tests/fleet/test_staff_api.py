"""The staff API as an operator's script sees it: region-scoped reads, filters, and the few writes."""

import pytest
from rest_framework.authtoken.models import Token

from fleet import services
from fleet.models import Kiosk
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory


@pytest.fixture
def fleet(region, site):
    """Two regions: the manager's (huangpu) and another (xuhui)."""
    other_region = RegionFactory(code="xuhui", name="徐汇区")
    other_site = SiteFactory(region=other_region, code="xh-01")
    mine_ok = KioskFactory(site=site, serial="HP-1")
    mine_bad = KioskFactory(site=site, serial="HP-2")
    theirs = KioskFactory(site=other_site, serial="XH-1")
    for k in (mine_ok, mine_bad, theirs):
        services.kiosk_record_heartbeat(
            kiosk=k, beat=services.HeartbeatInput(sent_at=None, components={"network": "ok"})
        )
    services.kiosk_record_heartbeat(
        kiosk=mine_bad, beat=services.HeartbeatInput(sent_at=None, components={"receipt_printer": "hardware_error"})
    )
    return {"mine_ok": mine_ok, "mine_bad": mine_bad, "theirs": theirs}


def serials(response):
    return [k["serial"] for k in response.json()["results"]]


def test_a_manager_lists_only_the_kiosks_of_their_regions(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    response = api_client.get("/api/v1/kiosks/")

    assert response.status_code == 200
    assert serials(response) == ["HP-1", "HP-2"]


def test_a_kiosk_outside_the_users_regions_is_404(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    assert api_client.get("/api/v1/kiosks/XH-1/").status_code == 404
    assert api_client.get("/api/v1/kiosks/XH-1/flips/").status_code == 404


def test_a_city_wide_user_sees_every_region(api_client, fleet):
    api_client.force_authenticate(UserFactory(username="city", role="operations_manager", regions="all"))
    assert serials(api_client.get("/api/v1/kiosks/")) == ["HP-1", "HP-2", "XH-1"]


def test_kiosks_filter_by_status_site_region_and_failing_component(api_client, fleet):
    api_client.force_authenticate(UserFactory(username="city", role="operations_manager", regions="all"))

    assert serials(api_client.get("/api/v1/kiosks/?status=degraded")) == ["HP-2"]
    assert serials(api_client.get("/api/v1/kiosks/?status=online&status=degraded")) == ["HP-1", "HP-2", "XH-1"]
    assert serials(api_client.get("/api/v1/kiosks/?site=xh-01")) == ["XH-1"]
    assert serials(api_client.get("/api/v1/kiosks/?region=huangpu")) == ["HP-1", "HP-2"]
    assert serials(api_client.get("/api/v1/kiosks/?failing_component=receipt_printer")) == ["HP-2"]
    bad = api_client.get("/api/v1/kiosks/?status=sleeping")
    assert bad.status_code == 400 and "status" in bad.json()["errors"]


def test_kiosk_detail_shows_status_components_and_last_seen(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    body = api_client.get("/api/v1/kiosks/HP-2/").json()

    assert body["status"] == "degraded"
    assert body["components"] == {"network": "ok", "receipt_printer": "hardware_error"}
    assert body["failing_components"] == {"receipt_printer": "hardware_error"}
    assert body["last_seen_at"] is not None
    assert "id" not in body, "integer primary keys stay private"


def test_flips_list_a_kiosks_status_changes_newest_first(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    flips = api_client.get("/api/v1/kiosks/HP-2/flips/").json()["results"]

    assert [(f["from_status"], f["to_status"]) for f in flips] == [("online", "degraded"), ("provisioned", "online")]


def test_the_api_accepts_drf_tokens(client, manager, fleet):
    token = Token.objects.create(user=manager)
    response = client.get("/api/v1/kiosks/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_provisioning_returns_a_token_once_that_the_kiosk_can_use(api_client, manager, site, client):
    api_client.force_authenticate(manager)
    response = api_client.post("/api/v1/kiosks/", {"serial": "HP-NEW", "site": "hp-01", "model": "ZW-3000"})

    assert response.status_code == 201
    token = response.json()["token"]
    assert services.kiosk_for_token(token).serial == "HP-NEW"
    assert "token" not in api_client.get("/api/v1/kiosks/HP-NEW/").json()


def test_provisioning_rejects_a_duplicate_serial_or_foreign_site_and_creates_nothing(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    before = Kiosk.objects.count()

    duplicate = api_client.post("/api/v1/kiosks/", {"serial": "HP-1", "site": "hp-01"})
    foreign = api_client.post("/api/v1/kiosks/", {"serial": "NEW", "site": "xh-01"})

    assert duplicate.status_code == 400 and "serial" in duplicate.json()["errors"]
    assert foreign.status_code == 400 and "site" in foreign.json()["errors"]
    assert Kiosk.objects.count() == before


def test_a_drill_coordinator_may_read_but_not_command_or_provision(api_client, region, fleet):
    coordinator = UserFactory(username="drills", role="drill_coordinator", regions=[region])
    api_client.force_authenticate(coordinator)

    assert api_client.get("/api/v1/kiosks/HP-1/").status_code == 200
    assert api_client.post("/api/v1/kiosks/HP-1/commands/", {"kind": "restart"}).status_code == 403
    assert api_client.post("/api/v1/kiosks/HP-1/rotate-token/").status_code == 403
    assert fleet["mine_ok"].commands.count() == 0


def test_technical_support_queues_and_cancels_a_command(api_client, region, fleet):
    support = UserFactory(username="support", role="technical_support", regions=[region])
    api_client.force_authenticate(support)

    created = api_client.post("/api/v1/kiosks/HP-1/commands/", {"kind": "restart"}, format="json")
    listed = api_client.get("/api/v1/kiosks/HP-1/commands/").json()["results"]
    cancelled = api_client.post(f"/api/v1/kiosks/HP-1/commands/{created.json()['id']}/cancel/")

    assert created.status_code == 201 and created.json()["created_by"] == "support"
    assert [c["kind"] for c in listed] == ["restart"]
    assert cancelled.json()["status"] == "cancelled"
    again = api_client.post(f"/api/v1/kiosks/HP-1/commands/{created.json()['id']}/cancel/")
    assert again.status_code == 400


def test_an_unknown_command_kind_is_rejected_by_name(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    response = api_client.post("/api/v1/kiosks/HP-1/commands/", {"kind": "self_destruct"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()["errors"]


def test_maintenance_starts_with_a_reason_and_ends_by_delete(api_client, manager, fleet):
    api_client.force_authenticate(manager)

    missing = api_client.post("/api/v1/kiosks/HP-1/maintenance/", {}, format="json")
    started = api_client.post("/api/v1/kiosks/HP-1/maintenance/", {"reason": "更换打印机"}, format="json")
    ended = api_client.delete("/api/v1/kiosks/HP-1/maintenance/")

    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    assert started.json()["status"] == "maintenance"
    assert ended.json()["status"] == "online"


def test_rotating_a_token_through_the_api_invalidates_the_old_one(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    old = fleet["mine_ok"].token

    response = api_client.post("/api/v1/kiosks/HP-1/rotate-token/")

    assert services.kiosk_for_token(old) is None
    assert services.kiosk_for_token(response.json()["token"]).serial == "HP-1"


@pytest.mark.parametrize("fleet_size", [3, 30])
def test_the_kiosk_list_runs_a_fixed_number_of_queries(
    api_client, manager, site, fleet_size, django_assert_num_queries
):
    for _ in range(fleet_size):
        KioskFactory(site=site)
    api_client.force_authenticate(manager)
    # permissions, operator profile, its regions, count, page
    with django_assert_num_queries(5):
        response = api_client.get("/api/v1/kiosks/")
    assert response.json()["count"] == fleet_size


def test_the_openapi_schema_documents_the_device_protocol_and_the_staff_api_to_a_logged_in_user(client, manager):
    client.force_login(manager)
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/device/heartbeat" in schema
    assert "/api/v1/device/commands/{command_id}/result" in schema
    assert "/api/v1/device/journals/{business_date}" in schema
    assert "/api/v1/kiosks/{serial}/" in schema


def test_the_full_schema_and_its_docs_need_a_login(client, db):
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 401 and schema.json()["code"] == "not_authenticated"
    assert docs.status_code == 302 and docs["Location"].startswith("/accounts/login/")


def test_the_device_protocol_schema_is_public_and_holds_only_device_paths(client, db):
    response = client.get("/api/device-schema/", HTTP_ACCEPT="application/json")
    paths = response.json()["paths"]

    assert response.status_code == 200
    assert "/api/v1/device/heartbeat" in paths
    assert all(p.startswith("/api/v1/device/") for p in paths)
    assert client.get("/api/device-docs/").status_code == 200


def test_anonymous_callers_get_401_with_a_challenge_and_the_api_error_shape(api_client, fleet):
    response = api_client.get("/api/v1/kiosks/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["code"] == "not_authenticated"


def test_a_logged_in_user_without_the_permission_gets_403(client, region, fleet):
    client.force_login(UserFactory(username="counter", role="counter_staff", regions=[region]))
    response = client.get("/api/v1/kiosks/")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_page_holds_at_most_500_kiosks_whatever_limit_is_asked(api_client, manager, site):
    KioskFactory.create_batch(501, site=site)
    api_client.force_authenticate(manager)

    for limit in ("501", "20000", "9223372036854775807"):
        body = api_client.get(f"/api/v1/kiosks/?limit={limit}").json()
        assert len(body["results"]) == 500 and body["next"] is not None


@pytest.mark.parametrize(
    "query",
    ["limit=10000000000000000001", "limit=0", "limit=-5", "limit=ten", "offset=-1", "offset=99999999999999999999"],
)
def test_a_limit_or_offset_that_is_not_a_whole_number_in_range_is_a_400_naming_it(api_client, manager, fleet, query):
    api_client.force_authenticate(manager)
    response = api_client.get(f"/api/v1/kiosks/?{query}")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [query.split("=")[0]]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/kiosks/HP-1%00/", 400, "bad_request"),
        ("/api/v1/kiosks/" + "X" * 65 + "/", 404, "not_found"),
        ("/api/v1/kiosks/HP-1/commands/not-a-uuid/cancel/", 404, "not_found"),
        ("/api/v1/kiosks/HP-1/commands/------------------------------------/cancel/", 404, "not_found"),
        ("/api/v1/no-such-endpoint/", 404, "not_found"),
    ],
)
def test_a_path_the_database_cannot_hold_is_a_json_4xx(api_client, manager, fleet, path, status, code):
    api_client.force_authenticate(manager)
    response = api_client.post(path) if "cancel" in path else api_client.get(path)

    assert response.status_code == status
    assert response.json()["code"] == code


@pytest.mark.parametrize("query", ["site=hp%00", "region=%00", "status=online%00"])
def test_a_filter_value_with_a_nul_character_is_a_400(api_client, manager, fleet, query):
    api_client.force_authenticate(manager)
    response = api_client.get(f"/api/v1/kiosks/?{query}")

    assert response.status_code == 400
    assert "NUL" in response.json()["detail"] or "errors" in response.json()


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind": "restart", "params": {"a": "x\\u0000y"}}',
        b'{"kind": "restart", "params": {"a": "\\ud800"}}',
        b'{"kind": "restart", "params": {"n": 1e400}}',
        b'{"kind": "restart", "params": {"n": ' + b"9" * 400 + b"}}",
        b'{"kind": "restart", "params": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
    ],
)
def test_a_command_whose_params_storage_would_refuse_is_a_400_and_nothing_is_queued(api_client, manager, fleet, body):
    api_client.force_authenticate(manager)
    response = api_client.post("/api/v1/kiosks/HP-1/commands/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert fleet["mine_ok"].commands.count() == 0


def test_a_form_encoded_command_with_a_nul_in_its_params_is_a_400_and_nothing_is_queued(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    response = api_client.post(
        "/api/v1/kiosks/HP-1/commands/",
        "kind=restart&params.a=x%00y",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert "params.a" in response.json()["errors"]
    assert fleet["mine_ok"].commands.count() == 0


def test_maintenance_until_outside_the_business_window_is_refused(api_client, manager, fleet):
    api_client.force_authenticate(manager)
    response = api_client.post(
        "/api/v1/kiosks/HP-1/maintenance/", {"reason": "换屏", "until": "9999-12-31T00:00:00Z"}, format="json"
    )

    assert response.status_code == 400 and "until" in response.json()["errors"]
    assert Kiosk.objects.get(serial="HP-1").status == "online"


@pytest.mark.parametrize("serial", ["HP/9", "HP-\u0001", "X" * 65])
def test_a_serial_no_url_could_name_is_refused_at_provisioning(api_client, manager, site, serial):
    api_client.force_authenticate(manager)
    response = api_client.post("/api/v1/kiosks/", {"serial": serial, "site": "hp-01"}, format="json")

    assert response.status_code == 400 and "serial" in response.json()["errors"]
    assert not Kiosk.objects.filter(serial=serial).exists()
