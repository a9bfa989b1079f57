"""One error shape under /api/: whatever goes wrong, a script reads JSON {"code", "detail"[, "errors"]}."""

import pytest
from django.test import Client

from fleet.api.views import KioskViewSet


def assert_api_error(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_an_unknown_api_path_is_a_json_404(client, db):
    assert_api_error(client.get("/api/v1/nothing-here/"), 404, "not_found")


def test_a_console_path_keeps_its_html_404(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_the_endpoint_does_not_have_is_a_json_405_with_allow(api_client, manager):
    api_client.force_authenticate(manager)
    response = api_client.delete("/api/v1/kiosks/")
    assert_api_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_a_plain_views_405_under_the_api_is_json_too(client, db):
    response = client.get("/api/v1/device/heartbeat")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert "code" in response.json()


def test_a_server_error_under_the_api_is_json(manager, monkeypatch):
    def broken(self, request, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(KioskViewSet, "list", broken)
    client = Client(raise_request_exception=False)
    client.force_login(manager)

    body = assert_api_error(client.get("/api/v1/kiosks/"), 500, "server_error")
    assert "boom" not in body["detail"], "no internals leak"


def test_a_session_post_without_the_csrf_token_is_a_json_403(manager, kiosk):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    response = client.post(
        f"/api/v1/kiosks/{kiosk.serial}/commands/", {"kind": "restart"}, content_type="application/json"
    )

    body = assert_api_error(response, 403, "permission_denied")
    assert "CSRF" in body["detail"]
    assert kiosk.commands.count() == 0


@pytest.mark.parametrize(
    "body",
    [b"{" * 5000 + b"}" * 5000, b'{"kind": ' + b"1" * 400 + b"}", b'{"kind": 1e400}', b"\xff\xfe{}"],
)
def test_a_body_outside_the_input_policy_is_a_400_naming_the_problem(api_client, manager, kiosk, body):
    api_client.force_authenticate(manager)
    response = api_client.post(f"/api/v1/kiosks/{kiosk.serial}/commands/", body, content_type="application/json")

    body = assert_api_error(response, 400, "invalid")
    assert body["errors"]
    assert kiosk.commands.count() == 0


def test_a_nul_anywhere_in_an_api_query_string_is_a_400(api_client, manager):
    api_client.force_authenticate(manager)
    assert_api_error(api_client.get("/api/v1/recon/items/?kiosk=a%00b"), 400, "bad_request")
    assert_api_error(api_client.get("/api/v1/recon/lookup/?q=%00"), 400, "bad_request")


def test_a_filter_date_outside_the_business_window_is_a_400_naming_it(api_client, db):
    from tests.factories import UserFactory

    api_client.force_authenticate(UserFactory(username="finance", role="finance_supervisor", regions="all"))
    response = api_client.get("/api/v1/recon/items/?date_from=1900-01-01")

    body = assert_api_error(response, 400, "invalid")
    assert list(body["errors"]) == ["date_from"]


def test_a_404_names_no_model_and_speaks_the_users_language(api_client, manager):
    api_client.force_authenticate(manager)
    response = api_client.get("/api/v1/kiosks/NO-SUCH-KIOSK/")

    body = assert_api_error(response, 404, "not_found")
    assert "Kiosk" not in body["detail"]
    assert body["detail"] == "未找到。"


def test_the_schema_documents_the_error_shape_for_every_operations_4xx(client, manager):
    client.force_login(manager)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    assert schema["components"]["schemas"]["ApiError"]["required"] == ["code", "detail"]
    ref = {"$ref": "#/components/schemas/ApiError"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("401", "403"):
                assert status in operation["responses"], f"{method.upper()} {path} {status}"
    heartbeat_401 = schema["paths"]["/api/v1/device/heartbeat"]["post"]["responses"]["401"]
    assert heartbeat_401["content"]["application/json"]["schema"] == ref
    kiosk_404 = schema["paths"]["/api/v1/kiosks/{serial}/"]["get"]["responses"]["404"]
    assert kiosk_404["content"]["application/json"]["schema"] == ref
