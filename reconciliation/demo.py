"""Demo reconciliation data: fee tariffs, a few days of kiosk journals and settlement files with the usual
troubles planted, all fed through the real ingest, import and run services — so the console has a queue to work.

The journals look like a real kiosk's: one running transaction counter per kiosk, each day continuing where the
day before stopped, so a sequence gap is only ever a line the kiosk really lost (one number, at that time of day).
The settlement files say when each payer paid (as channel bills do), so a payment missing from a journal belongs to
its own day and minute. One kiosk has not uploaded yesterday's journal yet: before its upload deadline its settled
payments wait for it (等待流水上传), after it they are missing from it."""

import csv
import io
import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from fleet.models import Kiosk
from reconciliation import services
from reconciliation.journal_format import SHANGHAI
from reconciliation.models import JournalFile, JournalLine, Tariff

# 户政 and 出入境 fees (yuan). The ID card fee changed on 2026-10-01 in this demo, so old-fee payments show up.
TARIFFS = [
    (
        "ID_CARD",
        "居民身份证工本费",
        "25.00",
        date(2020, 1, 1),
        date(2026, 10, 1),
        ["card", "wechat", "alipay", "unionpay_qr", "cash"],
    ),
    (
        "ID_CARD",
        "居民身份证工本费",
        "20.00",
        date(2026, 10, 1),
        None,
        ["card", "wechat", "alipay", "unionpay_qr", "cash"],
    ),
    (
        "ID_CARD_TEMP",
        "临时居民身份证工本费",
        "10.00",
        date(2020, 1, 1),
        None,
        ["card", "wechat", "alipay", "unionpay_qr", "cash"],
    ),
    ("PASSPORT", "普通护照", "120.00", date(2020, 1, 1), None, ["card", "wechat", "alipay", "unionpay_qr"]),
    ("HK_MO_PERMIT", "往来港澳通行证", "60.00", date(2020, 1, 1), None, ["card", "wechat", "alipay", "unionpay_qr"]),
    ("ENDORSEMENT", "往来港澳签注", "15.00", date(2020, 1, 1), None, ["card", "wechat", "alipay"]),
]
FEES = {code: Decimal(amount) for code, _n, amount, _f, end, _c in TARIFFS if end is None}
ACCEPTED = {code: set(channels) for code, _n, _a, _f, end, channels in TARIFFS if end is None}
CHANNEL_WEIGHTS = [("wechat", 45), ("alipay", 30), ("unionpay_qr", 8), ("card", 12), ("cash", 5)]
HEADER = "seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status"
LEDGER_HEADER = "channel,channel_ref,paid_at,settled_at,amount,kiosk_serial,payer_ref,service_code"
# A kiosk's counter before its first demo day: each kiosk's own, as if it had been in service a while.
FIRST_SEQ = 1000
# Of the fleet, the kiosk (by position) whose journal of the last demo day has not been uploaded yet.
LATE_KIOSK = 7


def seed_tariffs() -> int:
    created = 0
    for code, name, amount, start, end, channels in TARIFFS:
        _tariff, was_created = Tariff.objects.get_or_create(
            service_code=code,
            effective_from=start,
            defaults={"name": name, "amount": Decimal(amount), "effective_to": end, "accepted_channels": channels},
        )
        created += was_created
    return created


def seed(*, days: int = 3, kiosks: int = 60, per_kiosk: int = 25, seed: int = 20261121, today: date | None = None):
    """Journals and ledgers for the last `days` days before today. Idempotent: days already seeded are skipped."""
    rng = random.Random(seed)
    today = today or timezone.localdate()
    seed_tariffs()
    fleet = list(Kiosk.objects.exclude(status="retired").order_by("serial")[:kiosks])
    if not fleet:
        return []
    seeded = []
    yesterday = today - timedelta(days=1)
    for offset in range(days, 0, -1):
        day = today - timedelta(days=offset)
        if JournalFile.objects.filter(business_date=day, kiosk__in=fleet).exists():
            continue
        late = {fleet[LATE_KIOSK].pk} if day == yesterday and len(fleet) > LATE_KIOSK else set()
        _seed_day(day, fleet, per_kiosk, rng, settled_through=yesterday, not_uploaded=late)
        seeded.append(day)
    for day in seeded:
        services.reconcile_run(business_date=day, trigger="demo")
    return seeded


def _last_seqs(fleet, day: date) -> dict[int, int]:
    """Each kiosk's highest transaction number before `day`: where its counter stands."""
    return dict(
        JournalLine.objects.filter(kiosk__in=fleet, business_date__lt=day)
        .values("kiosk_id")
        .annotate(last=Max("seq"))
        .values_list("kiosk_id", "last")
    )


def _seed_day(
    day: date, fleet, per_kiosk: int, rng: random.Random, settled_through: date, not_uploaded: set[int]
) -> None:
    ledger_rows = []
    last_seqs = _last_seqs(fleet, day)
    for kiosk_no, kiosk in enumerate(fleet):
        # The counter runs on from the kiosk's last line (before any demo day: a start of its own).
        counter = last_seqs.get(kiosk.pk, FIRST_SEQ + 37 * kiosk_no)
        lines = []
        moment = datetime.combine(day, time(9, 0), tzinfo=SHANGHAI)
        for n in range(per_kiosk):
            moment += timedelta(minutes=rng.randint(3, 15))
            service = rng.choice(list(FEES))
            channel = rng.choices([c for c, _ in CHANNEL_WEIGHTS], [w for _, w in CHANNEL_WEIGHTS])[0]
            if channel not in ACCEPTED[service] and rng.random() > 0.03:
                channel = "wechat"  # kiosks mostly offer only accepted channels; a few are misconfigured
            seq = counter + n + 1
            ref = "" if channel == "cash" else f"K{day:%Y%m%d}{kiosk.serial.replace('-', '')}{n:04d}"
            payer = f"A{day:%Y%m%d}{kiosk_no:03d}{n:03d}"
            amount = FEES[service]
            status = "success"
            trouble = rng.random()
            settle = channel != "cash"
            ledger_amount, ledger_payer = amount, payer
            in_journal = True
            if trouble < 0.01:
                status = "failed"  # the channel's answer was lost: the money settled anyway
            elif trouble < 0.02:
                settle = False  # never settled
            elif trouble < 0.025 and service == "ID_CARD":
                amount = ledger_amount = Decimal("25.00")  # paid the old fee
            elif trouble < 0.03:
                ledger_amount = amount * 10  # a decimal-point slip on the bank side
            elif trouble < 0.035:
                ledger_payer = payer + "1"  # one extra digit typed
            elif trouble < 0.04 and 0 < n < per_kiosk - 1 and settle:
                # The kiosk lost this line: the ledger has it, the journal does not, and its number is missing
                # between the lines before and after it (a one-line gap at that time of day).
                in_journal = False
            if in_journal:
                lines.append(
                    f"{seq},T{ref or payer},{moment.isoformat()},{amount},{channel},{ref},{payer},{service},{status}"
                )
            if settle and day <= settled_through:
                settled = datetime.combine(day + timedelta(days=1), time(3, 0), tzinfo=SHANGHAI)
                ledger_rows.append(
                    [
                        channel,
                        ref,
                        moment.isoformat(),
                        settled.isoformat(),
                        ledger_amount,
                        kiosk.serial,
                        ledger_payer,
                        service,
                    ]
                )
        if kiosk.pk in not_uploaded:
            continue  # its journal of the day is still on the kiosk
        body = (HEADER + "\n" + "\n".join(lines) + "\n").encode()
        with transaction.atomic():
            services.journal_ingest(kiosk=kiosk, business_date=day, data=body)
        # Uploaded that evening, as kiosks do, not when the demo was loaded (which would make every journal late).
        evening = datetime.combine(day, time(21, 0), tzinfo=SHANGHAI) + timedelta(minutes=kiosk_no)
        JournalFile.objects.filter(kiosk=kiosk, business_date=day).update(received_at=evening)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LEDGER_HEADER.split(","))
    writer.writerows(ledger_rows)
    services.ledger_import(data=out.getvalue().encode(), fmt="canonical", original_name=f"settlement-{day}.csv")
