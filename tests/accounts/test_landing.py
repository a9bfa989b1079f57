"""After logging in, each role lands on the first screen it can use."""

import pytest

from tests.factories import UserFactory


@pytest.mark.parametrize(
    ("role", "page"),
    [
        # The people who answer faults start on the incident queue: problems first.
        ("operations_manager", "/incidents/"),
        ("technical_support", "/incidents/"),
        # Field technicians start on their work orders (the phone pages).
        ("field_technician", "/workorders/m/"),
        ("finance_officer", "/reconciliation/"),
        ("counter_staff", "/reconciliation/lookup/"),
    ],
)
def test_logging_in_lands_on_the_first_screen_the_role_can_use(client, db, role, page):
    UserFactory(username="someone", role=role, regions="all")

    response = client.post(
        "/accounts/login/", {"username": "someone", "password": "correct-horse-battery"}, follow=True
    )

    assert response.redirect_chain[-1][0] == page
    assert response.status_code == 200


def test_an_account_without_a_role_is_told_so(client, db):
    user = UserFactory(username="nobody")
    client.force_login(user)
    assert client.get("/start/").status_code == 403
