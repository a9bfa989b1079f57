"""Property-based: generate a day of journals and ledgers with planted discrepancies; the engine must find
exactly those, and nothing else."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation.matching import JRow, LRow, Rules, TariffTerm, reconcile_day

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)
TODAY = date(2026, 11, 30)
FEE = Decimal("20.00")
OLD_FEE = Decimal("25.00")
KINDS = [
    "matched",
    "missing_in_ledger",
    "missing_in_journal",
    "amount_mismatch",
    "fee_policy_mismatch",
    "duplicate_charge",
    "failed_but_settled",
    "payer_mismatch",
    "channel_not_accepted",
]


def tariff_at(service, day):
    if service == "HUKOU":
        return TariffTerm(FEE, frozenset({"card", "wechat"}), date(2020, 1, 1))
    return TariffTerm(FEE, frozenset({"card", "wechat", "alipay", "unionpay_qr"}), date(2026, 10, 1))


RULES = Rules(today=TODAY, tariff_at=tariff_at, settlement_deadline=lambda channel, day: day + timedelta(days=5))


def build(plan: list[tuple[str, int]]):
    """plan: (kind, kiosk number). Returns pairs, unpaired ledger, duplicate ids, and the expected outcomes."""
    pairs, unpaired, duplicates, expected = [], [], set(), []
    next_id = iter(range(1, 10_000))
    for n, (kind, kiosk) in enumerate(plan):
        moment = datetime(2026, 11, 18, 8, 0, tzinfo=SH) + timedelta(minutes=7 * n)
        serial = f"KS-{kiosk}"
        channel = "alipay" if kind == "channel_not_accepted" else "wechat"
        service = "HUKOU" if kind == "channel_not_accepted" else "ID_CARD"
        amount = OLD_FEE if kind == "fee_policy_mismatch" else FEE
        journal = JRow(
            next(next_id),
            kiosk,
            serial,
            n + 1,
            moment,
            amount,
            channel,
            f"R{n}",
            f"P{n}",
            service,
            "failed" if kind == "failed_but_settled" else "success",
        )
        ledger = LRow(
            next(next_id),
            channel,
            f"R{n}",
            moment,
            moment + timedelta(days=1),
            DAY,
            Decimal("200.00") if kind == "amount_mismatch" else amount,
            serial,
            f"P{n}X" if kind == "payer_mismatch" else f"P{n}",
            service,
        )
        if kind == "missing_in_ledger":
            pairs.append((journal, None))
        elif kind == "missing_in_journal":
            unpaired.append(ledger)
        elif kind == "duplicate_charge":
            duplicates.add(ledger.id)
            pairs.append((journal, ledger))
        else:
            pairs.append((journal, ledger))
        expected.append(kind)
    return pairs, unpaired, duplicates, expected


plans = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(min_value=1, max_value=50)), min_size=1, max_size=120)


@settings(max_examples=150, deadline=None)
@given(plans)
def test_the_engine_finds_exactly_the_planted_discrepancies(plan):
    pairs, unpaired, duplicates, expected = build(plan)

    result = reconcile_day(
        business_date=DAY, pairs=pairs, unpaired_ledger=unpaired, duplicate_ledger_ids=duplicates, rules=RULES
    )

    wanted = {kind: expected.count(kind) for kind in set(expected)}
    found = {k: v for k, v in result.outcomes.items() if v}
    assert found == wanted
    assert sorted(v.outcome for v in result.verdicts) == sorted(k for k in expected if k != "matched")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=40), st.data())
def test_fuzzy_matching_never_pairs_ambiguously(kiosks, data):
    """Lines whose order numbers the ledger got wrong: paired only when one candidate fits one line."""
    pairs, unpaired = [], []
    for n, kiosk in enumerate(kiosks):
        moment = datetime(2026, 11, 18, 9, 0, tzinfo=SH) + timedelta(minutes=data.draw(st.integers(0, 30)))
        pairs.append(
            (JRow(n, kiosk, f"KS-{kiosk}", n, moment, FEE, "wechat", f"J{n}", f"P{n}", "ID_CARD", "success"), None)
        )
        unpaired.append(
            LRow(
                1000 + n,
                "wechat",
                f"L{n}",
                moment,
                moment + timedelta(days=1),
                DAY,
                FEE,
                f"KS-{kiosk}",
                f"P{n}",
                "ID_CARD",
            )
        )

    result = reconcile_day(
        business_date=DAY, pairs=pairs, unpaired_ledger=unpaired, duplicate_ledger_ids=set(), rules=RULES
    )

    fuzzy = [v for v in result.verdicts if v.method == "fuzzy"]
    used = [v.ledger.id for v in fuzzy]
    assert len(used) == len(set(used)), "a ledger entry is never given to two lines"
    for verdict in fuzzy:
        same = [
            led
            for led in unpaired
            if led.kiosk_serial == verdict.journal.kiosk_serial
            and abs(led.paid_at - verdict.journal.occurred_at) <= timedelta(minutes=10)
            and led.payer_ref in ("", verdict.journal.payer_ref)
        ]
        assert same == [verdict.ledger], "a fuzzy pair is only made when it is the only candidate"
    proposed = [v for v in result.verdicts if v.outcome == "proposed_match"]
    assert all(len(v.candidates) >= 1 for v in proposed)
    assert result.outcomes["matched"] + result.outcomes["proposed_match"] <= len(kiosks)
