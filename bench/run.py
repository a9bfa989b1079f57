"""`make bench`: heartbeat ingestion against the production-style stack, and one health sweep over the fleet.

What it does, in order (docs/performance.md has the figures and the reasoning):

1. drops and creates a PostgreSQL database of its own (kioskops_bench), flushes Redis db 15, migrates;
2. provisions 10,000 kiosks in bulk (already online, as a running fleet is), each with a real device token;
3. starts the web server as production runs it (gunicorn, 4 gthread workers, DEBUG off, PostgreSQL and Redis)
   and, with buffered ingestion (the default), one ingest_heartbeats consumer beside it;
4. drives it from loopback with wrk: warm-up runs until every kiosk has beaten once, then three rounds of 10 s of
   heartbeats from the 10,000 kiosks' tokens in turn and 10 s of GET /healthz on the same server, the trivial
   baseline, taking turns; after each heartbeat run it waits for the buffer to be applied;
5. stops the server, then times health_sweep() with all 10,000 kiosks overdue (three rounds; every kiosk must
   flip exactly once in each);
6. prints the figures beside the targets with PASS or MISS. A MISS is a finding, not a failure: exit code 0.

The load is bounded: every wrk run has a fixed duration and a hard timeout, and the server is killed (its whole
process group) however the run ends.
"""

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (bench/ is no package)
    clean_up,
    cpu_used_by_party,
    free_port,
    fresh_stack,
    machine_idle_s,
    postgres_party,
    process_cpu,
    seed_kiosks,
    stop_process_group,
)

VENV_BIN = Path(sys.executable).parent
LUA_SCRIPT = ROOT / "bench" / "load.lua"
PY_LOAD = ROOT / "bench" / "pyload.py"

TARGET_HEARTBEATS_PER_S = 1500
TARGET_P99_MS = 100
TARGET_RATIO = 0.5
TARGET_SWEEP_S = 1.0

# High enough that no kiosk is ever told 429 during the run (at the target 1,500/s each kiosk would beat every
# 7 s; a real one beats once a minute), so the figures measure ingestion. The limiter still runs on every request.
BENCH_HEARTBEATS_PER_MINUTE = 600


@dataclass
class LoadResult:
    label: str
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    socket_errors: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the run, by who used them

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        """Every response that is not 2xx, and every request that got no response at all."""
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300) + sum(
            self.socket_errors.values()
        )


def combine_runs(runs: list[LoadResult]) -> LoadResult:
    """Several runs of one endpoint as one: requests, time, statuses and CPU add up; the median run's p50 and
    the worst run's p90, p99 and maximum stand for the whole (percentiles of separate runs do not add up)."""
    statuses, socket_errors, cpu = Counter(), Counter(), Counter()
    for run in runs:
        statuses.update(run.statuses)
        socket_errors.update(run.socket_errors)
        cpu.update(run.cpu_s)
    return LoadResult(
        label=runs[0].label,
        requests=sum(run.requests for run in runs),
        duration_s=sum(run.duration_s for run in runs),
        p50_ms=statistics.median(run.p50_ms for run in runs),
        p90_ms=max(run.p90_ms for run in runs),
        p99_ms=max(run.p99_ms for run in runs),
        max_ms=max(run.max_ms for run in runs),
        statuses=dict(statuses),
        socket_errors=dict(socket_errors),
        cpu_s=dict(cpu),
    )


# --- Servers --------------------------------------------------------------------------------------------


def server_command(kind: str, port: int, workers: int, threads: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    gunicorn = [str(VENV_BIN / "gunicorn"), "--bind", bind, "--workers", str(workers), "--log-level", "warning"]
    gunicorn += ["--graceful-timeout", "5"]
    if kind == "gthread":
        return (
            gunicorn
            + ["--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "30"]
            + ["config.wsgi:application"]
        )
    if kind == "sync":
        return gunicorn + ["--worker-class", "sync", "config.wsgi:application"]
    if kind == "uvicorn":
        return [
            str(VENV_BIN / "uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    raise SystemExit(f"unknown server kind {kind!r}")


def describe_server(kind: str, workers: int, threads: int) -> str:
    return {
        "gthread": f"gunicorn, gthread workers ({workers} processes × {threads} threads), WSGI (config.wsgi)",
        "sync": f"gunicorn, sync workers ({workers} processes), WSGI (config.wsgi)",
        "uvicorn": f"uvicorn --workers {workers} (uvloop, httptools), ASGI (config.asgi)",
    }[kind]


def wait_until_answering(url: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {url} within {timeout_s:.0f} s")


# --- Where the CPU goes ---------------------------------------------------------------------------------

# The heartbeat consumer's process group (buffered ingestion): its CPU is shown on a line of its own.
SERVER_GROUPS: set[int] = set()


def cpu_snapshot(server_pgid: int | None, database: str) -> dict:
    """CPU seconds used so far by each process, labelled web server, PostgreSQL, Redis or other (other people's
    work shows up there: on a shared machine it is the figure that says how much the run was disturbed), plus
    the load generator (our child) and the machine's idle time."""
    processes: dict[int, tuple[str, float]] = {}
    me = os.getpid()
    for entry, pid, _ppid, pgid, comm, seconds in process_cpu():
        if pid == me:
            continue
        if server_pgid is not None and pgid == server_pgid:
            who = "server"
        elif pgid in SERVER_GROUPS:
            who = "consumer"
        elif comm.startswith("postgres"):
            who = postgres_party(entry, database)
        elif comm.startswith("redis-server"):
            who = "redis"
        else:
            who = "other"
        processes[pid] = (who, seconds)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "processes": processes,
        "load generator": children.ru_utime + children.ru_stime,
        "idle": machine_idle_s(),  # idle + iowait, all cores
    }


def cpu_used_between(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds each party used between two snapshots. A process that ended in between is not counted."""
    parties = ("server", "consumer", "postgresql", "redis", "other")
    used = cpu_used_by_party(before["processes"], after["processes"], parties)
    used["load generator"] = after["load generator"] - before["load generator"]
    used["idle"] = after["idle"] - before["idle"]
    return used


# --- Load -----------------------------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """wrk is a Debian package; install it when missing and we may (root), else fall back to bench/pyload.py."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("Installing wrk (apt-get install -y wrk) …", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "timeout": 300}
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, **quiet)
    return shutil.which("wrk")


def run_load(
    args,
    wrk: str | None,
    base_url: str,
    mode: str,
    tokens_file: Path,
    duration_s: int,
    server_pgid: int,
    offset=0,
    settle=None,
) -> LoadResult:
    """One bounded load run. Returns the parsed BENCH_RESULT line and the CPU each party used meanwhile."""
    if wrk:
        command = [wrk, "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{duration_s}s"]
        command += ["--timeout", "5s", "-s", str(LUA_SCRIPT), base_url, "--", mode, str(tokens_file)]
        command += [str(args.wrk_threads), str(offset)]
    else:
        command = [sys.executable, str(PY_LOAD), base_url, mode, str(tokens_file)]
        command += ["--connections", str(args.connections), "--duration", str(duration_s)]
    before = cpu_snapshot(server_pgid, args.database)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if settle:
        settle()
    after = cpu_snapshot(server_pgid, args.database)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"load generator failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    return LoadResult(
        label=mode,
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        statuses={int(k): v for k, v in data["statuses"].items()},
        socket_errors=data["socket_errors"],
        cpu_s=cpu_used_between(before, after),
    )


# --- Profiling (--profile) -----------------------------------------------------------------------------

# Frames worth a line in the summary: where a heartbeat's time goes, by layer.
PROFILE_FRAMES = [
    ("ThreadWorker.handle", "gunicorn: the whole request"),
    ("BaseHandler.get_response", "Django: middleware and view"),
    ("heartbeat", "the heartbeat view (fleet/api/heartbeat.py)"),
    ("_read_body", "  body: size, content type, JSON, validation"),
    ("parse_heartbeat", "    validation"),
    ("admit", "  buffered: the admit script (one Redis round trip)"),
    ("kiosk_snapshot_for_token_hash", "  token → kiosk query (direct, or a cache miss)"),
    ("count_request", "  direct: rate limit (Redis)"),
    ("kiosk_record_heartbeat", "  direct: record the heartbeat"),
    ("commands_deliver", "  open commands SELECT"),
    ("_answer", "  the answer"),
    ("Atomic.__exit__", "COMMIT and on-commit events"),
    ("DatabaseWrapper.is_usable", "CONN_HEALTH_CHECKS' SELECT 1"),
]


def start_profiler(path: Path, server_pid: int, duration_s: int) -> dict | None:
    """py-spy (requirements-dev.txt) on the web server's workers, sampling only the thread that holds each
    worker's GIL, so the profile shows where Python spends CPU rather than where threads wait."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        print("  (--profile: py-spy is not installed; no profile)")
        return None
    raw = path.with_suffix(".raw")
    raw.parent.mkdir(parents=True, exist_ok=True)
    command = [str(spy), "record", "--pid", str(server_pid), "--subprocesses", "--gil", "--rate", "250"]
    command += ["--nonblocking", "--duration", str(max(1, duration_s - 2)), "--format", "raw", "--output", str(raw)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"process": process, "raw": raw}


def summarise_profile(profiler: dict, summary_path: Path) -> None:
    """Share of the sampled worker's GIL time under each frame of PROFILE_FRAMES, and the hottest leaves."""
    try:
        profiler["process"].wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler["process"].kill()
    if not profiler["raw"].exists():
        print("  (--profile: py-spy wrote nothing; it needs ptrace, i.e. root or CAP_SYS_PTRACE)")
        return
    total, inclusive, leaves = 0, Counter(), Counter()
    for line in profiler["raw"].read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame.split(" (", 1)[0] for frame in stack.split(";")]
        total += int(count)
        for name in set(frames):
            inclusive[name] += int(count)
        leaves[stack.split(";")[-1]] += int(count)
    lines = [f"{total} samples of the workers' GIL holders at 250 Hz ({total / 250:.1f} s of Python CPU)"]
    lines += [f"{inclusive[frame] / max(total, 1):6.1%}  {label}  [{frame}]" for frame, label in PROFILE_FRAMES]
    lines += ["hottest leaves:"] + [f"{n / max(total, 1):6.1%}  {leaf}" for leaf, n in leaves.most_common(12)]
    summary_path.write_text("\n".join(lines) + "\n")
    print("\n".join("  " + line for line in lines))
    print(f"  (profile: {summary_path}; raw stacks for flame graphs: {profiler['raw']})")


# --- Database and fleet ---------------------------------------------------------------------------------


def provision_fleet(kiosk_count: int, tokens_file: Path) -> None:
    """Regions, sites, and kiosks that have been online for a while, each with an active token, in bulk
    (common.seed_kiosks). Line i of tokens_file is the token of kiosk BENCH-i."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from fleet.models import Kiosk
    from fleet.vocabulary import Component

    now = timezone.now()
    with transaction.atomic():
        _, tokens = seed_kiosks(
            [f"BENCH-{i:05d}" for i in range(1, kiosk_count + 1)],
            code="bench",
            place="压测",
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
    tokens_file.write_text("\n".join(tokens) + "\n")
    tokens_file.chmod(0o600)


def wait_for_buffer(ingest_mode: str, timeout_s: float = 120) -> dict:
    """With buffered ingestion: how many heartbeats still waited when the load stopped, and how long the
    consumer took to apply them (the load's CPU figures include the consumer's work during the run)."""
    if ingest_mode != "buffered":
        return {}
    from fleet import ingest

    waiting = ingest.backlog()
    started = time.perf_counter()
    while ingest.backlog() and time.perf_counter() - started < timeout_s:
        time.sleep(0.05)
    return {"waiting": waiting, "drained_s": time.perf_counter() - started, "left": ingest.backlog()}


def fleet_counts() -> dict[str, int]:
    from fleet.models import Heartbeat, Kiosk, StatusChange

    return {
        "heartbeats": Heartbeat.objects.count(),
        "flips": StatusChange.objects.count(),
        "degraded": Kiosk.objects.filter(status=Kiosk.Status.DEGRADED).count(),
    }


def time_sweeps(rounds: int) -> list[tuple[float, int, int]]:
    """Each round: every kiosk online and overdue, then one timed health_sweep(). Returns (seconds, flips the
    sweep reported, StatusChange rows it wrote) per round."""
    from datetime import timedelta

    from django.utils import timezone

    from fleet.models import Kiosk, StatusChange
    from fleet.services import health_sweep

    results = []
    for _ in range(rounds):
        overdue = timezone.now() - timedelta(seconds=1)
        Kiosk.objects.update(
            status=Kiosk.Status.ONLINE, health_status=Kiosk.Status.ONLINE, offline_after=overdue, is_flapping=False
        )
        StatusChange.objects.all().delete()  # a fresh flap window, so every round does the same work
        started = time.perf_counter()
        result = health_sweep()
        elapsed = time.perf_counter() - started
        written = StatusChange.objects.filter(reason=StatusChange.Reason.SILENT).count()
        results.append((elapsed, result.went_offline, written))
    return results


# --- Report ---------------------------------------------------------------------------------------------


def machine_facts(admin_url: str, redis_url: str) -> dict[str, str]:
    import psycopg
    import redis

    with psycopg.connect(admin_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    info = redis.Redis.from_url(redis_url).info("server")
    mem_kib = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in ln))
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kib / 1024 / 1024:.0f} GiB",
        "cpu": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in ln
            ),
            platform.machine(),
        ),
        "python": platform.python_version(),
        "postgresql": pg,
        "redis": info["redis_version"],
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_cpu(heartbeat: LoadResult, trivial: LoadResult, cores: int) -> None:
    """CPU per request by who spent it, and each one's share of the machine, during the two measured runs."""
    print(f"\n  CPU during the measured runs: ms per request, and share of the {cores} cores")
    print(f"  {'':<22}{'heartbeat':>22}{'/healthz':>22}")
    labels = {"server": "web server", "consumer": "heartbeat consumer", "postgresql": "PostgreSQL", "redis": "Redis"}
    labels |= {"load generator": "load generator", "other": "other processes", "idle": "idle"}
    for who, label in labels.items():
        cells = []
        for result in (heartbeat, trivial):
            seconds = result.cpu_s.get(who, 0.0)
            share = seconds / (result.duration_s * cores) if result.duration_s else 0.0
            per_request = "" if who == "idle" else f"{seconds / max(result.requests, 1) * 1000:.2f} ms"
            cells.append(f"{per_request:>12} {share:>7.0%}")
        print(f"  {label:<22}{cells[0]:>22}{cells[1]:>22}")
    ceilings = [f"{cpu_bound_ceiling(result, cores):,.0f}/s" for result in (heartbeat, trivial)]
    print(f"  {'ceiling if alone ¹':<22}{ceilings[0]:>22}{ceilings[1]:>22}")
    print("  ¹ cores ÷ CPU per request of server, PostgreSQL, Redis and generator: the rate this machine could")
    print("    sustain with nothing else running, when the CPU is what runs out")


def cpu_bound_ceiling(result: LoadResult, cores: int) -> float:
    spent = sum(result.cpu_s.get(who, 0.0) for who in ("server", "consumer", "postgresql", "redis", "load generator"))
    return cores * result.requests / spent if spent else 0.0


def print_report(facts, setup, heartbeat: LoadResult, trivial: LoadResult, stored, sweeps, backlog) -> bool:
    ratio = heartbeat.rate / trivial.rate if trivial.rate else 0.0
    worst_sweep = max(s[0] for s in sweeps)
    flips_ok = all(s[1] == s[2] == setup["kiosks"] for s in sweeps)
    rows = [
        ("heartbeats/s", f"{heartbeat.rate:,.0f}", f"≥ {TARGET_HEARTBEATS_PER_S:,}", heartbeat.rate >= 1500),
        ("heartbeat latency p50", f"{heartbeat.p50_ms:.1f} ms", "", None),
        ("heartbeat latency p90", f"{heartbeat.p90_ms:.1f} ms", "", None),
        ("heartbeat latency p99", f"{heartbeat.p99_ms:.1f} ms", f"≤ {TARGET_P99_MS} ms", heartbeat.p99_ms <= 100),
        ("heartbeat latency max", f"{heartbeat.max_ms:.1f} ms", "", None),
        ("heartbeat errors", f"{heartbeat.errors:,} of {heartbeat.requests:,}", "0", heartbeat.errors == 0),
        ("/healthz requests/s", f"{trivial.rate:,.0f}", "", None),
        ("/healthz latency p50 / p99", f"{trivial.p50_ms:.1f} / {trivial.p99_ms:.1f} ms", "", None),
        ("/healthz errors", f"{trivial.errors:,}", "0", trivial.errors == 0),
        ("ratio heartbeats/s ÷ /healthz/s", f"{ratio:.2f}", f"≥ {TARGET_RATIO}", ratio >= TARGET_RATIO),
        (
            f"sweep over {setup['kiosks']:,} kiosks (worst of {len(sweeps)})",
            f"{worst_sweep:.3f} s",
            f"≤ {TARGET_SWEEP_S:g} s",
            worst_sweep <= TARGET_SWEEP_S,
        ),
        (
            "flips recorded per sweep",
            ", ".join(f"{s[2]:,}" for s in sweeps),
            f"{setup['kiosks']:,} each",
            flips_ok,
        ),
    ]
    print()
    print("KioskOps benchmark — heartbeat ingestion and health sweep")
    print(f"  machine   {facts['cores']} cores ({facts['cpu']}), {facts['memory']}, Python {facts['python']}")
    print(f"            PostgreSQL {facts['postgresql']}, Redis {facts['redis']} (both on this machine)")
    print(f"  server    {setup['server']}")
    print(f"  ingest    {setup['ingest']}")
    print(f"  load      {setup['generator']}, {setup['connections']} connections, loopback,")
    print(f"            {setup['warmup']} s warm-up then {setup['duration']} s per endpoint, same server, same run")
    print(f"  fleet     {setup['kiosks']:,} kiosks online with real tokens, sent round-robin; every 20th reports a")
    print("            failing receipt printer; rate limit raised to")
    print(
        f"            {BENCH_HEARTBEATS_PER_MINUTE}/min per kiosk so no request is throttled (the limiter still runs)"
    )
    print(f"  sweeps    {', '.join(f'{s[0]:.3f} s' for s in sweeps)}")
    print(
        f"  stored    {stored['heartbeats']:,} heartbeat rows for {stored['ok']:,} 2xx answers; "
        f"{stored['degraded']:,} kiosks degraded"
    )
    if backlog:
        print(
            f"  buffer    {backlog['waiting']:,} heartbeats waited when the load stopped; applied "
            f"{backlog['drained_s']:.2f} s later ({backlog['left']:,} left)"
        )
        # wrk does not count the requests in flight when it stops, which the server still answers and stores.
        rows.append(
            (
                "accepted heartbeats stored (none lost)",
                f"{stored['heartbeats']:,} ≥ {stored['ok']:,}",
                "all",
                stored["heartbeats"] >= stored["ok"],
            )
        )
    print()
    width = max(len(r[0]) for r in rows) + 2
    print(f"  {'figure':<{width}}{'measured':>22}  {'target':>12}  result")
    print(f"  {'-' * (width + 22 + 2 + 12 + 8)}")
    for name, value, target, ok in rows:
        print(f"  {name:<{width}}{value:>22}  {target:>12}  {'' if ok is None else verdict(ok)}")
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(heartbeat.statuses.items()))
    print(f"\n  heartbeat responses by status: {statuses}; socket errors: {heartbeat.socket_errors}")
    print_cpu(heartbeat, trivial, int(facts["cores"]))
    missed = [r[0] for r in rows if r[3] is False]
    print(f"\n  {'all targets met' if not missed else 'MISSED: ' + '; '.join(missed)}")
    return not missed


# --- Main -----------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="gthread", choices=["gthread", "sync", "uvicorn"])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (gthread only)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--generator", choices=["wrk", "python"], default="wrk", help="python: bench/pyload.py even if wrk is there"
    )
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--duration", type=int, default=30, help="seconds of measured load per endpoint, in all")
    parser.add_argument("--rounds", type=int, default=3, help="the endpoints take turns this many times")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load before each")
    parser.add_argument(
        "--ingest",
        choices=["buffered", "direct"],
        default="buffered",
        help="buffered: the Redis stream and an ingest_heartbeats consumer (production with Redis); direct: one "
        "transaction per request",
    )
    parser.add_argument("--kiosks", type=int, default=10_000)
    parser.add_argument("--sweep-rounds", type=int, default=3)
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--database", default="kioskops_bench")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument(
        "--keep", action="store_true", help="leave the database and the work folder (tokens, server log) behind"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the workers during each measured run (its CPU shows as other processes); summaries go to "
        "PATH.<mode>.txt",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.duration <= 120 and 0 <= args.warmup <= 30 and 1 <= args.connections <= 1000):
        parser.error("duration 1–120 s, warm-up 0–30 s, connections 1–1000: the load stays bounded")
    if not (20 <= args.kiosks <= 100_000 and 1 <= args.sweep_rounds <= 10):
        parser.error("kiosks 20–100,000, sweep rounds 1–10")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    database_url = f"{args.postgres.rstrip('/')}/{args.database}"
    workdir = Path(tempfile.mkdtemp(prefix="kioskops-bench-"))
    tokens_file = workdir / "tokens.txt"
    server = consumer = None
    # SIGTERM (a CI timeout, a kill) must still reach the finally below, which stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        wrk = ensure_wrk() if args.generator == "wrk" else None
        generator = (
            f"wrk {subprocess.run([wrk, '-v'], capture_output=True, text=True).stdout.split()[1]} "
            f"({args.wrk_threads} thread{'s' if args.wrk_threads > 1 else ''}, bench/load.lua)"
            if wrk
            else "bench/pyload.py (Python asyncio, not wrk: it takes CPU from the server)"
        )
        print(f"Load generator: {generator}", flush=True)

        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_DEBUG": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "KIOSKOPS_VAR_DIR": str(workdir / "var"),
            "KIOSKOPS_DEVICE_HEARTBEATS_PER_MINUTE": str(BENCH_HEARTBEATS_PER_MINUTE),
            "KIOSKOPS_LOG_LEVEL": "WARNING",
            # gunicorn's threads keep their connections: persistent connections suit WSGI workers.
            "DATABASE_CONN_MAX_AGE": "60",
            "KIOSKOPS_HEARTBEAT_INGEST": args.ingest,
        }
        os.environ.update(env)
        facts = machine_facts(admin_url, args.redis)

        fresh_stack(admin_url, args.database, args.redis, ROOT)
        from django.db import connections

        t0 = time.perf_counter()
        provision_fleet(args.kiosks, tokens_file)
        print(f"Provisioned {args.kiosks:,} kiosks with tokens in {time.perf_counter() - t0:.1f} s", flush=True)
        connections.close_all()

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        command = server_command(args.server, port, args.workers, args.threads)
        server_log = workdir / "server.log"
        print(f"Server: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}", flush=True)
        with server_log.open("w") as log:
            server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until_answering(f"{base_url}/healthz", server)
        if args.ingest == "buffered":
            # The consumer's CPU is counted on a line of its own (SERVER_GROUPS).
            with server_log.open("a") as log:
                consumer = subprocess.Popen(
                    [sys.executable, "manage.py", "ingest_heartbeats"],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            SERVER_GROUPS.add(consumer.pid)

        answered_2xx = {"heartbeat": 0, "healthz": 0}
        if args.warmup:
            # A running fleet: every kiosk has beaten (and its token is cached) before the measured runs.
            warm_started = time.monotonic()
            while answered_2xx["heartbeat"] < args.kiosks and time.monotonic() - warm_started < 120:
                answered_2xx["heartbeat"] += run_load(
                    args, wrk, base_url, "heartbeat", tokens_file, args.warmup, server.pid, answered_2xx["heartbeat"]
                ).ok
            wait_for_buffer(args.ingest)
            answered_2xx["healthz"] += run_load(args, wrk, base_url, "healthz", tokens_file, 1, server.pid).ok

        # The two endpoints take turns, `rounds` times, so a slow spell of the machine or an uneven spread of
        # connections over the workers (gunicorn's workers keep the connections they accept) hits both alike.
        per_run = max(1, round(args.duration / args.rounds))
        print(f"Measuring: {args.rounds} × ({per_run} s heartbeat, {per_run} s /healthz) …", flush=True)
        runs, backlog = {"heartbeat": [], "healthz": []}, {}
        for round_no in range(args.rounds):
            for mode in ("heartbeat", "healthz"):
                summary = None
                if args.profile and round_no == 0:
                    summary = args.profile.with_name(f"{args.profile.name}.{mode}.txt")
                profiler = start_profiler(summary, server.pid, per_run) if summary else None
                # The consumer's catching up after the load counts towards the heartbeats' CPU.
                settle = (lambda: backlog.update(wait_for_buffer(args.ingest))) if mode == "heartbeat" else None
                result = run_load(
                    args, wrk, base_url, mode, tokens_file, per_run, server.pid, offset=round_no * 997, settle=settle
                )
                if profiler:
                    summarise_profile(profiler, summary)
                runs[mode].append(result)
                answered_2xx[mode] += result.ok
        results = {mode: combine_runs(mode_runs) for mode, mode_runs in runs.items()}
        for mode, mode_runs in runs.items():
            described = ", ".join(
                f"{run.rate:,.0f}/s ({run.cpu_s.get('idle', 0) / (run.duration_s * (os.cpu_count() or 1)):.0%} idle)"
                for run in mode_runs
            )
            print(f"  {mode:<10} runs: {described}")
        stop_process_group(server)
        stop_process_group(consumer)
        if server.returncode not in (0, -signal.SIGTERM):
            print(f"(server exited with {server.returncode}; log tail below)")
            print("\n".join(server_log.read_text().splitlines()[-20:]))

        stored = fleet_counts()
        stored["ok"] = answered_2xx["heartbeat"]  # warm-up included: every 2xx must be a stored row
        print(f"Timing {args.sweep_rounds} health sweep(s) over {args.kiosks:,} overdue kiosks …", flush=True)
        sweeps = time_sweeps(args.sweep_rounds)
        connections.close_all()

        setup = {
            "server": describe_server(args.server, args.workers, args.threads),
            "generator": generator,
            "connections": args.connections,
            "warmup": args.warmup,
            "duration": args.duration,
            "kiosks": args.kiosks,
            "ingest": (
                "buffered: Redis stream, one ingest_heartbeats consumer"
                if args.ingest == "buffered"
                else "direct: one transaction per heartbeat"
            ),
        }
        print_report(facts, setup, results["heartbeat"], results["healthz"], stored, sweeps, backlog)
        print(f"\n  finished in {time.monotonic() - started:.0f} s")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "machine": facts,
                        "setup": setup,
                        "heartbeat": results["heartbeat"].__dict__ | {"rate": results["heartbeat"].rate},
                        "healthz": results["healthz"].__dict__ | {"rate": results["healthz"].rate},
                        "sweeps_s": [s[0] for s in sweeps],
                        "sweep_median_s": statistics.median(s[0] for s in sweeps),
                    },
                    indent=2,
                )
            )
        return 0
    finally:
        stop_process_group(server)
        stop_process_group(consumer)
        clean_up(admin_url, args.database, workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
