"""Helpers both benchmarks use: a free loopback port, a server's whole process group stopped, a scratch
PostgreSQL database made and dropped, a fleet of kiosks with device tokens seeded in bulk, the CPU each process
and the machine have used."""

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def seed_kiosks(serials: list[str], *, code: str, place: str, **kiosk_fields) -> tuple[list, list[str]]:
    """16 regions, a hall per 50 kiosks (at least two), and a kiosk per serial with an active device token made and
    hashed as fleet.services.credential_issue does, all in bulk (Django set up; the caller holds the transaction).
    ``code`` and ``place`` name the regions and halls (``bench-hall-001``, 压测第1政务服务大厅); ``kiosk_fields``
    are set on every kiosk. Returns the kiosks and their tokens, in the order of ``serials``."""
    import secrets

    from accounts.models import Region
    from fleet.models import DeviceCredential, Kiosk, Site
    from fleet.services import TOKEN_PREFIX, hash_token

    regions = Region.objects.bulk_create([Region(code=f"{code}-{r:02d}", name=f"{place}第{r}区") for r in range(1, 17)])
    sites = Site.objects.bulk_create(
        [
            Site(region=regions[s % len(regions)], code=f"{code}-hall-{s:03d}", name=f"{place}第{s}政务服务大厅")
            for s in range(1, max(2, len(serials) // 50) + 1)
        ]
    )
    kiosks = Kiosk.objects.bulk_create(
        [
            Kiosk(site=sites[i % len(sites)], serial=serial, **{"model": "ZW-3000", **kiosk_fields})
            for i, serial in enumerate(serials)
        ],
        batch_size=2000,
    )
    tokens = [TOKEN_PREFIX + secrets.token_urlsafe(32) for _ in kiosks]
    DeviceCredential.objects.bulk_create(
        [
            DeviceCredential(kiosk=kiosk, token_hash=hash_token(token), token_prefix=token[:10])
            for kiosk, token in zip(kiosks, tokens, strict=True)
        ],
        batch_size=2000,
    )
    return kiosks, tokens


def process_cpu() -> Iterator[tuple[Path, int, int, int, str, float]]:
    """Every process's CPU seconds (user + system) so far, from /proc: (its /proc folder, pid, parent pid, process
    group, command name, seconds). A process that ends while it is read is passed over."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        yield entry, int(entry.name), int(fields[1]), int(fields[2]), comm, ticks / CLOCK_TICKS


def postgres_party(entry: Path, database: str) -> str:
    """ "postgresql" for a PostgreSQL process that works for `database` or for the whole server (WAL writer,
    checkpointer, …), "other" for a backend serving another database: someone else's work on a shared machine.
    `entry` is the process's /proc folder; a backend's title names its database before its client, an address
    with a port or [local] (a Unix socket)."""
    try:
        title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "postgresql"
    words = title.split("postgres: ", 1)[-1].split()
    backend = next(
        (i for i, word in enumerate(words) if word == "[local]" or (word.endswith(")") and "(" in word)), None
    )
    if backend is not None and backend >= 1 and words[backend - 1] != database:
        return "other"
    return "postgresql"


def machine_idle_s() -> float:
    """Idle and iowait seconds of all cores since boot."""
    with open("/proc/stat") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:]]
    return (ticks[3] + ticks[4]) / CLOCK_TICKS


def cpu_used_by_party(before: dict, after: dict, parties) -> dict[str, float]:
    """CPU seconds each party used between two snapshots of ``{pid: (party, seconds)}``. A process that ended in
    between is not counted; one whose party changed (its pid reused) counts from zero."""
    used = dict.fromkeys(parties, 0.0)
    for pid, (who, seconds) in after.items():
        earlier = before.get(pid)
        used[who] += seconds - (earlier[1] if earlier and earlier[0] == who else 0.0)
    return used
