"""The production security settings as a browser or a load balancer meets them."""

import pytest
from django.test import Client


@pytest.fixture
def production(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    return settings


def test_plain_http_is_redirected_to_https_but_the_health_probe_is_answered(production, db):
    client = Client()

    redirected = client.get("/accounts/login/")
    probe = client.get("/healthz")

    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")
    assert probe.status_code == 200


def test_behind_the_proxy_https_requests_get_hsts_and_secure_cookies(production, db):
    client = Client(HTTP_X_FORWARDED_PROTO="https")

    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response.cookies["csrftoken"]["secure"]
