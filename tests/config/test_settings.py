"""Bad or missing settings fail at start with a message naming the variable."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_django(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG"}}
    base.update({"KIOSKOPS_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"})
    base.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DATABASE_URL": "mysql://root@localhost/kioskops"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"KIOSKOPS_DEVICE_MAX_BODY_BYTES": "lots"}, "KIOSKOPS_DEVICE_MAX_BODY_BYTES"),
        ({"KIOSKOPS_HEARTBEAT_RETENTION_DAYS": "0"}, "KIOSKOPS_HEARTBEAT_RETENTION_DAYS"),
        ({"KIOSKOPS_HEARTBEAT_INGEST": "sometimes"}, "KIOSKOPS_HEARTBEAT_INGEST"),
        ({"KIOSKOPS_HEARTBEAT_INGEST": "buffered"}, "REDIS_URL"),
    ],
)
def test_a_bad_setting_stops_the_start_with_a_message_naming_the_variable(tmp_path, env, named):
    env.setdefault("DJANGO_SECRET_KEY", "a-secret-key-that-is-long-enough-for-this-test")
    result = start_django(tmp_path, **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_with_nothing_set_but_debug_the_embedded_stack_starts(tmp_path):
    result = start_django(tmp_path, DJANGO_DEBUG="1", DJANGO_SECRET_KEY="")

    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def readme_production_env() -> dict[str, str]:
    """The variables of the README's "Production settings" block, as an operator would copy them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Production settings") :]
    block = section[section.index("```sh") + len("```sh") : section.index("```", section.index("```sh") + 5)]
    env = {}
    for line in block.strip().splitlines():
        name, _, value = line.partition("=")
        env[name.strip()] = value.strip()
    return env


def test_check_deploy_reports_nothing_with_the_readmes_production_settings(tmp_path):
    env = readme_production_env()
    assert env["DJANGO_SECRET_KEY"].startswith("<"), "the README shows a placeholder, never a key"
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "KIOSKOPS_"))}
    base.update(env, KIOSKOPS_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("value", ["X-Forwarded-Proto: https", "X_Forwarded=1"])
def test_a_proxy_ssl_header_that_is_not_a_header_name_stops_the_start(tmp_path, value):
    result = start_django(
        tmp_path,
        DJANGO_SECRET_KEY="a-secret-key-that-is-long-enough-for-this-test",
        DJANGO_SECURE_PROXY_SSL_HEADER=value,
    )

    assert result.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER" in result.stderr
