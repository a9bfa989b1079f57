"""The cause engine names the evidence nearest the payment — the gap around its time, the outage or silence at its
minute — before anything hours away on the same day, and says how sure it is."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.urls import reverse

from fleet.models import Heartbeat
from reconciliation import causes, demo
from reconciliation.calendar import BusinessCalendar
from reconciliation.matching import JRow, LRow, Verdict
from reconciliation.models import JournalGap, JournalLine, LedgerEntry, ReconItem
from tests.factories import KioskFactory, UserFactory
from tests.reconciliation.conftest import at

DAY = date(2026, 11, 18)
AFTER_WINDOW = date(2026, 11, 25)
KIOSK = 7


def t(hhmm: str) -> datetime:
    return at(DAY, hhmm)


def ledger_row(paid: datetime | None, ref: str = "ORD-1") -> LRow:
    return LRow(
        id=1,
        channel="wechat",
        channel_ref=ref,
        paid_at=paid,
        settled_at=at(DAY + timedelta(days=1), "03:00"),
        business_date=DAY,
        amount=Decimal("20.00"),
        kiosk_serial="KS-7",
        payer_ref="A-1",
        service_code="ID_CARD",
        kiosk_id=KIOSK,
    )


def journal_row(when: datetime, *, seq: int = 500, ref: str = "ORD-1") -> JRow:
    return JRow(1, KIOSK, "KS-7", seq, when, Decimal("20.00"), "wechat", ref, "A-1", "ID_CARD", "success")


def ranked(verdict, evidence) -> list[dict]:
    evidence.first_upload.setdefault(KIOSK, t("22:00"))  # the journal came in time unless a test says not
    evidence.ledger_coverage.setdefault("wechat", DAY)
    return causes.rank(verdict, evidence, business_date=DAY, calendar=BusinessCalendar(), today=AFTER_WINDOW)


def missing_in_journal(paid: datetime | None) -> Verdict:
    return Verdict("missing_in_journal", None, ledger_row(paid))


# --- Sequence gaps ----------------------------------------------------------------------------------------


def test_a_missing_line_is_explained_by_the_gap_around_its_time_not_the_gap_that_opens_the_day():
    evidence = causes.Evidence(
        gaps={
            KIOSK: [
                (326026, 327000, None, t("09:03")),  # from yesterday's last number to today's first
                (327015, 327015, t("14:02"), t("14:20")),  # one line lost between 14:02 and 14:20
            ]
        }
    )

    found = ranked(missing_in_journal(t("14:11")), evidence)

    assert found[0]["cause"] == "journal_gap" and found[0]["confidence"] == "high"
    assert (found[0]["detail"]["first"], found[0]["detail"]["last"]) == (327015, 327015)


def test_of_two_lost_lines_of_a_day_each_payment_names_its_own():
    gaps = {KIOSK: [(100, 100, t("09:10"), t("09:30")), (140, 140, t("15:00"), t("15:12"))]}

    morning = ranked(missing_in_journal(t("09:20")), causes.Evidence(gaps=gaps))[0]
    afternoon = ranked(missing_in_journal(t("15:05")), causes.Evidence(gaps=gaps))[0]

    assert (morning["detail"]["first"], afternoon["detail"]["first"]) == (100, 140)
    assert morning["confidence"] == afternoon["confidence"] == "high"


def test_a_gap_only_near_the_payment_is_less_sure_and_one_hours_away_is_a_weak_hint():
    gaps = {KIOSK: [(100, 100, t("09:10"), t("09:30"))]}

    near = ranked(missing_in_journal(t("09:50")), causes.Evidence(gaps=gaps))[0]
    far = ranked(missing_in_journal(t("16:00")), causes.Evidence(gaps=gaps))[0]

    assert (near["cause"], near["confidence"]) == ("journal_gap", "medium")
    assert (far["cause"], far["confidence"]) == ("journal_gap", "low")


def test_without_the_payment_time_no_gap_is_named_with_high_confidence():
    gaps = {KIOSK: [(100, 100, t("09:10"), t("09:30")), (140, 141, t("15:00"), t("15:12"))]}

    found = ranked(missing_in_journal(None), causes.Evidence(gaps=gaps))

    assert found[0]["cause"] == "journal_gap" and found[0]["confidence"] == "low"
    assert found[0]["detail"]["first"] == 100, "the smaller gap first"


def test_a_kiosk_that_never_uploaded_the_day_is_the_surest_cause():
    evidence = causes.Evidence(gaps={})
    evidence.first_upload = {}

    found = causes.rank(
        missing_in_journal(t("10:00")),
        evidence,
        business_date=DAY,
        calendar=BusinessCalendar(),
        today=AFTER_WINDOW,
    )

    assert (found[0]["cause"], found[0]["confidence"]) == ("journal_not_uploaded", "high")


# --- Outages and silences --------------------------------------------------------------------------------


def test_an_outage_covering_the_payments_minute_beats_one_that_ended_hours_before():
    flips = {
        KIOSK: [
            (t("08:00"), "online", "offline", "no heartbeat"),
            (t("08:20"), "offline", "online", ""),
            (t("14:00"), "online", "offline", "no heartbeat"),
            (t("14:40"), "offline", "online", ""),
        ]
    }

    during = ranked(missing_in_journal(t("14:10")), causes.Evidence(flips=flips))
    between = ranked(missing_in_journal(t("11:00")), causes.Evidence(flips=flips))

    assert during[0]["cause"] == "kiosk_offline" and during[0]["confidence"] == "high"
    assert during[0]["detail"]["at"].startswith("2026-11-18T14:00") and during[0]["detail"]["until"]
    assert "kiosk_offline" not in {c["cause"] for c in between}, "outages hours away say nothing"


def test_a_heartbeat_silence_at_the_minute_of_a_payment_missing_from_the_journal_is_found():
    evidence = causes.Evidence(heartbeat_around_ledger={1: (t("13:58"), t("14:15"), 60)})

    found = ranked(missing_in_journal(t("14:05")), evidence)

    assert (found[0]["cause"], found[0]["confidence"]) == ("heartbeat_gap", "high")


def test_a_mismatched_amount_is_explained_by_the_values_not_by_an_outage():
    flips = {KIOSK: [(t("09:00"), "online", "offline", "no heartbeat")]}
    verdict = Verdict(
        "amount_mismatch",
        journal_row(t("10:00")),
        ledger_row(t("10:00")),
        "key",
        {"journal_amount": "20.00", "ledger_amount": "200.00"},
    )

    found = ranked(verdict, causes.Evidence(flips=flips))

    assert [c["cause"] for c in found] == ["input_error"]


def test_a_fuzzy_pair_whose_order_numbers_differ_by_a_character_is_a_typing_error_in_the_order_number():
    verdict = Verdict(
        "matched", journal_row(t("10:00"), ref="K2026111800123"), ledger_row(t("10:01"), "K2026111800128")
    )
    verdict.method = "fuzzy"

    found = ranked(verdict, causes.Evidence())

    assert found[0]["cause"] == "input_error" and found[0]["detail"]["field"] == "channel_ref"
    assert "reference_mismatch" in {c["cause"] for c in found}


def test_every_cause_carries_a_confidence_and_the_old_ones_get_one_from_their_score():
    assert causes.confidence_of(92) == "high" and causes.confidence_of(60) == "medium"
    assert causes.confidence_of(30) == "low"
    assert causes.confidence_label({"cause": "journal_gap", "score": 70}) == "把握：中"


# --- Through the run, the database and the console -------------------------------------------------------


def test_the_run_stores_the_nearest_gap_with_its_confidence_and_the_console_says_it_in_chinese(
    books, tariffs, site, client, region
):
    kiosk = KioskFactory(site=site, serial="KS-GAPS")
    books.journal(kiosk, [{"txn_id": "Y9", "seq": 999, "time": "17:00"}], day=DAY - timedelta(days=1))
    books.journal(
        kiosk,
        [
            {"txn_id": "A", "seq": 1100, "time": "09:00"},  # 1000–1099 missing since yesterday's 999
            {"txn_id": "B", "seq": 1101, "time": "10:00"},
            {"txn_id": "C", "seq": 1103, "time": "14:20"},  # 1102 lost between 10:00 and 14:20
            {"txn_id": "D", "seq": 1104, "time": "15:00"},
        ],
    )
    books.ledger(ref="ORD-LOST", kiosk=kiosk, payer="A-LOST", paid=at(DAY, "13:30"))

    books.run(today=AFTER_WINDOW)

    item = ReconItem.objects.get(ledger_entry__channel_ref="ORD-LOST")
    assert item.outcome == "missing_in_journal"
    top = item.causes[0]
    assert (top["cause"], top["detail"], top["confidence"]) == ("journal_gap", {"first": 1102, "last": 1102}, "high")
    client.force_login(UserFactory(username="fin", role="finance_officer", regions=[region]))
    page = client.get(reverse("reconciliation:item", args=[item.uid])).content.decode()
    assert "终端交易流水缺少序号 1102。" in page and "把握：高" in page
    assert "journal_gap" not in page.split("<main")[1]
    queue = client.get(reverse("reconciliation:queue")).content.decode()
    assert "把握：高" in queue


def test_a_heartbeat_silence_at_a_ledger_only_payments_minute_is_read_from_the_heartbeats(books, tariffs, site):
    kiosk = KioskFactory(site=site, serial="KS-QUIET")
    beats = [at(DAY, f"{h:02d}:{m:02d}") for h in range(9, 12) for m in range(60) if not (10 <= h < 11 and m < 20)]
    Heartbeat.objects.bulk_create([Heartbeat(kiosk=kiosk, received_at=b) for b in beats])
    books.journal(kiosk, [{"txn_id": "Q1", "time": "09:30"}, {"txn_id": "Q2", "time": "11:30"}])
    books.ledger(ref="ORD-Q1", kiosk=kiosk, payer="A-Q1", paid=at(DAY, "09:30"))
    books.ledger(ref="ORD-Q2", kiosk=kiosk, payer="A-Q2", paid=at(DAY, "11:30"))
    books.ledger(ref="ORD-SILENT", kiosk=kiosk, payer="A-S", paid=at(DAY, "10:05"))

    books.run(today=AFTER_WINDOW)

    item = ReconItem.objects.get(ledger_entry__channel_ref="ORD-SILENT")
    assert (item.probable_cause, item.causes[0]["confidence"]) == ("heartbeat_gap", "high")


# --- The demo ------------------------------------------------------------------------------------------


@pytest.fixture
def demo_days(db, site):
    fleet = [KioskFactory(site=site, serial=f"KS-D{n:02d}") for n in range(12)]
    seeded = demo.seed(days=3, kiosks=12, today=date(2026, 11, 21))
    return fleet, seeded


def test_the_demo_journals_run_on_one_counter_per_kiosk_across_days(demo_days):
    fleet, seeded = demo_days

    assert seeded == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
    for kiosk in fleet:
        days = sorted(set(JournalLine.objects.filter(kiosk=kiosk).values_list("business_date", flat=True)))
        for before, after in zip(days, days[1:], strict=False):
            last = JournalLine.objects.filter(kiosk=kiosk, business_date=before).order_by("-seq")[0].seq
            first = JournalLine.objects.filter(kiosk=kiosk, business_date=after).order_by("seq")[0].seq
            assert first == last + 1, f"{kiosk.serial} {after}: the counter runs on"
    assert not JournalGap.objects.exclude(first_missing=F("last_missing")).exists(), "only single lines are lost"


def test_each_line_the_demo_kiosks_lost_is_explained_by_its_own_gap(demo_days):
    fleet, _seeded = demo_days
    late = fleet[demo.LATE_KIOSK]
    lost = ReconItem.objects.filter(outcome="missing_in_journal").exclude(kiosk=late).select_related("ledger_entry")

    assert lost.exists()
    named = set()
    for item in lost:
        top = item.causes[0]
        assert (top["cause"], top["confidence"]) == ("journal_gap", "high"), item.causes
        gap = top["detail"]["first"]
        before = JournalLine.objects.get(kiosk=item.kiosk, seq=gap - 1)
        after = JournalLine.objects.get(kiosk=item.kiosk, seq=gap + 1)
        assert before.occurred_at < item.ledger_entry.paid_at < after.occurred_at
        named.add((item.kiosk_id, gap))
    assert len(named) == lost.count(), "no gap is named for two payments"


def test_the_demo_kiosk_that_has_not_uploaded_yesterday_says_so(demo_days):
    fleet, _seeded = demo_days
    late = fleet[demo.LATE_KIOSK]

    items = ReconItem.objects.filter(kiosk=late, business_date=date(2026, 11, 20), journal_line__isnull=True)

    # The demo's days are long past their deadlines here, so they are judged.
    assert items.exists() and {i.probable_cause for i in items} == {"journal_not_uploaded"}
    assert LedgerEntry.objects.filter(kiosk=late, business_date=date(2026, 11, 20)).exists()
