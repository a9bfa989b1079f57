"""The embedded PostgreSQL: a real server from a wheel, its cluster kept under var/, started before the processes
and stopped with them, one `make run` at a time; a bad DATABASE_URL is named before anything runs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest
from django.db import connection

from config.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError, check_database_url
from tests.config.test_settings import start_django

ROOT = Path(__file__).resolve().parents[2]


def launcher(var_dir: Path, *args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["KIOSKOPS_VAR_DIR"] = str(var_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "config.embedded_postgres", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def postgres_processes_of(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if (process.info["name"] or "").startswith("postgres") and any(str(data_dir) in part for part in cmdline):
            found.append(process)
    return found


@pytest.fixture
def cluster(tmp_path):
    server = EmbeddedPostgres(tmp_path / "postgres")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_server_outlives_its_test(tmp_path):
    """A server left running by a failed test would outlive its folder (pytest keeps three runs' temporary folders)."""
    yield
    for process in postgres_processes_of(tmp_path):
        process.terminate()


def test_the_embedded_server_keeps_its_data_when_it_is_stopped_and_started_again(cluster):
    cluster.acquire()
    with psycopg.connect(**cluster.conninfo("kioskops"), autocommit=True) as db:
        db.execute("CREATE TABLE kept (note text)")
        db.execute("INSERT INTO kept VALUES ('still here')")

    assert cluster.release() is True
    assert cluster.running_pid() is None

    cluster.acquire()
    with psycopg.connect(**cluster.conninfo("kioskops")) as db:
        assert db.execute("SELECT note FROM kept").fetchall() == [("still here",)]
    cluster.release()


def test_the_server_stays_up_until_the_last_process_using_it_leaves(cluster, tmp_path):
    other = launcher(tmp_path, "run", "--", sys.executable, "-c", "import time; time.sleep(60)")
    try:
        assert "Embedded PostgreSQL started" in other.stdout.readline()
        cluster.acquire()

        assert cluster.release() is False, "the other process still uses it"
        assert cluster.running_pid() is not None
    finally:
        other.terminate()
        other.communicate(timeout=30)
    assert cluster.running_pid() is None


def test_a_stop_request_while_the_server_starts_runs_nothing_and_leaves_no_server(tmp_path):
    run = launcher(tmp_path, "run", "--", sys.executable, "-c", "print('must not run')")
    time.sleep(0.3)  # inside the server's start (its first start takes about a second: initdb)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)

    assert "must not run" not in out
    assert postgres_processes_of(tmp_path / "postgres") == []


def test_a_second_run_says_it_is_already_running_and_ctrl_c_leaves_nothing_behind(tmp_path):
    first = launcher(tmp_path, "run", "--", sys.executable, "-c", "import time; time.sleep(60)", start_new_session=True)
    line = first.stdout.readline()
    assert "Embedded PostgreSQL started" in line, first.stderr.read() if first.poll() is not None else line

    second = launcher(tmp_path, "run", "--", sys.executable, "-c", "print('must not run')")
    out, err = second.communicate(timeout=30)
    assert second.returncode == 1
    assert f"already running (pid {first.pid})" in err
    assert "must not run" not in out
    clean = launcher(tmp_path, "stop")
    assert clean.wait(timeout=30) == 1, "`make clean` must not pull the database from under a running demo"

    os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
    out, err = first.communicate(timeout=60)

    assert "Embedded PostgreSQL stopped" in out, err
    assert postgres_processes_of(tmp_path / "postgres") == []
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
    again = launcher(tmp_path, "run", "--", sys.executable, "-c", "print('second start')")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "second start" in out


def test_a_server_killed_without_warning_is_taken_over_by_the_next_start(cluster):
    cluster.acquire()
    psutil.Process(cluster.running_pid()).kill()
    time.sleep(0.5)

    cluster.acquire()

    with psycopg.connect(**cluster.conninfo("kioskops")) as db:
        assert db.execute("SELECT 1").fetchone() == (1,)
    cluster.release()


def test_a_folder_that_holds_something_else_stops_the_start_naming_the_folder(tmp_path):
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "notes.txt").write_text("not a database")

    with pytest.raises(EmbeddedPostgresError) as error:
        EmbeddedPostgres(tmp_path / "postgres").acquire()

    assert str(tmp_path / "postgres") in str(error.value)
    assert "make clean" in str(error.value)


def test_a_server_that_fails_to_start_shows_the_cause_from_its_log_and_the_folder(cluster):
    cluster.acquire()
    cluster.release()
    with open(cluster.data_dir / "postgresql.conf", "a") as conf:
        conf.write("\nshared_buffers = 'lots'\n")

    with pytest.raises(EmbeddedPostgresError) as error:
        cluster.acquire()

    message = str(error.value)
    assert str(cluster.data_dir) in message
    assert "shared_buffers" in message


@pytest.mark.django_db
def test_a_database_url_that_cannot_be_reached_is_named_with_the_reason():
    problem = check_database_url("postgres://postgres@127.0.0.1:1/kioskops")

    assert problem.startswith("Environment variable DATABASE_URL")
    assert "127.0.0.1:1" in problem


@pytest.mark.django_db
def test_a_database_url_with_a_user_the_server_refuses_is_named_with_the_reason():
    settings = connection.settings_dict
    host = settings["HOST"].replace("/", "%2F")
    problem = check_database_url(f"postgres://no_such_role@{host}:{settings['PORT'] or 5432}/kioskops")

    assert problem.startswith("Environment variable DATABASE_URL")
    assert "no_such_role" in problem


@pytest.mark.parametrize("url", ["sqlite:///var/kioskops.sqlite3", "mysql://root@localhost/kioskops"])
def test_a_database_url_that_is_not_postgresql_is_refused(url):
    assert check_database_url(url) == "Environment variable DATABASE_URL must point at PostgreSQL (postgres://…)."


def test_run_with_an_unreachable_database_url_runs_nothing_and_names_the_variable(tmp_path):
    env = {**os.environ, "KIOSKOPS_VAR_DIR": str(tmp_path), "DATABASE_URL": "postgres://postgres@127.0.0.1:1/x"}
    result = subprocess.run(
        [sys.executable, "-m", "config.embedded_postgres", "run", "--", sys.executable, "-c", "print('ran')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr
    assert "ran" not in result.stdout


def test_a_run_inside_a_run_only_runs_its_command(tmp_path):
    """`make run` runs `make setup`, which is wrapped in a run of its own so that it also works alone."""
    inner = [sys.executable, "-m", "config.embedded_postgres", "run", "--", sys.executable, "-c", "print('inner')"]
    outer = launcher(tmp_path, "run", "--", *inner)
    out, err = outer.communicate(timeout=60)

    assert outer.returncode == 0, err
    assert "inner" in out
    assert "already running" not in err


def test_a_sqlite_database_url_stops_the_start_naming_the_variable(tmp_path):
    result = start_django(
        tmp_path,
        DATABASE_URL="sqlite:///var/kioskops.sqlite3",
        DJANGO_SECRET_KEY="a-secret-key-long-enough-for-this-test",
    )

    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_without_database_url_the_settings_point_at_the_embedded_cluster_in_the_var_folder(tmp_path):
    env = {"KIOSKOPS_VAR_DIR": str(tmp_path), "DJANGO_DEBUG": "1", "DJANGO_SECRET_KEY": ""}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "d = settings.DATABASES['default']; print(d['ENGINE'], d['HOST'], d['NAME'])"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}, **env,
             "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", str(tmp_path / "postgres"), "kioskops"]


def test_a_cluster_whose_folder_path_is_too_long_for_a_socket_listens_in_a_short_folder(tmp_path):
    deep = tmp_path / ("a-folder-with-a-long-name-" * 4) / "var" / "postgres"
    deep.parent.mkdir(parents=True)
    cluster = EmbeddedPostgres(deep)
    try:
        cluster.acquire()

        assert not cluster.address.host.startswith(str(tmp_path))
        with psycopg.connect(**cluster.conninfo("kioskops")) as db:
            assert db.execute("SELECT current_database()").fetchone() == ("kioskops",)
    finally:
        cluster.stop()
