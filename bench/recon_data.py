"""One business day of kiosk journals and the matching ledger, with planted discrepancies and the truth about them.

Pure Python, no Django: bench/reconciliation.py writes what this returns to files and compares the reconcile run's
items with `Truth`. Everything comes from one seeded random generator, so a seed always makes the same day.

The day: every kiosk sells fees (tariffs below) through WeChat Pay, Alipay, bank card, UnionPay QR and cash. Every
settled non-cash payment is in the ledger under the merchant order number the kiosk sent; wallets give the payment
time (paid_at), bank statements only the settlement time. Planted into that, about 2% of the lines:

  missing_in_ledger     a wallet payment never settled (wallet window: 1 working day, so overdue by `today`)
  pending_settlement    a card payment not settled yet (card window: 3 working days, still open on `today`)
  missing_in_journal    a settled wallet payment the kiosk never recorded
  amount_mismatch       the ledger settled another amount (×10, a digit off, partial)
  fee_policy_mismatch   the citizen paid the old ID-card fee (25.00; 20.00 since 2026-10-01)
  duplicate_charge      the same payer's same fee settled twice: two kiosk lines, or one line and an extra entry
  failed_but_settled    the kiosk recorded the payment as failed, the channel settled it
  payer_mismatch        the ledger's payer reference differs (a digit more)
  channel_not_accepted  a 户口簿 fee paid by Alipay or UnionPay QR, which that fee does not accept
  proposed_match        the ledger has two unreferenced entries that fit the line equally: left for review
  fuzzy (matched)       the ledger's order number has a typo; kiosk, amount and time pair it (kept as an item)

A plant must not create matches nobody planted: the fuzzy matcher pairs a line without settlement with a settled
entry without line of the same kiosk, amount and channel close in time, so each kiosk's unpaired lines and entries
are checked against that rule and the kiosk is drawn again if two plants would meet.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from itertools import accumulate

UTC8 = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST: a fixed offset writes the same timestamps
JOURNAL_HEADER = "seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status\n"
LEDGER_HEADER = "channel,channel_ref,settled_at,amount,kiosk_serial,payer_ref,service_code,paid_at\n"
WALLETS = ("wechat", "alipay")
BANKS = ("card", "unionpay_qr")
ALL_CHANNELS = ("card", "wechat", "alipay", "unionpay_qr", "cash")

# (service_code, name, [(amount, from, to)], accepted channels, weight); a service without tariff has variable
# amounts (fines, contributions) and is never checked against a fee.
TARIFFS = [
    (
        "ID_CARD",
        "居民身份证工本费",
        [("25.00", date(2020, 1, 1), date(2026, 10, 1)), ("20.00", date(2026, 10, 1), None)],
        ALL_CHANNELS,
        30,
    ),
    ("ID_CARD_TEMP", "临时居民身份证工本费", [("10.00", date(2020, 1, 1), None)], ALL_CHANNELS, 10),
    ("HUKOU", "户口簿工本费", [("8.00", date(2020, 1, 1), None)], ("card", "wechat", "cash"), 8),
    ("PASSPORT", "普通护照工本费", [("120.00", date(2019, 4, 1), None)], ALL_CHANNELS, 8),
    ("HK_MACAO_PERMIT", "往来港澳通行证工本费", [("60.00", date(2019, 4, 1), None)], ALL_CHANNELS, 8),
    ("DRIVING_LICENCE", "机动车驾驶证工本费", [("10.00", date(2020, 1, 1), None)], ALL_CHANNELS, 10),
    ("PLATE", "机动车号牌工本费", [("100.00", date(2020, 1, 1), None)], ALL_CHANNELS, 4),
]
UNTARIFFED = [("TRAFFIC_FINE", ("20.00", "50.00", "100.00", "150.00", "200.00"), 15), ("SOCIAL_INSURANCE", None, 7)]
CHANNEL_WEIGHTS = {"wechat": 40, "alipay": 30, "card": 10, "unionpay_qr": 10, "cash": 10}

# Planted per kind, as a share of journal lines. Ten discrepancy kinds at 0.2% make 2%; pending and fuzzy are
# planted on top (they are outcomes to get right, but not discrepancies).
PLANT_SHARE = {
    "missing_in_ledger": 0.002,
    "pending_settlement": 0.002,
    "missing_in_journal": 0.002,
    "amount_mismatch": 0.002,
    "fee_policy_mismatch": 0.002,
    "duplicate_pair": 0.001,  # two kiosk lines, both settled: the second is the duplicate
    "duplicate_extra": 0.001,  # one kiosk line, two settlements: the extra entry is the duplicate
    "failed_but_settled": 0.002,
    "payer_mismatch": 0.002,
    "channel_not_accepted": 0.002,
    "proposed_match": 0.002,
    "fuzzy": 0.002,
}
DISCREPANCIES = (
    "missing_in_ledger",
    "missing_in_journal",
    "amount_mismatch",
    "fee_policy_mismatch",
    "duplicate_charge",
    "failed_but_settled",
    "payer_mismatch",
    "channel_not_accepted",
    "proposed_match",
)
FUZZY_TOLERANCE = timedelta(minutes=10)  # reconciliation.matching.FUZZY_PAID_AT_TOLERANCE


@dataclass
class Truth:
    """What the reconcile run must report, and nothing more."""

    # (kiosk serial, txn_id) -> (outcome, channel_ref of the ledger entry it must be paired with, or "")
    journal_items: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # channel_ref of a ledger entry without kiosk line -> outcome
    ledger_items: dict[str, str] = field(default_factory=dict)
    # (kiosk serial, txn_id) of a proposed match -> the channel_refs of its candidates
    candidates: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    outcomes: Counter = field(default_factory=Counter)  # what the run's outcome counts must be
    plants: Counter = field(default_factory=Counter)  # how many of each plant
    cash_lines: int = 0
    failed_not_settled: int = 0
    journal_lines: int = 0
    ledger_rows: int = 0

    @property
    def discrepancies(self) -> int:
        return sum(self.outcomes[k] for k in DISCREPANCIES)


@dataclass
class Day:
    business_date: date
    today: date
    serials: list[str]
    journals: list[bytes]  # CSV of kiosk i, in the order of serials
    ledger: bytes
    truth: Truth
    tariffs: list[dict]
    windows: dict[str, tuple[int, int]]


# --- One kiosk ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    seq: int
    txn_id: str
    occurred: datetime
    amount: str
    channel: str
    ref: str
    payer: str
    service: str
    status: str
    outcome: str = ""  # what the run must say; "" for a clean key match
    settled: bool = False  # has a ledger entry under its own ref
    ledger_amount: str = ""
    ledger_payer: str = ""
    settled_at: datetime | None = None  # when a plant needs the settlement at a given time


@dataclass(slots=True)
class _Entry:
    channel: str
    ref: str
    settled: datetime
    amount: str
    serial: str
    payer: str
    service: str
    paid: datetime | None


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class _Kiosk:
    def __init__(self, rng: random.Random, day: date, number: int, lines: int, seq_start: int):
        self.rng, self.day, self.number = rng, day, number
        self.serial = f"KS-{number:05d}"
        self.compact = f"{day:%Y%m%d}KS{number:05d}"
        self.lines: list[_Line] = []
        self.extra: list[_Entry] = []  # ledger entries without a line of this kiosk
        self.intended: set[tuple[int, str]] = set()  # (line index, entry ref) pairs the fuzzy rule should see
        self.extra_outcomes: dict[str, str] = {}  # entry ref -> what the run must say about it
        self.fuzzy: dict[int, str] = {}  # line index -> the mistyped ref it must be paired with
        self.proposed: dict[int, set[str]] = {}  # line index -> its two candidates' refs
        opening = datetime.combine(day, time(8, 30), tzinfo=UTC8)
        seconds = sorted(rng.sample(range(9 * 3600), lines))
        for n, offset in enumerate(seconds):
            self.lines.append(self._line(n, seq_start + n, opening + timedelta(seconds=offset)))
        self._serial_no = 0

    def _service(self) -> tuple[str, str, tuple[str, ...]]:
        rng = self.rng
        pick = rng.choices(_SERVICE_NAMES, cum_weights=_SERVICE_CUM)[0]
        if pick in _TARIFF_NOW:
            amount, channels = _TARIFF_NOW[pick]
            return pick, amount, channels
        choices = _UNTARIFFED_AMOUNTS[pick]
        amount = rng.choice(choices) if choices else f"{rng.randint(100, 3000)}.{rng.choice(('00', '50'))}"
        return pick, amount, ALL_CHANNELS

    def _line(self, n: int, seq: int, occurred: datetime) -> _Line:
        rng = self.rng
        service, amount, channels = self._service()
        channel = rng.choices(_CHANNELS, cum_weights=_CHANNEL_CUM)[0]
        while channel not in channels:
            channel = rng.choices(_CHANNELS, cum_weights=_CHANNEL_CUM)[0]
        roll = rng.random()
        status = "success" if roll < 0.965 else ("failed" if roll < 0.99 else "reversed")
        if rng.random() < 0.05:
            # Kiosks sometimes put the citizen's ID number in payer_ref; it must come out protected on both sides.
            # 18 digits: area (unique per kiosk here), birth date, order code, check digit; unique per line.
            payer = f"{110000 + self.number:06d}{1960 + n % 40}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}{n % 10}"
        else:
            payer = f"A{self.day:%Y%m%d}{self.number:05d}{n:04d}"
        line = _Line(
            seq=seq,
            txn_id=f"T{self.compact}{n:06d}",
            occurred=occurred,
            amount=amount,
            channel=channel,
            ref="" if channel == "cash" else f"K{self.compact}{n:06d}",
            payer=payer,
            service=service,
            status=status,
        )
        line.settled = channel != "cash" and status == "success"
        line.ledger_amount, line.ledger_payer = amount, payer
        return line

    def _extra_ref(self) -> str:
        self._serial_no += 1
        return f"L{self.compact}{self._serial_no:05d}"

    def _settled_at(self, line_or_time) -> datetime:
        moment = line_or_time if isinstance(line_or_time, datetime) else line_or_time.occurred
        base = datetime.combine(moment.date() + timedelta(days=1), time(0, 30), tzinfo=UTC8)
        return base + timedelta(seconds=self.rng.randint(0, 3 * 3600))

    def entry_of(self, line: _Line) -> _Entry:
        wallet = line.channel in WALLETS
        return _Entry(
            channel=line.channel,
            ref=line.ref,
            settled=line.settled_at or self._settled_at(line),
            amount=line.ledger_amount,
            serial=self.serial,
            payer=line.ledger_payer,
            service=line.service,
            paid=line.occurred + timedelta(seconds=self.rng.randint(1, 20)) if wallet else None,
        )

    # --- plants: each takes a free line index (or none) and rewrites what it needs --------------------

    def plant(self, kind: str, free: list[int]) -> bool:
        rng = self.rng
        if kind == "duplicate_pair":
            starts = [i for i in free if i + 1 in free]
            if not starts:
                return False
            i = rng.choice(starts)
            first, second = self.lines[i], self.lines[i + 1]
            if first.channel == "cash":
                first.channel = rng.choice(WALLETS)
            first.status, first.settled, first.ref = "success", True, f"K{self.compact}{i:06d}"
            self._fix_channel(first)
            # The citizen paid the same fee again a moment later, on the same channel; it settled later too.
            second.status, second.settled, second.ref = "success", True, f"K{self.compact}{i + 1:06d}"
            second.channel, second.service, second.amount, second.payer = (
                first.channel,
                first.service,
                first.amount,
                first.payer,
            )
            first.ledger_amount, first.ledger_payer = first.amount, first.payer
            second.ledger_amount, second.ledger_payer = second.amount, second.payer
            first.settled_at = self._settled_at(first)
            second.settled_at = first.settled_at + timedelta(minutes=5)
            second.outcome = "duplicate_charge"
            free.remove(i)
            free.remove(i + 1)
            return True
        if kind == "missing_in_journal":
            service, amount, channels = self._service()
            channel = rng.choice([c for c in WALLETS if c in channels])
            paid = datetime.combine(self.day, time(8, 30), tzinfo=UTC8) + timedelta(seconds=rng.randint(0, 9 * 3600))
            ref = self._extra_ref()
            serial = self.serial if rng.random() < 0.8 else ""  # some bills do not say which kiosk
            self.extra.append(
                _Entry(channel, ref, self._settled_at(paid), amount, serial, f"A{ref[1:]}", service, paid)
            )
            self.extra_outcomes[ref] = "missing_in_journal"
            return True
        if not free:
            return False
        i = rng.choice(free)
        line = self.lines[i]
        free.remove(i)
        line.status, line.settled = "success", True
        if line.channel == "cash":
            line.channel = rng.choice(WALLETS)
            line.ref = f"K{self.compact}{i:06d}"
            self._fix_channel(line)
        if kind == "missing_in_ledger":
            if line.channel not in WALLETS:
                line.channel = rng.choice(WALLETS)
                self._fix_channel(line)
            line.settled, line.outcome = False, "missing_in_ledger"
        elif kind == "pending_settlement":
            line.channel = rng.choice(BANKS)
            self._fix_channel(line)
            line.settled, line.outcome = False, "pending_settlement"
        elif kind == "amount_mismatch":
            cents = int(line.amount.replace(".", ""))
            changed = rng.choice((cents * 10, cents + 100, cents // 2 or 1))
            line.ledger_amount, line.outcome = f"{changed // 100}.{changed % 100:02d}", "amount_mismatch"
        elif kind == "fee_policy_mismatch":
            line.service, line.amount = "ID_CARD", "25.00"
            line.ledger_amount, line.outcome = "25.00", "fee_policy_mismatch"
        elif kind == "failed_but_settled":
            line.status, line.outcome = rng.choice(("failed", "failed", "reversed")), "failed_but_settled"
        elif kind == "payer_mismatch":
            if not line.payer.startswith("A"):
                line.payer = f"A{self.day:%Y%m%d}{self.number:05d}{i:04d}"
            line.ledger_payer, line.outcome = line.payer + str(rng.randint(0, 9)), "payer_mismatch"
        elif kind == "channel_not_accepted":
            line.service, line.amount = "HUKOU", "8.00"
            line.channel = rng.choice(("alipay", "unionpay_qr"))
            line.ledger_amount, line.outcome = "8.00", "channel_not_accepted"
        elif kind == "duplicate_extra":
            if line.channel not in WALLETS:
                line.channel = rng.choice(WALLETS)
                self._fix_channel(line)
            paid = line.occurred + timedelta(minutes=rng.randint(3, 40))
            if paid.date() != self.day:
                paid = line.occurred + timedelta(seconds=30)
            ref = self._extra_ref()
            self.extra.append(
                _Entry(
                    line.channel, ref, self._settled_at(paid) + timedelta(hours=4), line.amount, self.serial,
                    line.payer, line.service, paid,
                )
            )  # fmt: skip
            self.extra_outcomes[ref] = "duplicate_charge"
        elif kind == "fuzzy":
            line.settled, line.outcome = False, "matched"
            typo = line.ref[:-2] + line.ref[-1] + line.ref[-2] + "0"  # two digits swapped, one too many
            wallet = line.channel in WALLETS
            self.extra.append(
                _Entry(
                    line.channel, typo, self._settled_at(line), line.amount, self.serial, line.payer, line.service,
                    line.occurred + timedelta(seconds=rng.randint(1, 30)) if wallet else None,
                )
            )  # fmt: skip
            self.fuzzy[i] = typo
            self.intended.add((i, typo))
        elif kind == "proposed_match":
            if line.channel not in WALLETS:
                line.channel = rng.choice(WALLETS)
                self._fix_channel(line)
            line.settled, line.outcome = False, "proposed_match"
            refs = []
            for delay in (rng.randint(5, 60), rng.randint(61, 300)):
                ref = self._extra_ref()
                self.extra.append(
                    _Entry(
                        line.channel, ref, self._settled_at(line), line.amount, self.serial, "", line.service,
                        line.occurred + timedelta(seconds=delay),
                    )
                )  # fmt: skip
                self.intended.add((i, ref))
                refs.append(ref)
            self.proposed[i] = set(refs)
        else:
            raise ValueError(kind)
        return True

    def _fix_channel(self, line: _Line) -> None:
        """After a plant changed the channel, the fee must still accept it, or the line gets a second finding."""
        accepted = _TARIFF_NOW.get(line.service, (None, ALL_CHANNELS))[1]
        if line.channel not in accepted:
            line.service = "ID_CARD_TEMP"
            line.amount = line.ledger_amount = "10.00"

    def unintended_fuzzy(self) -> bool:
        """Whether the fuzzy rule would see a line and an entry of this kiosk that no plant put together."""
        waiting = [
            (i, line)
            for i, line in enumerate(self.lines)
            if line.status == "success" and line.channel != "cash" and not line.settled
        ]
        for entry in self.extra:
            if not entry.serial:
                continue
            for i, line in waiting:
                if (i, entry.ref) in self.intended:
                    continue
                if (entry.amount, entry.channel) != (line.amount, line.channel):
                    continue
                if entry.service and entry.service != line.service:
                    continue
                if line.payer and entry.payer and line.payer != entry.payer:
                    continue
                if entry.paid is not None:
                    close = abs(entry.paid - line.occurred) <= FUZZY_TOLERANCE
                else:
                    close = line.occurred - FUZZY_TOLERANCE <= entry.settled <= line.occurred + timedelta(days=7)
                if close:
                    return True
        return False


_SERVICE_NAMES = [t[0] for t in TARIFFS] + [u[0] for u in UNTARIFFED]
_SERVICE_WEIGHTS = [t[4] for t in TARIFFS] + [u[2] for u in UNTARIFFED]
_TARIFF_NOW = {t[0]: (t[2][-1][0], t[3]) for t in TARIFFS}
_UNTARIFFED_AMOUNTS = {u[0]: u[1] for u in UNTARIFFED}
_CHANNELS = list(CHANNEL_WEIGHTS)
_SERVICE_CUM = list(accumulate(_SERVICE_WEIGHTS))
_CHANNEL_CUM = list(accumulate(CHANNEL_WEIGHTS.values()))


# --- The day --------------------------------------------------------------------------------------------


def generate(
    *, kiosks: int = 10_000, lines: int = 1_000_000, seed: int = 20261118, business_date: date = date(2026, 11, 18)
) -> Day:
    """The journals of `kiosks` kiosks, `lines` lines in all (about lines/kiosks each), and the ledger."""
    rng = random.Random(seed)
    per_kiosk = lines // kiosks
    counts = [per_kiosk] * kiosks
    for k in range(lines - per_kiosk * kiosks):
        counts[k] += 1
    spread = max(0, min(per_kiosk // 5, per_kiosk - 5))
    for k in range(0, kiosks - 1, 2):  # vary the sizes, keep the total
        d = rng.randint(-spread, spread)
        counts[k] += d
        counts[k + 1] -= d

    plan: list[list[str]] = [[] for _ in range(kiosks)]
    for kind, share in PLANT_SHARE.items():
        for _ in range(max(1, round(lines * share))):
            plan[rng.randrange(kiosks)].append(kind)

    truth = Truth()
    journals: list[bytes] = []
    ledger_rows: list[str] = []
    serials: list[str] = []
    for k in range(kiosks):
        kiosk_seed = rng.getrandbits(64)
        seq_start = rng.randint(1, 500_000)
        for attempt in range(50):
            kiosk = _Kiosk(random.Random(kiosk_seed + attempt), business_date, k + 1, counts[k], seq_start)
            free = list(range(len(kiosk.lines)))
            placed = all(kiosk.plant(kind, free) for kind in plan[k])
            if placed and not kiosk.unintended_fuzzy():
                break
        else:
            raise RuntimeError(f"could not place the plants of kiosk {k + 1} without unplanned fuzzy matches")
        serials.append(kiosk.serial)
        journals.append(_journal_csv(kiosk, truth))
        ledger_rows.extend(_ledger_rows(kiosk, truth))
        for kind in plan[k]:
            truth.plants[kind] += 1
    rng.shuffle(ledger_rows)  # a bill is in settlement order, not kiosk by kiosk
    truth.ledger_rows = len(ledger_rows)
    ledger = (LEDGER_HEADER + "".join(ledger_rows)).encode()
    tariffs = [
        {
            "service_code": code,
            "name": name,
            "amount": amount,
            "effective_from": start,
            "effective_to": end,
            "accepted_channels": list(channels),
        }
        for code, name, periods, channels, _w in TARIFFS
        for amount, start, end in periods
    ]
    # Wallets settle the next working day, banks within three: on `today` a wallet payment without settlement
    # is overdue and a card payment still pending.
    windows = {"wechat": (1, 1), "alipay": (1, 1), "card": (1, 3), "unionpay_qr": (1, 3)}
    return Day(business_date, business_date + timedelta(days=2), serials, journals, ledger, truth, tariffs, windows)


def _journal_csv(kiosk: _Kiosk, truth: Truth) -> bytes:
    rows = [JOURNAL_HEADER]
    for i, line in enumerate(kiosk.lines):
        rows.append(
            f"{line.seq},{line.txn_id},{_iso(line.occurred)},{line.amount},{line.channel},{line.ref},"
            f"{line.payer},{line.service},{line.status}\n"
        )
        truth.journal_lines += 1
        key = (kiosk.serial, line.txn_id)
        if line.channel == "cash":
            truth.cash_lines += 1
            continue
        if not line.settled and line.status != "success":
            truth.failed_not_settled += 1
            continue
        outcome = line.outcome or "matched"
        truth.outcomes[outcome] += 1
        if i in kiosk.fuzzy:
            truth.journal_items[key] = ("matched", kiosk.fuzzy[i])
        elif i in kiosk.proposed:
            truth.journal_items[key] = ("proposed_match", "")
            truth.candidates[key] = kiosk.proposed[i]
        elif line.outcome:
            truth.journal_items[key] = (line.outcome, line.ref if line.settled else "")
    for ref, outcome in kiosk.extra_outcomes.items():
        truth.ledger_items[ref] = outcome
        truth.outcomes[outcome] += 1
    return "".join(rows).encode()


def _ledger_rows(kiosk: _Kiosk, truth: Truth) -> list[str]:
    entries = [kiosk.entry_of(line) for line in kiosk.lines if line.settled] + kiosk.extra
    return [
        f"{e.channel},{e.ref},{_iso(e.settled)},{e.amount},{e.serial},{e.payer},{e.service},"
        f"{_iso(e.paid) if e.paid else ''}\n"
        for e in entries
    ]
