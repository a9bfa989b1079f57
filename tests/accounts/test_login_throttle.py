"""Login throttling (django-axes): repeated wrong passwords lock the username from that address, the login page
says so in Chinese, and an administrator can lift the lock."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model

from tests.factories import UserFactory

PASSWORD = "a-long-enough-password-1"


@pytest.fixture
def operator(region):
    user = UserFactory(username="operator", role="operations_manager", regions=[region])
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(client, password, username="operator", address="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def fail_until_locked(client, settings, **kw):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wrong", **kw)


def test_five_wrong_passwords_lock_the_account_from_that_address_even_with_the_right_one(client, settings, operator):
    fail_until_locked(client, settings)

    response = log_in(client, PASSWORD)

    assert response.status_code == 429
    page = response.content.decode()
    assert "登录失败次数过多" in page
    assert "管理员" in page
    assert "_auth_user_id" not in client.session


def test_fewer_failures_than_the_limit_still_let_the_right_password_in(client, settings, operator):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "wrong")

    assert log_in(client, PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username="operator").exists(), "a success resets the count"


def test_a_lockout_holds_only_for_that_username_and_address(client, settings, operator, region):
    other = UserFactory(username="other", role="operations_manager", regions=[region])
    other.set_password(PASSWORD)
    other.save()
    fail_until_locked(client, settings)

    assert log_in(client, PASSWORD, address="10.0.0.2").status_code == 302
    client.logout()
    assert log_in(client, PASSWORD, username="other").status_code == 302


def test_an_administrator_unlocks_the_account_from_the_user_list(client, settings, operator):
    fail_until_locked(client, settings)
    assert log_in(client, PASSWORD).status_code == 429

    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(admin)
    response = client.post(
        "/admin/auth/user/", {"action": "unlock_login", "_selected_action": [operator.pk]}, follow=True
    )
    client.logout()

    assert response.status_code == 200
    assert not AccessAttempt.objects.filter(username="operator").exists()
    assert log_in(client, PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_the_lockout_follows_the_forwarded_client_address(client, settings, operator):
    settings.PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": "operator", "password": "wrong"},
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR="203.0.113.7",
        )

    assert AccessAttempt.objects.get(username="operator").ip_address == "203.0.113.7"
    other_client = client.post(
        "/accounts/login/",
        {"username": "operator", "password": PASSWORD},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    assert other_client.status_code == 302
