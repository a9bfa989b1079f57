"""The kiosk simulator: the demo fleet behaving like real kiosks, through the real device API over HTTP.

Two halves. `SimulatedKiosk` decides what one kiosk does next (wear, faults, silences, commands) from a clock
value handed to it: plain Python, no I/O, testable without a server. `FleetSimulator` runs all of them against
a server with httpx and asyncio, a bounded number of connections at a time.

Time: protocol times (heartbeat interval, a network outage, a restart, a citizen's payment) are real seconds,
because the server judges them by its own clock. `speed` compresses only the simulated world: how fast paper and cash boxes are
used, how often faults arise, and how long people take to refill, clear or repair.
"""

import asyncio
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from fleet.vocabulary import Component

SHANGHAI = ZoneInfo("Asia/Shanghai")
HEARTBEAT_PATH = "/api/v1/device/heartbeat"
RESULT_PATH = "/api/v1/device/commands/{id}/result"
MINUTE = 60.0
HOUR = 3600.0


class Fault(StrEnum):
    PAPER_OUT = "paper_out"  # a busy kiosk runs through its roll: E-PRN-002, then E-PRN-003 until refilled
    PRINTER_JAM = "printer_jam"  # receipt_printer user_error + E-PRN-001 until staff clear it
    NETWORK_LOSS = "network_loss"  # silent for a few minutes, then resumes
    DARK = "dark"  # power cut or a crash nobody notices: silent for a long time
    SCANNER_FAILURE = "scanner_failure"  # qr_scanner hardware_error + E-MOD-001; a restart usually fixes it
    FRAUD = "fraud"  # a skimmer on the card reader: fraud_attempt + E-SEC-001 until inspected on site


# Chance per kiosk per hour at rate 1 and speed 1. With ~300 kiosks that is roughly one new fault a minute.
FAULT_RATES_PER_HOUR = {
    Fault.PAPER_OUT: 0.05,
    Fault.PRINTER_JAM: 0.04,
    Fault.NETWORK_LOSS: 0.04,
    Fault.SCANNER_FAILURE: 0.025,
    Fault.DARK: 0.01,
    Fault.FRAUD: 0.002,
}

# A whole hall losing power or network (every kiosk silent for a few minutes): chance per hall per hour at rate 1 and
# speed 1. With ~40 halls, one every couple of hours; each becomes one mass-outage incident on the console.
HALL_OUTAGE_RATE_PER_HOUR = 0.012
HALL_OUTAGE_S = (3 * MINUTE, 8 * MINUTE)

FAULT_DESCRIPTIONS = {
    Fault.PAPER_OUT: "receipt paper running out (E-PRN-002, then E-PRN-003 until refilled)",
    Fault.PRINTER_JAM: "receipt printer jammed (E-PRN-001)",
    Fault.NETWORK_LOSS: "network lost; silent for a few minutes",
    Fault.DARK: "went dark; silent for a long time",
    Fault.SCANNER_FAILURE: "QR scanner module failed (E-MOD-001); a restart usually fixes it",
    Fault.FRAUD: "skimming device detected on the card reader (E-SEC-001)",
}

# Commands that would interrupt a citizen's payment: the server holds them back while a heartbeat reports one
# (fleet.models.RemoteCommand.DISRUPTIVE_KINDS), and a kiosk that gets one as a payment starts waits for its end.
DISRUPTIVE_KINDS = frozenset(
    {"restart", "restart_module", "self_test", "push_patch", "factory_reset", "out_of_service_screen"}
)
# Commands that take the kiosk down for a while and report their result once it is back.
REBOOTING_KINDS = frozenset({"restart", "push_patch", "factory_reset"})

PAPER_LOW_PCT = 10  # below this the printer warns (E-PRN-002); the server's metric threshold agrees
CASH_FULL_PCT = 90  # above this the cash module warns (E-CASH-002)


@dataclass
class SimulationSettings:
    rate: float = 1.0  # fault rate multiplier
    speed: float = 1.0  # compression of the simulated world (wear, fault arrival, human response)
    restart_s: tuple[float, float] = (15.0, 25.0)  # how long a restart keeps a kiosk quiet (real seconds)
    # A busy kiosk starts a citizen's payment about this often (real seconds between payments, on average), and
    # a payment lasts this long: a few heartbeats at the usual interval. 0 turns payments off.
    payment_every_s: float = 6 * MINUTE
    payment_s: tuple[float, float] = (70.0, 200.0)


@dataclass
class CommandResult:
    command_id: str
    status: str  # "succeeded" or "failed"
    detail: str
    data: dict = field(default_factory=dict)

    def body(self) -> dict:
        return {"status": self.status, "detail": self.detail, "data": self.data}


class SimulatedKiosk:
    """One kiosk's behaviour. Every method takes `now`, seconds on a monotonic clock, and nothing else varies
    with time, so a test can drive a kiosk through hours in microseconds."""

    def __init__(
        self,
        serial: str,
        token: str,
        *,
        now: float,
        software_version: str = "3.4.2",
        interval_s: float = 60.0,
        settings: SimulationSettings | None = None,
        rng: random.Random | None = None,
        hall: str = "",
    ):
        self.serial = serial
        self.token = token
        self.hall = hall  # the service hall it stands in: a hall's power or network takes all of them down
        self.software_version = software_version
        self.interval_s = float(interval_s)
        self.settings = settings or SimulationSettings()
        self.rng = rng or random.Random(serial)
        rng = self.rng
        self.busyness = rng.uniform(0.5, 1.5)  # transactions relative to an average kiosk
        # A few kiosks keep bad time; the server records their skew and trusts its own clock.
        self.clock_offset_s = rng.choice([rng.uniform(150, 400), -rng.uniform(150, 400)]) if rng.random() < 0.03 else 0
        self.paper_pct = rng.uniform(25, 100)
        self.cash_box_pct = rng.uniform(5, 70)
        self.disk_free_mb = rng.uniform(8_000, 30_000)
        self.cpu_temp_c = rng.uniform(42, 50)
        self.net_latency_ms = rng.uniform(15, 60)
        self.out_of_service = False

        self.faults: dict[Fault, float] = {}  # active fault → when it clears by itself (people fix it)
        self.paper_out_at: float | None = None  # once low, when the roll runs out
        self.paper_refill_at: float | None = None  # once low, when staff put in a new roll
        self.cash_collect_at: float | None = None  # once nearly full, when the cash box is emptied (清机)
        self.silent_until: float | None = None
        self.silent_reason: str | None = None  # "network_loss", "dark" or "restarting"
        self.restart_command: str | None = None  # id of the restart (or patch, or reset) being carried out
        self.rebooting_for: tuple[str, dict] | None = None  # that command's kind and params
        self.paying_until: float | None = None  # a citizen's payment is in progress until then
        self.postponed: list[dict] = []  # disruptive commands that arrived as a payment started

        self.unauthorised = False
        self.results: list[CommandResult] = []  # to post to the server, oldest first
        self.journal: list[str] = []  # notable happenings, for the simulator's log; the runner empties it
        self._seen_commands: deque[str] = deque(maxlen=500)
        self._last_advanced = now
        self._transactions_owed = 0.0
        # Spread the fleet's first heartbeats over one interval rather than all at once.
        self.next_beat_at = now + rng.uniform(0, self.interval_s)

    # --- The passage of time --------------------------------------------------------------------------

    def advance(self, now: float, *, local_time: datetime | None = None) -> None:
        """Bring the kiosk's world up to `now`: wear, people's fixes, new faults, the end of a silence."""
        dt = max(0.0, now - self._last_advanced)
        self._last_advanced = now
        if self.silent_until is not None and now >= self.silent_until:
            self._end_silence(now)
        if self.silent_reason in ("dark", "restarting"):
            return  # switched off: nothing wears, nothing breaks
        self._pay(dt, now, local_time)
        self._wear(dt, now, local_time)
        for fault, clears_at in list(self.faults.items()):
            if now >= clears_at:
                del self.faults[fault]
        if self.silent_until is None:
            self._maybe_break(dt, now)

    def _wear(self, dt: float, now: float, local_time: datetime | None) -> None:
        speed = self.settings.speed
        per_hour = 12.0 * self.busyness if _hall_is_busy(local_time) else 0.4 * self.busyness
        self._transactions_owed += per_hour * speed * dt / HOUR
        transactions = int(self._transactions_owed)
        self._transactions_owed -= transactions
        self.paper_pct = max(0.0, self.paper_pct - 0.17 * transactions)  # ~600 receipts a roll
        cash_payments = sum(1 for _ in range(transactions) if self.rng.random() < 0.3)
        self.cash_box_pct = min(100.0, self.cash_box_pct + 0.35 * cash_payments)
        self.disk_free_mb = max(300.0, self.disk_free_mb - 0.4 * transactions)  # logs and receipts' images
        if self.disk_free_mb < 2_000:
            self.disk_free_mb += 6_000  # the nightly log rotation catches up
        load = min(1.0, per_hour / 20)
        self.cpu_temp_c += (44 + 10 * load - self.cpu_temp_c) * min(1.0, dt / 300) + self.rng.gauss(0, 0.4)
        self.net_latency_ms = max(5.0, self.rng.lognormvariate(math.log(30), 0.35))

        if self.paper_pct < PAPER_LOW_PCT and self.paper_refill_at is None:
            # Someone notices the warning and brings a roll; a busy kiosk may run dry first.
            self.paper_out_at = now + self.rng.uniform(3, 10) * MINUTE / speed
            self.paper_refill_at = now + self.rng.uniform(10, 40) * MINUTE / speed
        if self.paper_out_at is not None and now >= self.paper_out_at:
            self.paper_pct, self.paper_out_at = 0.0, None
        if self.paper_refill_at is not None and now >= self.paper_refill_at:
            self.paper_pct, self.paper_out_at, self.paper_refill_at = 100.0, None, None
        if self.cash_box_pct > CASH_FULL_PCT - 5 and self.cash_collect_at is None:
            self.cash_collect_at = now + self.rng.uniform(20, 120) * MINUTE / speed
        if self.cash_collect_at is not None and now >= self.cash_collect_at:
            self.cash_box_pct, self.cash_collect_at = self.rng.uniform(0, 3), None

    @property
    def payment_active(self) -> bool:
        """Whether a citizen is paying at the kiosk (as of the last `advance`)."""
        return self.paying_until is not None and self._last_advanced < self.paying_until

    def _pay(self, dt: float, now: float, local_time: datetime | None) -> None:
        """Citizens come and pay: a payment lasts a few heartbeats. Commands held back for it run once it ends."""
        if self.paying_until is not None and now >= self.paying_until:
            self.paying_until = None
            postponed, self.postponed = self.postponed, []
            for command in postponed:
                self.journal.append(f"{self.serial}: payment finished, now carrying out {command.get('kind')}")
                self._carry_out(command, now)
            return  # the next citizen steps up a little later
        every = self.settings.payment_every_s
        if self.paying_until is not None or every <= 0 or self.out_of_service or self.is_silent:
            return
        per_second = self.busyness / every if _hall_is_busy(local_time) else 0.05 * self.busyness / every
        if self.rng.random() < 1 - math.exp(-per_second * dt):
            self.paying_until = now + self.rng.uniform(*self.settings.payment_s)

    def _maybe_break(self, dt: float, now: float) -> None:
        scale = self.settings.rate * self.settings.speed * dt / HOUR
        for fault, per_hour in FAULT_RATES_PER_HOUR.items():
            if self.rng.random() < 1 - math.exp(-per_hour * scale):
                self.inject(fault, now)
                return

    def inject(self, fault: Fault, now: float) -> None:
        """Make the fault happen now (the simulator's dice call this; so can a test)."""
        rng, speed = self.rng, self.settings.speed
        self.journal.append(f"{self.serial}: {FAULT_DESCRIPTIONS[fault]}")
        if fault == Fault.PAPER_OUT:
            self.paper_pct = min(self.paper_pct, rng.uniform(5, PAPER_LOW_PCT - 0.5))
            self.paper_refill_at = None  # the wear step schedules running out and the refill
        elif fault == Fault.PRINTER_JAM:
            self.faults[fault] = now + rng.uniform(5, 25) * MINUTE / speed
        elif fault == Fault.SCANNER_FAILURE:
            self.faults[fault] = now + rng.uniform(40, 120) * MINUTE / speed  # a technician's visit
        elif fault == Fault.FRAUD:
            self.faults[fault] = now + rng.uniform(30, 90) * MINUTE / speed  # inspection and removal
        elif fault == Fault.NETWORK_LOSS:
            self._go_silent(now, rng.uniform(2, 6) * MINUTE, "network_loss")
        elif fault == Fault.DARK:
            self._go_silent(now, max(5 * MINUTE, rng.uniform(20, 60) * MINUTE / speed), "dark")

    def lose_hall(self, now: float, seconds: float) -> None:
        """The hall's power or network is gone: silent until it is back, like every kiosk of the hall."""
        self.journal.append(f"{self.serial}: hall {self.hall} lost power or network; silent")
        self._go_silent(now, seconds, "hall_outage")

    def _go_silent(self, now: float, seconds: float, reason: str) -> None:
        self.silent_until = now + seconds
        self.silent_reason = reason

    def _end_silence(self, now: float) -> None:
        reason = self.silent_reason
        self.silent_until = self.silent_reason = None
        if reason in ("dark", "restarting"):
            self.paying_until, self.postponed = None, []  # a power cut ends a payment (the citizen tries again)
            self._boot(now)
        if reason == "restarting" and self.restart_command:
            kind, params = self.rebooting_for or ("restart", {})
            self.results.append(self._after_reboot(self.restart_command, kind, params))
            self.restart_command = self.rebooting_for = None
        self.next_beat_at = now  # say hello as soon as the kiosk is back

    def _after_reboot(self, command_id: str, kind: str, params: dict) -> CommandResult:
        """What a kiosk back from a restart, a patch or a factory reset reports."""
        still = [f"{name}={state}" for name, state in sorted(self.components().items()) if state not in ("ok", "busy")]
        still_failing = f"; still failing: {', '.join(still)}" if still else ""
        if kind == "push_patch":
            version = str(params.get("version") or _next_patch(self.software_version))
            if self.rng.random() < 0.05:
                detail = f"patch {version} rejected: package checksum mismatch; still on {self.software_version}"
                return CommandResult(command_id, "failed", detail, {"software_version": self.software_version})
            self.software_version = version
            return CommandResult(
                command_id, "succeeded", f"patch installed, now {version}{still_failing}", {"software_version": version}
            )
        if kind == "factory_reset":
            backup = f"backup-{self.serial}-{int(self._last_advanced)}.tar.gz"
            return CommandResult(
                command_id,
                "succeeded",
                f"data backed up ({backup}), factory image restored, configuration and data restored{still_failing}",
                {"backup": backup, "software_version": self.software_version},
            )
        return CommandResult(command_id, "succeeded", f"restarted; all modules initialised{still_failing}")

    def _boot(self, now: float) -> None:
        # A reboot reloads drivers, which fixes a failed scanner module most of the time; a paper jam or a
        # skimmer is physical and survives it.
        if Fault.SCANNER_FAILURE in self.faults and self.rng.random() < 0.8:
            del self.faults[Fault.SCANNER_FAILURE]
        self.cpu_temp_c = self.rng.uniform(38, 42)
        self._last_advanced = now

    # --- What the kiosk says ----------------------------------------------------------------------------

    @property
    def is_silent(self) -> bool:
        return self.silent_until is not None

    def components(self) -> dict[str, str]:
        states = {name: "ok" for name in Component.values}
        if Fault.PRINTER_JAM in self.faults:
            states[Component.RECEIPT_PRINTER] = "user_error"
        elif self.paper_pct < PAPER_LOW_PCT:
            states[Component.RECEIPT_PRINTER] = "degraded"
        if Fault.SCANNER_FAILURE in self.faults:
            states[Component.QR_SCANNER] = "hardware_error"
        if Fault.FRAUD in self.faults:
            states[Component.CARD_READER] = "fraud_attempt"
        if self.cash_box_pct > CASH_FULL_PCT:
            states[Component.CASH_MODULE] = "degraded"
        return states

    def error_codes(self) -> list[str]:
        codes = []
        if Fault.PRINTER_JAM in self.faults:
            codes.append("E-PRN-001")
        if self.paper_pct <= 0:
            codes.append("E-PRN-003")
        elif self.paper_pct < PAPER_LOW_PCT:
            codes.append("E-PRN-002")
        if Fault.SCANNER_FAILURE in self.faults:
            codes.append("E-MOD-001")
        if Fault.FRAUD in self.faults:
            codes.append("E-SEC-001")
        if self.cash_box_pct > CASH_FULL_PCT:
            codes.append("E-CASH-002")
        return codes

    def metrics(self) -> dict[str, float]:
        return {
            "paper_pct": round(self.paper_pct),
            "cash_box_pct": round(self.cash_box_pct),
            "cpu_temp_c": round(self.cpu_temp_c, 1),
            "disk_free_mb": round(self.disk_free_mb),
            "net_latency_ms": round(self.net_latency_ms),
        }

    def wants_heartbeat(self, now: float) -> bool:
        return not self.is_silent and now >= self.next_beat_at

    def heartbeat(self, wall_clock: datetime) -> dict:
        """The heartbeat body, stamped with the kiosk's own (possibly wrong) clock."""
        sent_at = wall_clock.astimezone(SHANGHAI) + timedelta(seconds=self.clock_offset_s)
        return {
            "sent_at": sent_at.isoformat(timespec="seconds"),
            "software_version": self.software_version,
            "components": self.components(),
            "error_codes": self.error_codes(),
            "metrics": self.metrics(),
            "payment_session_active": self.payment_active,
        }

    def next_wake(self) -> float:
        """When the kiosk next has something to do."""
        if self.is_silent:
            return self.silent_until
        return self.next_beat_at

    # --- What the server says -----------------------------------------------------------------------------

    def on_heartbeat_response(
        self, now: float, status_code: int, body: dict | None, retry_after: float | None = None
    ) -> int:
        """React to the server's answer: adopt the interval, carry out new commands, back off when told.
        Returns how many commands were new (not redeliveries)."""
        jitter = self.rng.uniform(0.9, 1.05)
        executed = 0
        if status_code == 200 and body is not None:
            self.unauthorised = False
            self.interval_s = float(body.get("interval_s") or self.interval_s)
            self.next_beat_at = now + self.interval_s * jitter
            commands = body.get("commands") or []
            # A restart, a patch or a reset takes the kiosk down, so do everything else in the batch first.
            for command in sorted(commands, key=lambda c: c.get("kind") in REBOOTING_KINDS):
                executed += self.execute(command, now)
        elif status_code == 401:
            self.unauthorised = True
            self.next_beat_at = now + 5 * MINUTE
        elif status_code == 429:
            self.next_beat_at = now + max(retry_after or 0, self.interval_s * jitter)
        else:  # a 400 is our bug and a 5xx the server's: either way, try again next interval
            self.next_beat_at = now + self.interval_s * jitter
        return executed

    def on_transport_error(self, now: float) -> None:
        """The server did not answer (down, restarting): try again within an interval."""
        self.next_beat_at = now + self.interval_s * self.rng.uniform(0.3, 0.6)

    def execute(self, command: dict, now: float) -> bool:
        """Carry out one delivered command, once: redeliveries of a command already seen are ignored.
        Returns whether the command was new."""
        command_id, kind = str(command.get("id")), command.get("kind")
        if command_id in self._seen_commands:
            return False
        self._seen_commands.append(command_id)
        self.journal.append(f"{self.serial}: received command {kind}")
        if kind in DISRUPTIVE_KINDS and self.payment_active:
            # The server sent it before the payment began: the citizen finishes first.
            self.journal.append(f"{self.serial}: {kind} waits for the payment in progress")
            self.postponed.append(command)
            return True
        self._carry_out(command, now)
        return True

    def _carry_out(self, command: dict, now: float) -> None:
        command_id, kind = str(command.get("id")), command.get("kind")
        params = command.get("params") or {}
        if kind in REBOOTING_KINDS:
            if kind == "factory_reset" and params.get("backup") is not True:
                self.results.append(CommandResult(command_id, "failed", "refused: a factory reset needs a backup"))
            elif self.restart_command is None:
                self.restart_command, self.rebooting_for = command_id, (kind, params)
                seconds = self.rng.uniform(*self.settings.restart_s)
                if kind != "restart":  # installing or restoring an image takes longer than a reboot
                    seconds *= 2 if kind == "push_patch" else 4
                self._go_silent(now, seconds, "restarting")
            else:
                self.results.append(CommandResult(command_id, "failed", "busy restarting; send it again afterwards"))
            return
        self.results.append(self._result_of(command_id, kind, params))

    def _result_of(self, command_id: str, kind: str, params: dict) -> CommandResult:
        if kind == "self_test":
            failing = {name: state for name, state in self.components().items() if state not in ("ok", "busy")}
            data = {"components": self.components(), "error_codes": self.error_codes(), "metrics": self.metrics()}
            if failing:
                detail = "self-test found faults: " + ", ".join(f"{n}={s}" for n, s in sorted(failing.items()))
                return CommandResult(command_id, "failed", detail, data)
            return CommandResult(command_id, "succeeded", "self-test passed", data)
        if kind == "restart_module":
            module = params.get("component") or params.get("module") or ""
            if module == Component.RECEIPT_PRINTER and Fault.PRINTER_JAM in self.faults:
                return CommandResult(command_id, "failed", "receipt_printer restarted; paper still jammed (E-PRN-001)")
            if module in ("", Component.QR_SCANNER) and Fault.SCANNER_FAILURE in self.faults:
                # Reloading the driver usually brings the scanner back; now and then the part itself is gone.
                if self.rng.random() < 0.75:
                    del self.faults[Fault.SCANNER_FAILURE]
                else:
                    return CommandResult(command_id, "failed", "qr_scanner restarted; still hardware_error (E-MOD-001)")
            return CommandResult(command_id, "succeeded", f"module {module or 'all'} restarted")
        if kind == "network_test":
            # A few requests to the payment platform: round-trip time and how many were lost.
            latency = round(self.net_latency_ms * self.rng.uniform(0.9, 1.3))
            data = {"latency_ms": latency, "loss_pct": 0, "target": params.get("target") or "payment-platform"}
            if self.components().get(Component.NETWORK, "ok") not in ("ok", "busy"):
                data["loss_pct"] = 100
                return CommandResult(command_id, "failed", "network test: payment platform unreachable", data)
            return CommandResult(command_id, "succeeded", f"network test: {latency} ms, no loss", data)
        if kind == "check_config":
            return CommandResult(command_id, "succeeded", "configuration matches", {"software": self.software_version})
        if kind == "out_of_service_screen":
            self.out_of_service = True
            return CommandResult(command_id, "succeeded", "showing 设备维修中")
        if kind == "in_service_screen":
            self.out_of_service = False
            return CommandResult(command_id, "succeeded", "back in service")
        return CommandResult(command_id, "failed", f"unknown command {kind!r}")

    def on_result_posted(self, result: CommandResult, status_code: int) -> bool:
        """Whether the server has the result (or will never want it): then it leaves the outbox."""
        if status_code in (200, 404, 409):
            self.results.remove(result)
            return True
        return False

    # --- For the summary --------------------------------------------------------------------------------

    def condition(self) -> list[str]:
        """Short words for what is wrong with the kiosk now."""
        words = [self.silent_reason] if self.silent_reason else []
        words += [str(fault) for fault in self.faults]
        if self.paper_pct < PAPER_LOW_PCT:
            words.append("paper_low" if self.paper_pct > 0 else "paper_out")
        if self.cash_box_pct > CASH_FULL_PCT:
            words.append("cash_full")
        if self.unauthorised:
            words.append("unauthorised")
        return words


def _hall_is_busy(local_time: datetime | None) -> bool:
    """Halls are busy on weekdays 09:00–17:00 and Saturday mornings (local time); quiet otherwise."""
    if local_time is None:
        return True
    local_time = local_time.astimezone(SHANGHAI)
    hour = local_time.hour + local_time.minute / 60
    if local_time.weekday() < 5:
        return 9 <= hour < 17
    return local_time.weekday() == 5 and 9 <= hour < 12


def _next_patch(version: str) -> str:
    head, _, last = version.partition("-")[0].rpartition(".")
    return f"{head}.{int(last) + 1}" if last.isdigit() else version


def kiosks_from_keyring(
    tokens: dict[str, str],
    *,
    now: float,
    settings: SimulationSettings,
    seed: int = 0,
    limit: int | None = None,
    known: dict[str, tuple[str, int | None]] | None = None,
    halls: dict[str, str] | None = None,
) -> list[SimulatedKiosk]:
    """One simulated kiosk per keyring entry, in serial order. `known` gives a serial's (software version,
    heartbeat interval) where the demo plan knows them, so heartbeats do not contradict the seeded data."""
    known = known or {}
    serials = sorted(tokens)[:limit] if limit else sorted(tokens)
    kiosks = []
    for serial in serials:
        version, interval = known.get(serial, ("3.4.2", None))
        kiosks.append(
            SimulatedKiosk(
                serial,
                tokens[serial],
                now=now,
                software_version=version,
                interval_s=interval or 60,
                settings=settings,
                rng=random.Random(f"{seed}:{serial}"),
                hall=(halls or {}).get(serial, ""),
            )
        )
    return kiosks


# --- Over HTTP ------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the simulator has done since it started, for the periodic summary."""

    heartbeats: int = 0
    results: int = 0
    commands: int = 0
    unreachable: int = 0
    timeouts: int = 0
    by_status: Counter = field(default_factory=Counter)


class FleetSimulator:
    """Drives simulated kiosks against a KioskOps server until stopped."""

    def __init__(
        self,
        url: str,
        kiosks: list[SimulatedKiosk],
        *,
        max_connections: int = 20,
        summary_every: float = 30.0,
        log: Callable[[str], None] = print,
        keyring: Path | None = None,
        read_keyring: Callable[[Path], dict[str, str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.url = url.rstrip("/")
        self.kiosks = kiosks
        self.max_connections = max_connections
        self.summary_every = summary_every
        self.log = log
        self.keyring, self.read_keyring = keyring, read_keyring
        self._keyring_mtime = _mtime(keyring)
        self.clock = clock
        self.transport = transport  # tests hand in a fake server
        self.tally = Tally()
        self.stop = asyncio.Event()
        self.server_up = False
        self._connections = asyncio.Semaphore(max_connections)
        self._reported_400 = 0

    async def run(self, duration: float | None = None) -> Tally:
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        client = httpx.AsyncClient(
            base_url=self.url, timeout=httpx.Timeout(30.0, connect=5.0), limits=limits, transport=self.transport
        )
        async with client:
            if duration is not None:
                asyncio.get_running_loop().call_later(duration, self.stop.set)
            if not await self._wait_for_server(client):
                return self.tally
            self.log(f"simulating {len(self.kiosks)} kiosks against {self.url}")
            drivers = [asyncio.create_task(self._drive(kiosk, client)) for kiosk in self.kiosks]
            drivers.append(asyncio.create_task(self._hall_outages()))
            reporter = asyncio.create_task(self._report())
            await self.stop.wait()
            # Let requests in flight finish briefly; a kiosk cut off mid-request just looks silent to the server.
            _done, pending = await asyncio.wait(drivers, timeout=3)
            for task in [*pending, reporter]:
                task.cancel()
            await asyncio.gather(*pending, reporter, return_exceptions=True)
        self.log("stopped. " + self.summary())
        return self.tally

    async def _wait_for_server(self, client: httpx.AsyncClient) -> bool:
        announced = False
        while not self.stop.is_set():
            try:
                await client.get("/", timeout=3)
                self.server_up = True
                return True
            except httpx.TransportError:
                if not announced:
                    self.log(f"waiting for the server at {self.url} …")
                    announced = True
            await self._sleep(1.0)
        return False

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            pass

    async def _drive(self, kiosk: SimulatedKiosk, client: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            now = self.clock()
            wake = kiosk.next_wake()
            if kiosk.results and not kiosk.is_silent:
                wake = min(wake, now + 5)  # results still to deliver: retry them soon
            await self._sleep(wake - now)
            if self.stop.is_set():
                return
            now = self.clock()
            kiosk.advance(now, local_time=datetime.now(SHANGHAI))
            self._log_journal(kiosk)
            if kiosk.is_silent:
                continue
            for result in list(kiosk.results):
                await self._post_result(client, kiosk, result)
            if kiosk.wants_heartbeat(self.clock()):
                await self._post_heartbeat(client, kiosk)
                self._log_journal(kiosk)

    def _log_journal(self, kiosk: SimulatedKiosk) -> None:
        for line in kiosk.journal:
            self.log(line)
        kiosk.journal.clear()

    async def _post_heartbeat(self, client: httpx.AsyncClient, kiosk: SimulatedKiosk) -> None:
        body = kiosk.heartbeat(datetime.now(SHANGHAI))
        response = await self._post(client, HEARTBEAT_PATH, kiosk, body)
        if response is None:
            kiosk.on_transport_error(self.clock())
            return
        self.tally.heartbeats += 1
        self.tally.by_status[response.status_code] += 1
        payload = _json(response) if response.status_code == 200 else None
        if response.status_code == 400 and self._reported_400 < 5:
            self._reported_400 += 1
            self.log(f"{kiosk.serial}: heartbeat rejected (400): {response.text[:300]}")
        self.tally.commands += kiosk.on_heartbeat_response(
            self.clock(), response.status_code, payload, _float(response.headers.get("Retry-After"))
        )

    async def _post_result(self, client: httpx.AsyncClient, kiosk: SimulatedKiosk, result: CommandResult) -> None:
        response = await self._post(client, RESULT_PATH.format(id=result.command_id), kiosk, result.body())
        if response is not None and kiosk.on_result_posted(result, response.status_code):
            self.tally.results += 1

    async def _post(self, client, path, kiosk, body) -> httpx.Response | None:
        async with self._connections:
            try:
                response = await client.post(path, json=body, headers={"Authorization": f"Device {kiosk.token}"})
            except httpx.TimeoutException:
                # Slow, not gone: a heartbeat can wait behind a busy server (a sweep, a large import).
                self.tally.timeouts += 1
                return None
            except httpx.HTTPError:
                self.tally.unreachable += 1
                if self.server_up:
                    self.server_up = False
                    self.log(f"server at {self.url} not answering; kiosks keep trying")
                return None
        if not self.server_up:
            self.server_up = True
            self.log(f"server at {self.url} answering again")
        return response

    async def _hall_outages(self, tick_s: float = 30.0) -> None:
        """Now and then a hall loses its power or network: all its kiosks fall silent together for a few minutes."""
        halls: dict[str, list[SimulatedKiosk]] = {}
        for kiosk in self.kiosks:
            if kiosk.hall:
                halls.setdefault(kiosk.hall, []).append(kiosk)
        if not halls:
            return
        rng = random.Random(f"halls:{len(self.kiosks)}")
        while not self.stop.is_set():
            await self._sleep(tick_s)
            self.hall_outage_tick(halls, rng, tick_s)

    def hall_outage_tick(self, halls: dict[str, list[SimulatedKiosk]], rng: random.Random, tick_s: float) -> str | None:
        """One roll of the dice for the whole fleet; returns the hall that went down, if one did."""
        if not self.kiosks:
            return None
        settings = self.kiosks[0].settings
        chance = 1 - math.exp(-HALL_OUTAGE_RATE_PER_HOUR * len(halls) * settings.rate * settings.speed * tick_s / HOUR)
        if rng.random() >= chance:
            return None
        hall = rng.choice(sorted(halls))
        seconds, now = rng.uniform(*HALL_OUTAGE_S), self.clock()
        for kiosk in halls[hall]:
            if not kiosk.is_silent:
                kiosk.lose_hall(now, seconds)
        self.log(f"hall {hall}: power or network lost for {seconds / MINUTE:.0f} min ({len(halls[hall])} kiosks)")
        return hall

    async def _report(self) -> None:
        while not self.stop.is_set():
            await self._sleep(self.summary_every)
            self._reload_keyring()
            if not self.stop.is_set():
                self.log(self.summary())

    def _reload_keyring(self) -> None:
        """Pick up tokens rotated by an operator (rotate_kiosk_token updates the keyring)."""
        if self.keyring is None or self.read_keyring is None:
            return
        mtime = _mtime(self.keyring)
        if mtime == self._keyring_mtime:
            return
        self._keyring_mtime = mtime
        tokens = self.read_keyring(self.keyring)
        for kiosk in self.kiosks:
            token = tokens.get(kiosk.serial)
            if token and token != kiosk.token:
                kiosk.token = token
                if kiosk.unauthorised:
                    kiosk.unauthorised = False
                    kiosk.next_beat_at = self.clock()

    def summary(self) -> str:
        conditions = Counter(word for kiosk in self.kiosks for word in kiosk.condition())
        quiet = sum(1 for kiosk in self.kiosks if kiosk.is_silent)
        codes = " ".join(f"{code}:{n}" for code, n in sorted(self.tally.by_status.items()))
        shown = " ".join(f"{word} {n}" for word, n in sorted(conditions.items())) or "none"
        return (
            f"{datetime.now(SHANGHAI):%H:%M:%S} kiosks {len(self.kiosks)} ({quiet} silent) | "
            f"heartbeats {self.tally.heartbeats} [{codes or '-'}] | commands {self.tally.commands} "
            f"results {self.tally.results} | unreachable {self.tally.unreachable} timeouts {self.tally.timeouts} | "
            f"server {'up' if self.server_up else 'DOWN'} | trouble: {shown}"
        )


def _json(response: httpx.Response) -> dict | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime if path is not None else None
    except FileNotFoundError:
        return None
