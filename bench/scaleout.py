"""Two hosts on one machine: the scale-out of docs/scaling.md, proven with nothing lost or done twice.

    .venv/bin/python bench/scaleout.py            (as root: it makes network namespaces)
    .venv/bin/python bench/scaleout.py --help

What it does, in order (docs/scaling.md, "The two-host proof", has the figures):

1. drops and creates a PostgreSQL database of its own (kioskops_scaleout), flushes Redis db 12, migrates, seeds a
   fleet with real device tokens (bench/common.seed_kiosks) and a webhook notification channel per district plus
   a city-wide one, all pointing at a receiver this script runs;
2. makes two network namespaces, `ko-a` and `ko-b`, each joined to the root namespace by a veth pair
   (10.77.1.0/24 and 10.77.2.0/24): two "hosts" with addresses of their own. PostgreSQL and Redis stay where they
   are, in the root namespace, listening on 127.0.0.1 only; a socat forwarder per host and server, bound to the
   root side of that host's veth (10.77.x.1:5432 and :6379), relays to them. Nothing of the machine's PostgreSQL
   or Redis changes and nothing restarts (other people's tests use them meanwhile); the hosts' connections
   arrive from 127.0.0.1, so pg_hba.conf sees what it sees for local clients;
3. starts on each host what a web-and-worker machine of docs/scaling.md runs: gunicorn (gthread, config.wsgi,
   10.77.x.2:8000), one `manage.py ingest_heartbeats` consumer and one Celery worker taking every queue; host a
   also runs the one Celery beat;
4. from the root namespace, for --duration seconds: heartbeats from the fleet's tokens, each request to the other
   host than the last (as a proxy balancing requests would), every body marked with a sequence number; journal
   uploads (PUT /api/v1/device/journals/<date>, --days dates per kiosk), alternating hosts too, one in ten sent
   a second time to the other host (a kiosk retrying); one hall's kiosks fall silent, so the sweep takes them
   offline and the incident engine opens incidents and notifications;
5. --kill-at seconds in, SIGKILLs host b's Celery worker (its whole process group) while it holds a task it has
   not acknowledged: with acks_late the message stays in Redis' unacknowledged set and goes back to its queue
   past the visibility timeout (20 s here, set by KIOSKOPS_CELERY_VISIBILITY_TIMEOUT_S), where host a's worker
   takes it;
6. when the load stops, waits (at most --settle seconds) for the buffer, the queues and the reconcile runs to
   finish, stops every process, then checks, and exits 1 on any loss or duplicate:
   - every heartbeat answered 2xx is stored, exactly once (by its sequence number);
   - every journal answered 201 is stored once, with each of its lines once, and every retry answered 200 added
     nothing; every date has a completed reconcile run that started after its last file;
   - every task the killed worker held was run by the other worker;
   - each silent kiosk went offline once and has one incident; no webhook message arrived twice, and every
     notification marked sent arrived.

Whatever happens (an error, Ctrl-C, SIGTERM), it stops everything it started, removes the namespaces and
drops the database (unless --keep). It needs root (ip netns), iproute2 and socat (installed with apt-get when
missing).
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (bench/ is no package)
    clean_up,
    fresh_stack,
    machine_idle_s,
    process_cpu,
    seed_kiosks,
    stop_process_group,
)

VENV_BIN = Path(sys.executable).parent
QUEUE_BASE = "kioskops-scaleout"  # the run's own Celery queue names (KIOSKOPS_CELERY_QUEUE)
VISIBILITY_TIMEOUT_S = 20
WEB_PORT = 8000
HOOK_PORT = 8099
COMPONENTS = ["card_reader", "qr_scanner", "cash_module", "touchscreen", "mainboard", "network", "power"]


@dataclass
class Host:
    """One simulated machine: a network namespace joined to the root namespace by a veth pair."""

    name: str
    subnet: int

    @property
    def netns(self) -> str:
        return f"ko-{self.name}"

    @property
    def root_side(self) -> str:  # the address PostgreSQL and Redis are reached at, from this host
        return f"10.77.{self.subnet}.1"

    @property
    def address(self) -> str:
        return f"10.77.{self.subnet}.2"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{WEB_PORT}"

    processes: dict = field(default_factory=dict)  # role → Popen


HOSTS = [Host("a", 1), Host("b", 2)]


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, capture_output=True, text=True, timeout=30)


# --- Network ---------------------------------------------------------------------------------------------


def network_up(host: Host) -> None:
    """The namespace, a veth pair with the host's end moved into it, addresses, and a default route back to the
    root namespace (the webhook receiver listens on host a's root-side address; both hosts reach it)."""
    outside, inside = f"{host.netns}-r", f"{host.netns}-h"
    sh("ip", "netns", "add", host.netns)
    sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
    sh("ip", "link", "set", inside, "netns", host.netns)
    sh("ip", "addr", "add", f"{host.root_side}/24", "dev", outside)
    sh("ip", "link", "set", outside, "up")
    for command in (
        ("ip", "addr", "add", f"{host.address}/24", "dev", inside),
        ("ip", "link", "set", inside, "up"),
        ("ip", "link", "set", "lo", "up"),
        ("ip", "route", "add", "default", "via", host.root_side),
    ):
        sh("ip", "netns", "exec", host.netns, *command)


def network_down(host: Host) -> None:
    """Deleting the namespace deletes its end of the pair, and with it the root end."""
    sh("ip", "netns", "delete", host.netns, check=False)
    sh("ip", "link", "delete", f"{host.netns}-r", check=False)


def ensure_tools() -> None:
    if not shutil.which("ip"):
        raise SystemExit("bench/scaleout.py needs iproute2 (the `ip` command): apt-get install -y iproute2")
    if shutil.which("socat"):
        return
    print("Installing socat (apt-get install -y socat) …", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "timeout": 300, "check": False}
    if subprocess.run(["apt-get", "install", "-y", "-q", "socat"], **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], **quiet)
        subprocess.run(["apt-get", "install", "-y", "-q", "socat"], **quiet)
    if not shutil.which("socat"):
        raise SystemExit("bench/scaleout.py needs socat (apt-get install -y socat)")


def start_forwarders(host: Host, pg_port: int, redis_port: int, workdir: Path) -> list[subprocess.Popen]:
    """socat in the root namespace, bound to the root side of the host's veth only, relaying to the servers on
    127.0.0.1: one process per connection (fork), so a slow connection holds up no other."""
    forwarders = []
    for port, target in ((5432, pg_port), (6379, redis_port)):
        listen = f"TCP-LISTEN:{port},bind={host.root_side},fork,reuseaddr,backlog=512"
        log = (workdir / f"socat-{host.name}-{port}.log").open("w")
        forwarders.append(
            subprocess.Popen(
                ["socat", listen, f"TCP:127.0.0.1:{target},nodelay"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return forwarders


# --- The webhook receiver ---------------------------------------------------------------------------------


class Receiver:
    """What the notification channels' webhooks deliver, each message as it arrived."""

    def __init__(self, address: str, port: int):
        received = self.received = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unreadable": body.decode(errors="replace")}
                with lock:
                    received.append((self.path, payload))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Fleet, journals -----------------------------------------------------------------------------------


def provision(kiosk_count: int, hook_url: str) -> dict:
    """Kiosks online with tokens, and a webhook channel per district and one city-wide. Returns the tokens, the
    serials and which kiosks will fall silent (the first hall's)."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Region
    from fleet.models import Kiosk
    from fleet.vocabulary import Component
    from incidents.models import NotificationChannel

    now = timezone.now()
    with transaction.atomic():
        kiosks, tokens = seed_kiosks(
            [f"SO-{i:05d}" for i in range(1, kiosk_count + 1)],
            code="so",
            place="扩展",
            software_version="3.2.1",
            heartbeat_interval_s=60,
            grace_s=90,
            status=Kiosk.Status.ONLINE,
            health_status=Kiosk.Status.ONLINE,
            status_changed_at=now,
            last_seen_at=now,
            offline_after=now + timedelta(seconds=150),
            components={name: "ok" for name in Component.values},
            metrics={"paper_pct": 80},
        )
        channels = [
            NotificationChannel(name=f"{r.name}值班群", kind="webhook", target=f"{hook_url}/{r.code}", region=r)
            for r in Region.objects.all()
        ]
        channels.append(NotificationChannel(name="全市运维", kind="webhook", target=f"{hook_url}/city"))
        NotificationChannel.objects.bulk_create(channels)
    silent_site = kiosks[0].site_id
    return {
        "tokens": tokens,
        "serials": [k.serial for k in kiosks],
        "silent": [i for i, k in enumerate(kiosks) if k.site_id == silent_site],
        "silent_ids": [k.pk for k in kiosks if k.site_id == silent_site],
        "channels": len(channels),
    }


def journal(serial: str, day, lines: int) -> bytes:
    """A kiosk's day as docs/file-formats.md describes it: `lines` payments, transaction ids unique per kiosk."""
    compact = f"{serial.replace('-', '')}{day:%Y%m%d}"
    rows = ["seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status\n"]
    for n in range(1, lines + 1):
        channel = ("wechat", "alipay", "card", "unionpay_qr", "cash")[n % 5]
        ref = "" if channel == "cash" else f"K{compact}{n:05d}"
        rows.append(
            f"{n},T{compact}{n:05d},{day.isoformat()}T{9 + n // 60 % 8:02d}:{n % 60:02d}:00+08:00,20.00,{channel},"
            f"{ref},A{compact}{n:05d},ID_CARD,success\n"
        )
    return "".join(rows).encode()


# --- Processes on the hosts ----------------------------------------------------------------------------------


def host_env(host: Host, base: dict, workdir: Path) -> dict:
    return {
        **os.environ,
        **base,
        "DATABASE_URL": base["DATABASE_URL"].replace("127.0.0.1", host.root_side, 1),
        "REDIS_URL": base["REDIS_URL"].replace("127.0.0.1", host.root_side, 1),
        "KIOSKOPS_VAR_DIR": str(workdir / f"var-{host.name}"),
    }


def start_on(host: Host, role: str, command: list[str], env: dict, workdir: Path) -> None:
    """`ip netns exec` replaces itself with the command: the process, and its process group, are the command's."""
    log = (workdir / f"{role}-{host.name}.log").open("w")
    host.processes[role] = subprocess.Popen(
        ["ip", "netns", "exec", host.netns, *command],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_host(host: Host, base: dict, workdir: Path, args, with_beat: bool) -> None:
    env = host_env(host, base, workdir)
    gunicorn = [str(VENV_BIN / "gunicorn"), "--bind", f"{host.address}:{WEB_PORT}", "--workers", str(args.workers)]
    gunicorn += ["--worker-class", "gthread", "--threads", str(args.threads), "--keep-alive", "30"]
    gunicorn += ["--graceful-timeout", "5", "--log-level", "warning", "config.wsgi:application"]
    start_on(host, "web", gunicorn, {**env, "DATABASE_CONN_MAX_AGE": "60"}, workdir)
    start_on(host, "ingest", [sys.executable, "manage.py", "ingest_heartbeats"], env, workdir)
    celery = [str(VENV_BIN / "celery"), "-A", "config"]
    worker = [*celery, "worker", "--pool", "threads", "--concurrency", "2", "--loglevel", "INFO"]
    start_on(host, "worker", [*worker, "--hostname", f"worker-{host.name}@%h"], env, workdir)
    if with_beat:
        beat = [*celery, "beat", "--loglevel", "INFO", "--schedule", str(workdir / "beat-schedule")]
        start_on(host, "beat", beat, env, workdir)


def wait_until_answering(host: Host, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if host.processes["web"].poll() is not None:
            raise RuntimeError(f"host {host.name}'s web server exited ({host.processes['web'].returncode})")
        try:
            with urllib.request.urlopen(f"{host.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"host {host.name} did not answer {host.url}/healthz within {timeout_s:.0f} s")


TASK_LINE = re.compile(r"Task ([\w.]+)\[([0-9a-f-]{36})\] (received|succeeded|failed|raised|retry)")


LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}):")


def task_log(path: Path) -> dict[str, dict]:
    """Task id → {"name", "received", "done", "first_received"} from a worker's INFO log (times as logged,
    local wall clock)."""
    from datetime import datetime

    tasks: dict[str, dict] = {}
    for line in path.read_text(errors="replace").splitlines():
        found = TASK_LINE.search(line)
        if not found:
            continue
        name, task_id, what = found.groups()
        entry = tasks.setdefault(task_id, {"name": name, "received": 0, "done": 0, "first_received": None})
        entry["received" if what == "received" else "done"] += 1
        stamp = LOG_TIME.match(line)
        if what == "received" and entry["first_received"] is None and stamp:
            entry["first_received"] = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return tasks


# --- Load --------------------------------------------------------------------------------------------------


@dataclass
class Load:
    """What the load generator sent and what it was answered, request by request."""

    heartbeats: dict = field(default_factory=dict)  # sequence number → status (an int, or the error's name)
    heartbeat_host: Counter = field(default_factory=Counter)
    latencies: list = field(default_factory=list)
    uploads: dict = field(default_factory=dict)  # job index → status of the first PUT
    retries: dict = field(default_factory=dict)  # job index → status of the second PUT
    upload_bytes: int = 0
    started: float = 0.0
    stopped: float = 0.0
    kill: dict = field(default_factory=dict)
    pg_connections: int = 0
    wal_bytes: int = 0


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next((int(ln.split(b":", 1)[1]) for ln in lines[1:] if ln.lower().startswith(b"content-length:")), 0)
    if length:
        await reader.readexactly(length)
    return status


class Connection:
    """One keep-alive HTTP/1.1 connection to a host, reopened after an error."""

    def __init__(self, host: Host):
        self.host, self.reader, self.writer = host, None, None

    async def send(self, method: str, path: str, headers: dict, body: bytes, timeout_s: float):
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host.address, WEB_PORT), 5
                )
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host.address}\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            self.writer.write(head.encode() + body)
            return await asyncio.wait_for(read_response(self.reader), timeout_s)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            if self.writer is not None:
                self.writer.close()
            self.reader = self.writer = None
            return type(exc).__name__

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def heartbeat_body(kiosk_number: int, seq: int) -> bytes:
    from datetime import UTC, datetime

    failing = kiosk_number % 20 == 7  # a receipt printer low on paper: the kiosk is degraded, an incident opens
    return json.dumps(
        {
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "software_version": "3.2.1",
            "components": {name: "ok" for name in COMPONENTS} | {"receipt_printer": "degraded" if failing else "ok"},
            "error_codes": ["E-PRN-002"] if failing else [],
            "metrics": {"paper_pct": 6 if failing else 30 + seq % 70, "cpu_temp_c": 38 + seq % 50 / 10, "seq": seq},
        }
    ).encode()


async def heartbeat_loop(load: Load, beating: list[int], tokens: list[str], counter, deadline: float, loop_no: int):
    """Requests back to back, each to the other host than the last one."""
    connections = [Connection(host) for host in HOSTS]
    turn = loop_no
    while time.monotonic() < deadline:
        seq = next(counter)
        number = beating[seq % len(beating)]
        connection = connections[turn % len(connections)]
        turn += 1
        headers = {"Authorization": f"Device {tokens[number]}", "Content-Type": "application/json"}
        started = time.perf_counter()
        status = await connection.send("POST", "/api/v1/device/heartbeat", headers, heartbeat_body(number, seq), 10)
        load.heartbeats[seq] = status
        load.heartbeat_host[connection.host.name] += 1
        if isinstance(status, int):
            load.latencies.append(time.perf_counter() - started)
    for connection in connections:
        connection.close()


async def upload_loop(load: Load, jobs: list, next_job, deadline: float, loop_no: int):
    connections = [Connection(host) for host in HOSTS]
    turn = loop_no
    while time.monotonic() < deadline:
        index = next(next_job)
        if index >= len(jobs):
            break
        token, day, body = jobs[index]
        headers = {"Authorization": f"Device {token}", "Content-Type": "text/csv"}
        path = f"/api/v1/device/journals/{day.isoformat()}"
        load.uploads[index] = await connections[turn % 2].send("PUT", path, headers, body, 60)
        load.upload_bytes += len(body)
        if index % 10 == 0:  # the kiosk did not see the answer and sends the file again, here to the other host
            load.retries[index] = await connections[(turn + 1) % 2].send("PUT", path, headers, body, 60)
        turn += 1
    for connection in connections:
        connection.close()


async def kill_worker_when_busy(load: Load, host: Host, log: Path, at: float, give_up_s: float = 20) -> None:
    """At `at` seconds in, SIGKILL the host's Celery worker as soon as its log shows a task received and not
    finished: a message it holds unacknowledged (acks_late). The whole process group, as a machine lost."""
    await asyncio.sleep(max(0.0, load.started + at - time.monotonic()))
    deadline = time.monotonic() + give_up_s
    held = []
    while time.monotonic() < deadline:
        held = [tid for tid, t in task_log(log).items() if t["received"] > t["done"]]
        if held:
            break
        await asyncio.sleep(0.05)
    os.killpg(host.processes["worker"].pid, signal.SIGKILL)
    load.kill = {"at_s": time.monotonic() - load.started, "at": time.time(), "held": held, "log": task_log(log)}


async def drive(args, load: Load, fleet: dict, jobs: list, log_b: Path) -> None:
    import itertools

    silent = set(fleet["silent"])
    beating = [i for i in range(len(fleet["tokens"])) if i not in silent]
    load.started = time.monotonic()
    deadline = load.started + args.duration
    counter, next_job = itertools.count(1), itertools.count()
    await asyncio.gather(
        *(heartbeat_loop(load, beating, fleet["tokens"], counter, deadline, n) for n in range(args.connections)),
        *(upload_loop(load, jobs, next_job, deadline, n) for n in range(args.upload_connections)),
        kill_worker_when_busy(load, HOSTS[1], log_b, args.kill_at),
    )
    load.stopped = time.monotonic()


# --- CPU by party ------------------------------------------------------------------------------------------


def cpu_by_party(groups: dict[int, str]) -> Counter:
    """CPU seconds used so far by each party: the hosts' processes by process group, the forwarders,
    PostgreSQL, Redis, this script, everyone else."""
    used = Counter()
    me = os.getpid()
    for _entry, pid, _ppid, pgid, comm, seconds in process_cpu():
        if pgid in groups:
            who = groups[pgid]
        elif comm.startswith("postgres"):
            who = "PostgreSQL"
        elif comm.startswith("redis-server"):
            who = "Redis"
        elif pid == me:
            who = "load generator (this script)"
        else:
            who = "other processes"
        used[who] += seconds
    return used


def wal_position() -> int:
    """The cluster's WAL insert position in bytes: other databases' writes count too (a shared machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
        return cursor.fetchone()[0]


def bytes_per_row(model) -> float:
    """Table, indexes and TOAST per row, over every partition when the table is partitioned."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(relid)) "
            "FROM pg_partition_tree(c.oid)) ELSE pg_total_relation_size(c.oid) END FROM pg_class c "
            "WHERE c.oid = %s::regclass",
            [model._meta.db_table],
        )
        size = cursor.fetchone()[0] or 0
    return size / max(model.objects.count(), 1)


# --- Settling and checking --------------------------------------------------------------------------------------


def backlog_and_queues(redis_url: str) -> dict:
    import redis
    from django.conf import settings

    from fleet import ingest

    client = redis.Redis.from_url(redis_url)
    queued = sum(client.llen(name) for name in settings.TASK_QUEUES.values())
    return {
        "buffer": client.xlen(ingest.stream_key()),
        "queued": queued,
        "unacked": client.hlen("unacked"),
    }


def reconcile_state(days) -> dict:
    """Per date: runs by status, and whether a completed run started after the date's last file."""
    from django.db.models import Max

    from reconciliation.models import JournalFile, ReconciliationRun

    state = {}
    for day in days:
        last_file = JournalFile.objects.filter(business_date=day).aggregate(m=Max("received_at"))["m"]
        if last_file is None:
            continue  # the load ended before any of its files were sent
        runs = Counter(ReconciliationRun.objects.filter(business_date=day).values_list("status", flat=True))
        fresh = (
            last_file is not None
            and ReconciliationRun.objects.filter(
                business_date=day, status="completed", started_at__gt=last_file
            ).exists()
        )
        state[day] = {"runs": dict(runs), "fresh": fresh}
    return state


def settle(args, days, redis_url: str, log_a: Path, held: list[str]) -> float:
    """Wait until the buffer and queues are empty, every date is reconciled after its last file, the killed
    worker's tasks ran on the other, and no notification waits. Returns the seconds waited."""
    from incidents.models import Notification

    started = time.monotonic()
    while time.monotonic() - started < args.settle:
        broker = backlog_and_queues(redis_url)
        done = task_log(log_a)
        waiting = Notification.objects.filter(status__in=["pending", "sending", "failed"]).exists()
        if (
            broker["buffer"] == 0
            and broker["queued"] == 0
            and all(s["fresh"] and "running" not in s["runs"] for s in reconcile_state(days).values())
            and all(done.get(tid, {}).get("done") for tid in held)
            and not waiting
        ):
            break
        time.sleep(1)
    return time.monotonic() - started


def check_heartbeats(load: Load) -> dict:
    from django.db import connection

    from fleet.models import Heartbeat

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (metrics->>'seq')::float8::bigint, count(*) FROM {Heartbeat._meta.db_table} "
            "WHERE metrics ? 'seq' GROUP BY 1"
        )
        stored = dict(cursor.fetchall())
    ok = {seq for seq, status in load.heartbeats.items() if isinstance(status, int) and 200 <= status < 300}
    return {
        "sent": len(load.heartbeats),
        "ok": len(ok),
        "statuses": Counter(load.heartbeats.values()),
        "stored_rows": sum(stored.values()),
        "lost": sorted(ok - stored.keys()),
        "twice": sorted(seq for seq, n in stored.items() if n > 1),
        "unanswered_but_stored": len(stored.keys() - ok),
    }


def check_uploads(load: Load, jobs: list, lines: int) -> dict:
    from django.db.models import Count, Sum

    from reconciliation.models import JournalFile, JournalLine

    created = [i for i, status in load.uploads.items() if status == 201]
    files = JournalFile.objects.aggregate(n=Count("id"), accepted=Sum("lines_accepted"))
    per_key = Counter(JournalFile.objects.values_list("kiosk__serial", "business_date"))
    return {
        "sent": len(load.uploads),
        "statuses": Counter(load.uploads.values()),
        "retry_statuses": Counter(load.retries.values()),
        "created": len(created),
        "files": files["n"],
        "files_twice": sum(1 for n in per_key.values() if n > 1),
        "lines": JournalLine.objects.count(),
        "lines_expected": len(created) * lines,
        "lines_accepted": files["accepted"] or 0,
    }


def check_incidents(fleet: dict, receiver: Receiver) -> dict:
    from django.db.models import Count

    from fleet.models import StatusChange
    from incidents.models import OPEN_STATES, Incident, Notification

    silent = fleet["silent_ids"]
    offline_flips = Counter(
        StatusChange.objects.filter(kiosk_id__in=silent, reason="silent").values_list("kiosk_id", flat=True)
    )
    incidents = Counter(Incident.objects.filter(kiosk_id__in=silent).values_list("kiosk_id", flat=True))
    open_twice = (
        Incident.objects.exclude(kiosk=None)
        .filter(state__in=OPEN_STATES)
        .values("kiosk_id", "fault_kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    deliveries = Counter((path, payload.get("reference"), payload.get("event")) for path, payload in receiver.received)
    statuses = Counter(Notification.objects.values_list("status", flat=True))
    sent = statuses.get("sent", 0)
    return {
        "silent": len(silent),
        "flipped_once": sum(1 for k in silent if offline_flips[k] == 1),
        "with_one_incident": sum(1 for k in silent if incidents[k] == 1),
        "incidents": Incident.objects.count(),
        "open_twice": open_twice,
        "notifications": dict(statuses),
        "deliveries": len(receiver.received),
        "delivered_twice": sum(1 for n in deliveries.values() if n > 1),
        "sent": sent,
    }


# --- Main -----------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiosks", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--kill-at", type=int, default=20, help="seconds into the load host b's worker dies")
    parser.add_argument(
        "--connections", type=int, default=16, help="heartbeats in flight at once (each loop alternates hosts)"
    )
    parser.add_argument("--upload-connections", type=int, default=2)
    parser.add_argument("--days", type=int, default=3, help="business dates each kiosk uploads a journal for")
    parser.add_argument("--lines", type=int, default=30, help="lines per journal")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes per host")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn process")
    # Below the kiosks' 150 s of interval and grace: past it the whole fleet, silent since the load stopped, would
    # go offline and open incidents of its own.
    parser.add_argument("--settle", type=int, default=120, help="seconds to wait for the work to finish after")
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--database", default="kioskops_scaleout")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    parser.add_argument("--keep", action="store_true", help="leave the database and the logs behind")
    args = parser.parse_args(argv)
    if not (10 <= args.duration <= 600 and 0 < args.kill_at < args.duration and 20 <= args.kiosks <= 100_000):
        parser.error("duration 10–600 s, kill-at inside it, kiosks 20–100,000: the load stays bounded")
    if not 10 <= args.settle <= 140:
        parser.error("settle 10–140 s (the kiosks go offline 150 s after their last heartbeat)")
    if "127.0.0.1" not in args.postgres or "127.0.0.1" not in args.redis:
        parser.error("PostgreSQL and Redis must be on this machine's 127.0.0.1 (the forwarders relay to it)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print(
            "bench/scaleout.py must run as root: it creates network namespaces and veth pairs (ip netns), which\n"
            "only root may. Run it as root, e.g.  sudo .venv/bin/python bench/scaleout.py",
            file=sys.stderr,
        )
        return 2
    ensure_tools()
    from urllib.parse import urlsplit

    pg_port, redis_port = urlsplit(args.postgres).port or 5432, urlsplit(args.redis).port or 6379
    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    base = {
        "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
        "REDIS_URL": args.redis,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ALLOWED_HOSTS": ",".join([h.address for h in HOSTS] + ["127.0.0.1", "localhost"]),
        "KIOSKOPS_DEVICE_HEARTBEATS_PER_MINUTE": "600",
        "KIOSKOPS_LOG_LEVEL": "WARNING",
        "KIOSKOPS_CELERY_QUEUE": QUEUE_BASE,
        "KIOSKOPS_CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
        "KIOSKOPS_RECON_RUN_LEASE_S": "10",
        "KIOSKOPS_RECON_LEASE_SWEEP_EVERY_S": "5",
        "KIOSKOPS_HEALTH_SWEEP_EVERY_S": "5",
        "KIOSKOPS_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    workdir = Path(tempfile.mkdtemp(prefix="kioskops-scaleout-"))
    forwarders: list[subprocess.Popen] = []
    receiver = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        for host in HOSTS:  # a run killed earlier may have left its namespaces
            network_down(host)
        os.environ.update({**base, "KIOSKOPS_VAR_DIR": str(workdir / "var-root")})
        fresh_stack(admin_url, args.database, args.redis, ROOT)
        from django.db import connections
        from django.utils import timezone

        hook_url = f"http://{HOSTS[0].root_side}:{HOOK_PORT}/hook"
        fleet = provision(args.kiosks, hook_url)
        today = timezone.localdate()
        days = [today - timedelta(days=d) for d in range(1, args.days + 1)]
        # Kiosk by kiosk, each its days in turn: every date gets files early, as when a fleet catches up.
        jobs = [
            (fleet["tokens"][i], day, journal(serial, day, args.lines))
            for i, serial in enumerate(fleet["serials"])
            for day in days
        ]
        print(
            f"Seeded {args.kiosks:,} kiosks ({len(fleet['silent'])} of one hall to fall silent), "
            f"{fleet['channels']} webhook channels, {len(jobs):,} journals of {args.lines} lines to upload",
            flush=True,
        )

        for host in HOSTS:
            network_up(host)
            forwarders += start_forwarders(host, pg_port, redis_port, workdir)
        receiver = Receiver(HOSTS[0].root_side, HOOK_PORT)
        for host in HOSTS:
            start_host(host, base, workdir, args, with_beat=host is HOSTS[0])
        for host in HOSTS:
            wait_until_answering(host)
        print(
            "Hosts up: "
            + "; ".join(
                f"{h.netns} {h.address} (web, ingest, worker{', beat' if h is HOSTS[0] else ''})" for h in HOSTS
            ),
            flush=True,
        )

        # The first hall goes quiet: past its deadline in 10 s, the sweep (every 5 s) takes it offline.
        from fleet.models import Kiosk

        Kiosk.objects.filter(pk__in=fleet["silent_ids"]).update(offline_after=timezone.now() + timedelta(seconds=10))
        connections.close_all()

        groups = {p.pid: f"host {h.name}: {role}" for h in HOSTS for role, p in h.processes.items()}
        groups |= {p.pid: "socat forwarders" for p in forwarders}
        cpu_before, idle_before = cpu_by_party(groups), machine_idle_s()
        load = Load()
        print(f"Load: {args.duration} s; host b's worker is killed {args.kill_at} s in …", flush=True)
        log_a, log_b = workdir / "worker-a.log", workdir / "worker-b.log"
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        wal_before = wal_position()
        asyncio.run(drive(args, load, fleet, jobs, log_b))
        load.wal_bytes = wal_position() - wal_before
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            load.pg_connections = cursor.fetchone()[0] - 1  # not this one
        cpu_after, idle_after = cpu_by_party(groups), machine_idle_s()
        wall = load.stopped - load.started
        held = load.kill.get("held", [])
        print(f"  host b's worker killed at {load.kill['at_s']:.1f} s holding {len(held)} task(s)", flush=True)

        settled_s = settle(args, days, args.redis, log_a, held)
        for host in HOSTS:
            for process in host.processes.values():
                stop_process_group(process)
        connections.close_all()

        from fleet.models import Heartbeat
        from reconciliation.models import JournalLine

        sizes = {"heartbeat": bytes_per_row(Heartbeat), "journal line": bytes_per_row(JournalLine)}
        hb = check_heartbeats(load)
        up = check_uploads(load, jobs, args.lines)
        recon = reconcile_state(days)
        inc = check_incidents(fleet, receiver)
        log_a_tasks = task_log(log_a)
        redelivered = [tid for tid in held if log_a_tasks.get(tid, {}).get("done")]
        # How long after the kill host a received them: the visibility timeout, plus up to the restore interval.
        # (Log times are local; Django set this process's TZ to the workers' TIME_ZONE, so they compare.)
        delays = [
            log_a_tasks[tid]["first_received"] - load.kill["at"]
            for tid in redelivered
            if log_a_tasks[tid]["first_received"] is not None
        ]
        held_names = Counter(load.kill["log"][tid]["name"].rsplit(".", 1)[-1] for tid in held)

        cores = os.cpu_count() or 1
        used = {who: cpu_after[who] - cpu_before.get(who, 0.0) for who in cpu_after}
        latencies = sorted(load.latencies)

        def pct(p):
            return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

        print()
        print("KioskOps scale-out proof — two hosts (network namespaces), one PostgreSQL, one Redis")
        print(f"  machine    {cores} cores; PostgreSQL and Redis in the root namespace, reached through socat")
        print(f"  hosts      each: gunicorn {args.workers} × {args.threads} gthread, ingest_heartbeats, Celery worker")
        print("             (threads × 2, every queue); host a also beat")
        print(f"  fleet      {args.kiosks:,} kiosks; {len(fleet['silent'])} fall silent; every 20th degraded")
        print(
            f"  load       {wall:.0f} s from the root namespace: {args.connections} heartbeat connections alternating"
        )
        print(
            f"             hosts per request, {args.upload_connections} upload connections; settled {settled_s:.0f} s"
        )
        print()
        print(
            f"  heartbeats {hb['sent']:,} sent ({hb['sent'] / wall:,.0f}/s; host a {load.heartbeat_host['a']:,}, "
            f"host b {load.heartbeat_host['b']:,}); p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms"
        )
        print(f"             answers {dict(hb['statuses'])}; {hb['stored_rows']:,} rows stored")
        print(
            f"  journals   {up['sent']:,} PUT ({up['sent'] / wall:,.1f}/s, {up['lines_expected'] / wall:,.0f} lines/s) "
            f"answers {dict(up['statuses'])}; retries {dict(up['retry_statuses'])}"
        )
        print(f"             {up['files']:,} files, {up['lines']:,} lines stored")
        for day, state in recon.items():
            print(f"  reconcile  {day}: runs {state['runs']}; completed after its last file: {state['fresh']}")
        print(
            f"  killed     worker-b at {load.kill['at_s']:.1f} s holding {dict(held_names) or 'nothing'}; "
            f"run by worker-a afterwards: {len(redelivered)} of {len(held)}"
            + (f", received {min(delays):.0f}–{max(delays):.0f} s after the kill" if delays else "")
        )
        print(f"  database   {load.pg_connections} PostgreSQL connections of the run's database at the end of the load")
        print(
            f"             WAL written during the load {load.wal_bytes / 1e6:,.1f} MB (the whole cluster's); on disk "
            + ", ".join(f"{name} {size:,.0f} B" for name, size in sizes.items())
            + " per row with its indexes"
        )
        print(
            f"  incidents  {inc['incidents']:,} opened; notifications {inc['notifications']}; "
            f"{inc['deliveries']:,} webhook messages received"
        )
        print(f"\n  CPU during the load ({wall:.0f} s × {cores} cores = {wall * cores:.0f} core-seconds)")
        for who, seconds in sorted(used.items(), key=lambda item: -item[1]):
            if seconds >= 0.05:
                print(f"    {who:<32}{seconds:8.1f} s  {seconds / (wall * cores):5.0%}")
        print(f"    {'idle':<32}{idle_after - idle_before:8.1f} s  {(idle_after - idle_before) / (wall * cores):5.0%}")
        per_hb = sum(v for k, v in used.items() if k.endswith(": web")) / max(hb["sent"] + up["sent"], 1) * 1000
        print(f"    (web servers: {per_hb:.2f} ms of CPU per request, heartbeats and uploads together)")

        checks = [
            ("every heartbeat answered 2xx is stored", not hb["lost"], f"{len(hb['lost'])} lost of {hb['ok']:,}"),
            ("no heartbeat stored twice", not hb["twice"], f"{len(hb['twice'])} twice"),
            (
                "every journal answered 201 stored once",
                up["files"] == up["created"] and up["files_twice"] == 0,
                f"{up['files']:,} files for {up['created']:,} created, {up['files_twice']} twice",
            ),
            (
                "each journal line stored once",
                up["lines"] == up["lines_expected"] == up["lines_accepted"],
                f"{up['lines']:,} lines, {up['lines_expected']:,} expected",
            ),
            (
                "every retry answered 200 and added nothing",
                set(up["retry_statuses"]) <= {200},
                f"{dict(up['retry_statuses'])}",
            ),
            (
                "every date reconciled after its last file",
                bool(recon) and all(s["fresh"] for s in recon.values()),
                f"{sum(s['fresh'] for s in recon.values())} of {len(recon)} dates",
            ),
            (
                "the killed worker's tasks run by the other",
                bool(held) and len(redelivered) == len(held),
                f"{len(redelivered)} of {len(held)}" if held else "no task was held when it died: nothing shown",
            ),
            (
                "each silent kiosk offline once, one incident each",
                inc["flipped_once"] == inc["with_one_incident"] == inc["silent"],
                f"{inc['flipped_once']} and {inc['with_one_incident']} of {inc['silent']}",
            ),
            ("no incident open twice for a kiosk and fault", inc["open_twice"] == 0, f"{inc['open_twice']}"),
            (
                "no notification delivered twice; every sent one arrived",
                inc["delivered_twice"] == 0 and inc["deliveries"] == inc["sent"],
                f"{inc['deliveries']:,} delivered, {inc['sent']:,} sent, {inc['delivered_twice']} twice",
            ),
        ]
        print()
        for label, ok, detail in checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {label:<56}{detail}")
        failed = [label for label, ok, _ in checks if not ok]
        print(f"\n  {'nothing lost, nothing done twice' if not failed else 'FAILED: ' + '; '.join(failed)}")
        print(f"  finished in {time.monotonic() - started:.0f} s")
        return 1 if failed else 0
    finally:
        for host in HOSTS:
            for process in host.processes.values():
                stop_process_group(process)
        for process in forwarders:
            stop_process_group(process)
        if receiver is not None:
            receiver.close()
        for host in HOSTS:
            network_down(host)
        if args.keep:
            print(f"Logs in {workdir}")
        clean_up(admin_url, args.database, workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
