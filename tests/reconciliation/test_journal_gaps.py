"""A kiosk numbers its payments; numbers missing from its journal are gaps (payments that may never have reached
the server). The database finds them as each file is added (services.journal_gaps_refresh) and keeps them for the
day, measured from the kiosk's last number of the days before."""

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciliation.models import JournalGap
from tests.factories import KioskFactory

DAY = date(2026, 11, 18)
DAY_BEFORE = date(2026, 11, 17)


def send(books, kiosk, seqs, *, day=DAY):
    """Upload a journal of the kiosk's day holding these numbers; returns the gaps its report names."""
    rows = [{"txn_id": f"T{day:%m%d}-{i}-{seq}", "seq": seq} for i, seq in enumerate(seqs)]
    return [(gap["from"], gap["to"]) for gap in books.journal(kiosk, rows, day=day).gaps]


def stored(kiosk, day=DAY):
    return sorted(
        JournalGap.objects.filter(kiosk=kiosk, business_date=day).values_list("first_missing", "last_missing")
    )


def test_each_run_of_missing_numbers_is_one_gap(books, kiosk):
    assert send(books, kiosk, [1, 2, 5, 6, 9]) == [(3, 4), (7, 8)]
    assert stored(kiosk) == [(3, 4), (7, 8)]


def test_the_run_since_the_previous_days_last_number_is_a_gap(books, kiosk):
    send(books, kiosk, [1000], day=DAY_BEFORE)

    assert send(books, kiosk, [1004, 1005]) == [(1001, 1003)]


def test_a_complete_or_repeated_sequence_has_no_gap(books, kiosk):
    send(books, kiosk, [2], day=DAY_BEFORE)

    assert send(books, kiosk, [3, 3, 4]) == []
    assert stored(kiosk) == []


def test_numbers_that_start_again_below_the_previous_days_open_no_gap(books, kiosk):
    send(books, kiosk, [10], day=DAY_BEFORE)

    assert send(books, kiosk, [5, 6]) == []


def test_a_day_that_arrives_late_gives_the_day_after_its_leading_gap(books, kiosk):
    assert send(books, kiosk, [5, 6]) == []

    send(books, kiosk, [1, 2], day=DAY_BEFORE)

    assert stored(kiosk) == [(3, 4)]
    assert stored(kiosk, DAY_BEFORE) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(present=st.sets(st.integers(min_value=1, max_value=300), min_size=1))
def test_the_gaps_and_the_numbers_present_cover_the_whole_range(books, site, present):
    kiosk = KioskFactory(site=site)

    gaps = send(books, kiosk, sorted(present))

    missing = {n for first, last in gaps for n in range(first, last + 1)}
    assert missing | present == set(range(min(present), max(present) + 1))
    assert not missing & present
    assert stored(kiosk) == gaps
