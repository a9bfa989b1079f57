"""People working the exception queue: every action is audited, bad actions are refused and change nothing."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from reconciliation import services
from reconciliation.models import LedgerEntry, ReconAction, ReconItem
from tests.factories import KioskFactory, UserFactory
from tests.reconciliation.conftest import at

AFTER_WINDOW = date(2026, 11, 25)


@pytest.fixture
def officer(region):
    return UserFactory(username="finance", role="finance_officer", regions="all")


@pytest.fixture
def supervisor(region):
    return UserFactory(username="boss", role="finance_supervisor", regions="all")


@pytest.fixture
def unmatched(books, tariffs, site):
    """A payment the ledger knows under a different order number that fuzzy matching cannot pair (two
    candidates), and a payment never settled."""
    kiosk = KioskFactory(site=site, serial="KS-R")
    books.journal(kiosk, [{"txn_id": "P1", "ref": "K-1", "time": "09:00"}, {"txn_id": "M1", "channel": "card"}])
    books.ledger(ref="K-1-typo", kiosk=kiosk, payer="A-P1", paid=at(books.day, "09:01"))
    books.ledger(ref="K-1-other", kiosk=kiosk, payer="", paid=at(books.day, "09:02"))
    books.run(today=AFTER_WINDOW)
    return books


def test_a_person_matches_a_proposed_pair_by_hand_and_later_runs_keep_it(unmatched, officer):
    item = ReconItem.objects.get(journal_line__txn_id="P1")
    assert item.outcome == "proposed_match"
    chosen = LedgerEntry.objects.get(channel_ref="K-1-typo")

    services.item_manual_match(item=item, ledger_entry=chosen, reason="金额时间一致，订单号录入错误", actor=officer)
    unmatched.run(today=AFTER_WINDOW)

    item.refresh_from_db()
    assert (item.outcome, item.state, item.resolution) == ("matched", "resolved", "manual_match")
    assert item.ledger_entry == chosen
    action = item.actions.get(action="manual_match")
    assert (action.actor, action.note) == (officer, "金额时间一致，订单号录入错误")
    # The other candidate is now simply missing from the journal.
    assert ReconItem.objects.get(ledger_entry__channel_ref="K-1-other", journal_line__isnull=True).outcome == (
        "missing_in_journal"
    )


def test_a_manual_match_needs_a_reason_and_changes_nothing_without_one(unmatched, officer):
    item = ReconItem.objects.get(journal_line__txn_id="P1")
    with pytest.raises(ValidationError) as error:
        services.item_manual_match(
            item=item, ledger_entry=LedgerEntry.objects.get(channel_ref="K-1-typo"), reason=" ", actor=officer
        )
    assert "reason" in error.value.message_dict
    item.refresh_from_db()
    assert item.outcome == "proposed_match" and not item.actions.exists()


def test_a_ledger_entry_that_belongs_to_another_payment_cannot_be_matched_again(unmatched, officer):
    p1 = ReconItem.objects.get(journal_line__txn_id="P1")
    m1 = ReconItem.objects.get(journal_line__txn_id="M1")
    entry = LedgerEntry.objects.get(channel_ref="K-1-typo")
    services.item_manual_match(item=p1, ledger_entry=entry, reason="checked", actor=officer)

    with pytest.raises(services.ResolutionError):
        services.item_manual_match(item=m1, ledger_entry=entry, reason="checked", actor=officer)


def test_refund_is_requested_then_recorded_with_the_audit_trail(unmatched, officer):
    item = ReconItem.objects.get(journal_line__txn_id="M1")

    services.item_request_refund(item=item, note="市民要求退款", actor=officer)
    services.item_mark_refunded(item=item, reference="RF20261125001", actor=officer)

    item.refresh_from_db()
    assert (item.state, item.resolution) == ("resolved", "refunded")
    assert list(item.actions.values_list("action", flat=True)) == ["refund_requested", "refunded"]


def test_a_refund_cannot_be_recorded_before_it_is_requested(unmatched, officer):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    with pytest.raises(services.ResolutionError):
        services.item_mark_refunded(item=item, reference="RF1", actor=officer)
    item.refresh_from_db()
    assert item.state == "open"


def test_a_write_off_needs_a_second_person_who_may_approve(unmatched, officer, supervisor):
    item = ReconItem.objects.get(journal_line__txn_id="M1")

    with pytest.raises(ValidationError) as self_approved:
        services.item_write_off(item=item, reason="金额小，无法追回", approver=officer, actor=officer)
    with pytest.raises(ValidationError) as not_allowed:
        services.item_write_off(
            item=item, reason="金额小", approver=UserFactory(username="peer", role="finance_officer"), actor=officer
        )
    assert "approver" in self_approved.value.message_dict and "approver" in not_allowed.value.message_dict

    services.item_write_off(item=item, reason="金额小，无法追回", approver=supervisor, actor=officer)
    item.refresh_from_db()
    assert (item.state, item.resolution) == ("resolved", "written_off")
    assert item.actions.get(action="written_off").data == {"approver": "boss"}


def test_contacting_the_citizen_is_recorded_without_closing_the_item(unmatched, officer):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_record_contact(item=item, note="已电话告知：银行结算预计3个工作日内完成", actor=officer)
    item.refresh_from_db()
    assert item.state == "open"
    assert ReconAction.objects.filter(item=item, action="citizen_contacted").count() == 1


def test_assignment_and_reopening_are_audited(unmatched, officer, supervisor):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_assign(item=item, assignee=officer, actor=supervisor)
    services.item_write_off(item=item, reason="小额", approver=supervisor, actor=officer)

    services.item_reopen(item=item, reason="市民提供了凭证", actor=supervisor)

    item.refresh_from_db()
    assert (item.state, item.assigned_to) == ("open", officer)
    assert list(item.actions.values_list("action", flat=True)) == ["assigned", "written_off", "reopened"]


def test_open_items_grow_more_severe_as_they_age(unmatched):
    item = ReconItem.objects.get(journal_line__txn_id="M1")  # 20 yuan, missing in the ledger, 5 working days old
    assert item.severity == "medium"

    services.items_rerate(today=date(2026, 12, 10))

    item.refresh_from_db()
    assert item.severity == "high", "past five working days an open discrepancy is urgent whatever its amount"
