"""The analytics API: the console's figures as JSON, the reviews and their actions; bad input is a 400 naming the
field and stores nothing."""

from datetime import date, timedelta

import pytest

from analytics.models import Review, ReviewAction
from tests.analytics.test_refresh import DAY, at
from tests.analytics.test_views import figures  # noqa: F401 — the fixture
from tests.factories import RegionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_api(api_client):
    user = UserFactory(username="manager", role="operations_manager", regions="all")
    api_client.force_authenticate(user)
    api_client.user = user
    return api_client


def test_the_figures_are_the_consoles_numbers_by_hall(manager_api, figures):  # noqa: F811
    response = manager_api.get(
        "/api/v1/analytics/figures/", {"start": str(DAY - timedelta(days=6)), "end": str(DAY), "by": "site"}
    )

    body = response.json()
    assert response.status_code == 200
    (row,) = body["rows"]
    assert row["label"] == "和平区政务服务大厅" and row["failures"] == 1
    assert row["down_s"] == 2 * 3600 and row["mttr_s"] == 2 * 3600
    assert body["total"]["availability"] == pytest.approx(1 - 2 / (8 * 5))


@pytest.mark.parametrize(
    "query, field",
    [
        ({"start": "2026-11-20", "end": "2026-11-01"}, "end"),
        ({"start": "1999-01-01", "end": "2000-01-01"}, "start"),
        ({"start": "2026-11-01", "end": "2026-11-20", "by": "kiosk"}, "by"),
        ({"start": "2020-01-01", "end": "2026-11-20"}, "end"),
        ({"start": "2026-11-01\x00", "end": "2026-11-20"}, "NUL"),
        ({"end": "2026-11-20"}, "start"),
    ],
)
def test_a_bad_figures_query_is_a_400_naming_the_field(manager_api, query, field):
    response = manager_api.get("/api/v1/analytics/figures/", query)

    assert response.status_code == 400 and field in str(response.json())


def test_a_district_manager_gets_only_their_district(api_client, figures):  # noqa: F811
    api_client.force_authenticate(
        UserFactory(username="xh", role="operations_manager", regions=[RegionFactory(code="xuhui", name="徐汇区")])
    )

    body = api_client.get("/api/v1/analytics/figures/", {"start": str(DAY), "end": str(DAY)}).json()

    assert body["rows"] == [] and body["total"]["failures"] == 0


def test_actions_are_added_and_marked_done_through_the_api(manager_api, figures):  # noqa: F811
    review = Review.objects.create(year=DAY.year, half=2, created_at=at(DAY, 9), created_by=manager_api.user)
    owner = UserFactory(username="wangfang", role="technical_support", regions="all", last_name="王", first_name="芳")

    response = manager_api.post(
        f"/api/v1/analytics/reviews/{review.code}/actions/",
        {"text": "补齐打印机芯", "owner": "wangfang", "due_on": "2027-01-31"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["owner"] == "王芳"
    action_id = response.json()["id"]

    manager_api.force_authenticate(owner)
    response = manager_api.post(f"/api/v1/analytics/actions/{action_id}/done/", {"note": "已补齐"}, format="json")
    assert response.status_code == 200 and response.json()["done_note"] == "已补齐"
    assert manager_api.get(f"/api/v1/analytics/reviews/{review.code}/").json()["actions"][0]["done_at"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"text": "", "owner": "manager", "due_on": "2027-01-31"}, "text"),
        ({"text": "x", "owner": "nobody", "due_on": "2027-01-31"}, "owner"),
        ({"text": "a\x00b", "owner": "manager", "due_on": "2027-01-31"}, "text"),
        ({"text": "x", "owner": "manager", "due_on": "2019-01-01"}, "due_on"),
        ({"text": "x" * 501, "owner": "manager", "due_on": "2027-01-31"}, "text"),
        ({"text": "x", "owner": "manager", "due_on": "99999-01-01"}, "due_on"),
    ],
)
def test_a_bad_action_is_a_400_and_nothing_is_stored(manager_api, body, field):
    review = Review.objects.create(year=2026, half=2, created_at=at(DAY, 9), created_by=manager_api.user)

    response = manager_api.post(f"/api/v1/analytics/reviews/{review.code}/actions/", body, format="json")

    assert response.status_code == 400 and field in response.json().get("errors", response.json()).__str__()
    assert not ReviewAction.objects.exists()


def test_a_technician_cannot_add_actions_or_read_figures(api_client, region):
    review = Review.objects.create(
        year=2026, half=2, created_at=at(DAY, 9), created_by=UserFactory(username="m2", role="operations_manager")
    )
    api_client.force_authenticate(UserFactory(username="t", role="field_technician", regions=[region]))

    assert api_client.get("/api/v1/analytics/figures/", {"start": "2026-11-01", "end": "2026-11-02"}).status_code == 403
    response = api_client.post(
        f"/api/v1/analytics/reviews/{review.code}/actions/",
        {"text": "x", "owner": "t", "due_on": str(date(2027, 1, 1))},
    )
    assert response.status_code == 403
