"""People working the exception queue: every action is audited, bad actions are refused and change nothing."""

import threading
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from reconciliation import services
from reconciliation.models import LedgerEntry, ReconAction, ReconItem, WriteOffRequest
from tests.factories import KioskFactory, RegionFactory, UserFactory
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


def test_a_write_off_is_only_requested_and_the_item_stays_open_until_someone_else_approves(
    unmatched, officer, supervisor
):
    item = ReconItem.objects.get(journal_line__txn_id="M1")

    request = services.item_write_off_request(item=item, reason="金额小，无法追回", actor=officer)
    item.refresh_from_db()
    assert (item.state, item.resolution, request.state) == ("open", "", "pending")

    services.item_write_off_approve(item=item, actor=supervisor)
    item.refresh_from_db()
    request.refresh_from_db()
    assert (item.state, item.resolution) == ("resolved", "written_off")
    assert (request.state, request.decided_by) == ("approved", supervisor)
    requested, approved = item.actions.all()
    assert (requested.action, requested.actor, requested.note) == ("writeoff_requested", officer, "金额小，无法追回")
    assert (approved.action, approved.actor) == ("written_off", supervisor)
    assert approved.data | {"request": None} == {"request": None, "requested_by": "finance", "approver": "boss"}


def test_nobody_can_approve_or_reject_their_own_write_off_request(unmatched, supervisor):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_write_off_request(item=item, reason="小额", actor=supervisor)

    with pytest.raises(services.NotAllowed):
        services.item_write_off_approve(item=item, actor=supervisor)
    with pytest.raises(services.NotAllowed):
        services.item_write_off_reject(item=item, actor=supervisor, note="算了")

    item.refresh_from_db()
    assert item.state == "open"
    assert list(item.actions.values_list("action", flat=True)) == ["writeoff_requested"]
    assert WriteOffRequest.objects.get(item=item).state == "pending"


def test_a_write_off_is_not_approved_by_someone_without_the_right_or_outside_the_items_region(
    unmatched, officer, region
):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_write_off_request(item=item, reason="小额", actor=officer)
    peer = UserFactory(username="peer", role="finance_officer", regions="all")
    elsewhere = UserFactory(
        username="far", role="finance_supervisor", regions=[RegionFactory(code="chongming", name="崇明区")]
    )

    for person in (peer, elsewhere):
        with pytest.raises(services.NotAllowed):
            services.item_write_off_approve(item=item, actor=person)

    item.refresh_from_db()
    assert item.state == "open" and WriteOffRequest.objects.get(item=item).state == "pending"


def test_a_rejected_write_off_leaves_the_item_open_with_the_reason_on_the_trail(unmatched, officer, supervisor):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_write_off_request(item=item, reason="小额", actor=officer)

    with pytest.raises(ValidationError) as no_reason:
        services.item_write_off_reject(item=item, actor=supervisor, note=" ")
    assert "note" in no_reason.value.message_dict
    services.item_write_off_reject(item=item, actor=supervisor, note="请先联系市民核实")

    item.refresh_from_db()
    assert item.state == "open"
    assert WriteOffRequest.objects.get(item=item).state == "rejected"
    rejected = item.actions.get(action="writeoff_rejected")
    assert (rejected.actor, rejected.note) == (supervisor, "请先联系市民核实")
    # A new request may follow the rejected one.
    services.item_write_off_request(item=item, reason="已核实，无法追回", actor=officer)


def test_the_requester_may_withdraw_a_write_off_but_nobody_else(unmatched, officer, supervisor):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_write_off_request(item=item, reason="小额", actor=officer)

    with pytest.raises(services.NotAllowed):
        services.item_write_off_withdraw(item=item, actor=supervisor)
    services.item_write_off_withdraw(item=item, actor=officer)

    assert WriteOffRequest.objects.get(item=item).state == "withdrawn"
    with pytest.raises(services.ResolutionError):
        services.item_write_off_approve(item=item, actor=supervisor)
    item.refresh_from_db()
    assert item.state == "open"
    assert list(item.actions.values_list("action", flat=True)) == ["writeoff_requested", "writeoff_withdrawn"]


def test_only_one_write_off_of_an_item_awaits_approval_at_a_time(unmatched, officer, supervisor):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_write_off_request(item=item, reason="小额", actor=officer)
    with pytest.raises(services.ResolutionError):
        services.item_write_off_request(item=item, reason="小额", actor=supervisor)
    assert WriteOffRequest.objects.filter(item=item).count() == 1


def test_the_database_refuses_a_write_off_decided_by_its_own_requester(unmatched, officer):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    request = services.item_write_off_request(item=item, reason="小额", actor=officer)

    with pytest.raises(IntegrityError), transaction.atomic():
        WriteOffRequest.objects.filter(pk=request.pk).update(
            state="approved", decided_by=officer, decided_at=timezone.now()
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        WriteOffRequest.objects.create(item=item, reason="再来一次", requested_by=officer)


def test_contacting_the_citizen_is_recorded_without_closing_the_item(unmatched, officer):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_record_contact(item=item, note="已电话告知：银行结算预计3个工作日内完成", actor=officer)
    item.refresh_from_db()
    assert item.state == "open"
    assert ReconAction.objects.filter(item=item, action="citizen_contacted").count() == 1


def test_assignment_and_reopening_are_audited(unmatched, officer, supervisor):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_assign(item=item, assignee=officer, actor=supervisor)
    services.item_write_off_request(item=item, reason="小额", actor=officer)
    services.item_write_off_approve(item=item, actor=supervisor)

    services.item_reopen(item=item, reason="市民提供了凭证", actor=supervisor)

    item.refresh_from_db()
    assert (item.state, item.assigned_to) == ("open", officer)
    assert list(item.actions.values_list("action", flat=True)) == [
        "assigned",
        "writeoff_requested",
        "written_off",
        "reopened",
    ]


def test_open_items_grow_more_severe_as_they_age(unmatched):
    item = ReconItem.objects.get(journal_line__txn_id="M1")  # 20 yuan, missing in the ledger, 5 working days old
    assert item.severity == "medium"

    services.items_rerate(today=date(2026, 12, 10))

    item.refresh_from_db()
    assert item.severity == "high", "past five working days an open discrepancy is urgent whatever its amount"


@pytest.mark.django_db(transaction=True)
def test_two_supervisors_approving_at_once_write_the_item_off_exactly_once(unmatched, officer, supervisor):
    other = UserFactory(username="boss2", role="finance_supervisor", regions="all")
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_write_off_request(item=item, reason="小额", actor=officer)
    barrier = threading.Barrier(2)
    done, refused = [], []

    def approve(person):
        try:
            barrier.wait()
            services.item_write_off_approve(item=item, actor=person)
            done.append(person)
        except services.ResolutionError:
            refused.append(person)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(p,)) for p in (supervisor, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert (len(done), len(refused)) == (1, 1)
    assert item.actions.filter(action="written_off").count() == 1
    assert WriteOffRequest.objects.get(item=item).decided_by == done[0]


def test_a_write_off_left_pending_when_the_item_was_closed_otherwise_does_not_come_back_on_reopening(
    unmatched, officer, supervisor
):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    services.item_request_refund(item=item, note="市民要求退款", actor=officer)
    services.item_write_off_request(item=item, reason="小额", actor=officer)
    services.item_mark_refunded(item=item, reference="RF1", actor=supervisor)

    services.item_reopen(item=item, reason="退款被银行退回", actor=supervisor)

    with pytest.raises(services.ResolutionError):
        services.item_write_off_approve(item=item, actor=supervisor)
    assert WriteOffRequest.objects.get(item=item).state == "withdrawn"
    services.item_write_off_request(item=item, reason="无法退款，小额核销", actor=officer)
    services.item_write_off_approve(item=item, actor=supervisor)
    item.refresh_from_db()
    assert item.resolution == "written_off"


def test_the_database_refuses_an_audit_entry_of_an_unknown_kind(unmatched):
    from django.db import IntegrityError, transaction

    from reconciliation.models import ReconAction, ReconItem

    item = ReconItem.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        ReconAction.objects.create(item=item, action="deleted_quietly")
    assert not item.actions.filter(action="deleted_quietly").exists()
