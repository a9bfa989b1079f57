"""Helpers both benchmarks use: a free loopback port, a server's whole process group stopped, a scratch
PostgreSQL database made and dropped."""

import os
import signal
import socket
import subprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(process: subprocess.Popen | None) -> None:
    """SIGTERM the whole group (gunicorn's master and workers), then SIGKILL whatever is left after 10 s."""
    if process is None or process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def recreate_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_stack(admin_url: str, database: str, redis_url: str, root) -> None:
    """An empty, migrated database and a flushed Redis db, then Django set up in this process against them
    (DATABASE_URL and REDIS_URL must already be in the environment)."""
    import sys

    import redis

    print(f"Database {database}: drop, create, migrate; Redis {redis_url}: flush …", flush=True)
    recreate_database(admin_url, database)
    redis.Redis.from_url(redis_url).flushdb()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root, check=True, timeout=300)
    sys.path.insert(0, str(root))
    import django

    django.setup()


def clean_up(admin_url: str, database: str, workdir, *, keep: bool) -> None:
    """After a run, however it ended: close Django's connections, then drop the scratch database and remove the
    work folder, unless asked to keep them. A cleanup error is printed, never raised over the run's own."""
    import shutil
    import sys

    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # Django may not be set up yet when an early step failed
        pass
    if keep:
        print(f"Kept database {database} and {workdir}")
        return
    try:
        drop_database(admin_url, database)
    except Exception as exc:
        print(f"(could not drop {database}: {exc})", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
