"""The reconciliation console as its users meet it: who sees what, what each form does with good and bad input,
the report and its downloads, the counter's lookup, the imports, and the queue's fixed cost per page."""

import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from reconciliation.calendar import BusinessCalendar
from reconciliation.models import JournalLine, LedgerEntry, LedgerFile, ReconAction, ReconciliationRun, ReconItem
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.reconciliation.conftest import at

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
AFTER_WINDOW = date(2026, 11, 25)  # the 18th's settlement window (3 working days) closed on the 23rd


@pytest.fixture
def world(books, tariffs, region, site):
    """A day at a kiosk of the `region` fixture with one of several discrepancies, and one at another region."""
    other = SiteFactory(region=RegionFactory(code="xuhui", name="徐汇区"), code="xh-01", name="徐汇区行政服务中心")
    mine = KioskFactory(site=site, serial="KS-MINE")
    theirs = KioskFactory(site=other, serial="KS-THEIRS")
    books.journal(
        mine,
        [
            {"txn_id": "M1", "channel": "card", "payer": "A2026111800001"},  # never settled
            {"txn_id": "M2"},  # settled as 200.00
            {"txn_id": "M3"},  # settled as paid
            {"txn_id": "P1", "ref": "K-1", "time": "09:00"},  # the ledger has two entries that fit
            {"txn_id": "C1", "channel": "cash"},
        ],
    )
    books.journal(theirs, [{"txn_id": "T1", "channel": "card"}])
    books.ledger(ref="ORD-M2", kiosk=mine, payer="A-M2", amount="200.00")
    books.ledger(ref="ORD-M3", kiosk=mine, payer="A-M3")
    books.ledger(ref="K-1-typo", kiosk=mine, payer="A-P1", paid=at(books.day, "09:01"))
    books.ledger(ref="K-1-other", kiosk=mine, payer="", paid=at(books.day, "09:02"))
    books.run(today=AFTER_WINDOW)
    return books


@pytest.fixture
def officer(region):
    return UserFactory(username="fin", first_name="李娜", role="finance_officer", regions=[region])


@pytest.fixture
def supervisor(region):
    return UserFactory(username="sup", first_name="张伟", role="finance_supervisor", regions="all")


@pytest.fixture
def clerk(region):
    return UserFactory(username="counter", role="counter_staff", regions=[region])


@pytest.fixture
def officer_client(client, officer):
    client.force_login(officer)
    return client


def item(txn_id: str) -> ReconItem:
    return ReconItem.objects.get(journal_line__txn_id=txn_id)


def page_of(response) -> str:
    return response.content.decode()


# --- Access and scoping ---------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse("reconciliation:queue"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_finance_officer_sees_the_open_discrepancies_of_their_regions_only(officer_client, world):
    page = page_of(officer_client.get(reverse("reconciliation:queue")))

    assert "KS-MINE" in page and "KS-THEIRS" not in page
    rows = {
        i.journal_line.txn_id: i for i in ReconItem.objects.filter(kiosk__serial="KS-MINE", journal_line__isnull=False)
    }
    assert f'id="item-{rows["M1"].uid}"' in page and f'id="item-{rows["M2"].uid}"' in page
    assert "金额不符" in page and "已缴费未对账" in page  # outcomes in the DOMAIN.md words


def test_an_item_of_another_region_is_not_found(officer_client, world):
    theirs = item("T1")

    assert officer_client.get(reverse("reconciliation:item", args=[theirs.uid])).status_code == 404
    assert (
        officer_client.post(reverse("reconciliation:item-contact", args=[theirs.uid]), {"note": "x"}).status_code == 404
    )
    assert not theirs.actions.exists()


def test_counter_staff_may_look_up_payments_but_not_open_the_queue(client, clerk, world):
    client.force_login(clerk)

    assert client.get(reverse("reconciliation:lookup")).status_code == 200
    assert client.get(reverse("reconciliation:queue")).status_code == 403
    assert client.get(reverse("reconciliation:item", args=[item("M1").uid])).status_code == 403
    assert client.get(reverse("reconciliation:report")).status_code == 403
    assert client.get(reverse("reconciliation:imports")).status_code == 403
    nav = page_of(client.get(reverse("reconciliation:lookup")))
    assert "缴费查询" in nav and reverse("reconciliation:queue") + '"' not in nav


def test_a_user_who_may_only_read_sees_no_action_forms_and_is_refused_them(client, world, region):
    reader = UserFactory(username="auditor", regions=[region])
    reader.user_permissions.add(Permission.objects.get(codename="view_reconitem"))
    client.force_login(reader)
    m1 = item("M1")

    page = page_of(client.get(reverse("reconciliation:item", args=[m1.uid])))
    response = client.post(reverse("reconciliation:item-write-off", args=[m1.uid]), {"reason": "x"})

    assert 'id="write-off-form"' not in page and 'id="assign-form"' not in page and 'id="contact-form"' not in page
    assert response.status_code == 403
    assert m1.actions.count() == 0


# --- The queue ------------------------------------------------------------------------------------------


def test_the_queue_shows_age_in_working_days_severity_amount_and_the_probable_cause(officer_client, world):
    m2 = item("M2")
    page = page_of(officer_client.get(reverse("reconciliation:queue"), {"outcome": "amount_mismatch"}))

    age = BusinessCalendar().working_days_between(date(2026, 11, 18), timezone.localdate())
    assert f'data-age="{age}"' in page and f"{age} 个工作日" in page
    assert f"badge--sev-{m2.severity}" in page
    assert "20.00" in page
    assert "金额可能录入有误" in page and "200.00" in page  # the probable cause, in a sentence


def test_the_queue_filters_by_outcome_kiosk_amount_and_state(client, world, supervisor):
    client.force_login(supervisor)

    def listed(**query) -> set[str]:
        page = page_of(client.get(reverse("reconciliation:queue"), query))
        return {i.journal_line.txn_id for i in ReconItem.objects.exclude(journal_line=None) if f"item-{i.uid}" in page}

    assert listed() == {"M1", "M2", "P1", "T1"}
    assert listed(outcome="missing_in_ledger") == {"M1", "T1"}
    assert listed(kiosk="KS-THEIRS") == {"T1"}
    assert listed(site="xh-01", channel="card") == {"T1"}
    assert listed(amount_min="100") == set()
    assert listed(date_from="2026-11-19") == set()
    assert listed(severity="high") == {i.journal_line.txn_id for i in ReconItem.objects.filter(severity="high")}
    ReconItem.objects.filter(journal_line__txn_id="M1").update(state="resolved")
    assert "M1" not in listed() and "M1" in listed(state="resolved") and "M1" in listed(state="any")


def test_an_item_closes_itself_when_the_late_settlement_arrives_and_leaves_the_queue(officer_client, world):
    m1 = item("M1")
    world.ledger(ref="ORD-M1", kiosk=m1.kiosk, channel="card", payer="A2026111800001")
    world.run(today=AFTER_WINDOW)

    queue = page_of(officer_client.get(reverse("reconciliation:queue")))
    closed = page_of(officer_client.get(reverse("reconciliation:queue"), {"state": "auto_closed", "outcome": "any"}))
    page = page_of(officer_client.get(reverse("reconciliation:item", args=[m1.uid])))

    assert f"item-{m1.uid}" not in queue and f"item-{m1.uid}" in closed
    assert "已由后续对账关闭" in page and 'data-action="auto_closed"' in page and "迟到的记录已对上。" in page
    assert "已缴费未对账 → 已对账" in page


def test_assigned_to_me_lists_only_my_items(officer_client, officer, world):
    from reconciliation import services

    services.item_assign(item=item("M2"), assignee=officer, actor=officer)

    page = page_of(officer_client.get(reverse("reconciliation:queue"), {"mine": "on"}))

    assert f"item-{item('M2').uid}" in page and f"item-{item('M1').uid}" not in page
    assert "李娜" in page


def test_an_unknown_filter_value_is_shown_as_an_error_and_ignored(officer_client, world):
    response = officer_client.get(reverse("reconciliation:queue"), {"outcome": "lost", "amount_min": "abc"})

    page = page_of(response)
    assert response.status_code == 200
    assert page.count('class="field__errors"') == 2
    assert f"item-{item('M1').uid}" in page  # the rest of the queue is still there


def test_the_queue_runs_the_same_number_of_queries_for_5_and_40_items(
    client, supervisor, books, tariffs, site, django_assert_num_queries
):
    kiosk = KioskFactory(site=site, serial="KS-Q")
    client.force_login(supervisor)

    def fill(n):
        have = ReconItem.objects.count()
        books.journal(kiosk, [{"txn_id": f"Q{i}", "channel": "card"} for i in range(have, n)])
        books.run(today=AFTER_WINDOW)
        ReconItem.objects.filter(id__in=ReconItem.objects.order_by("id")[:3].values("id")).update(
            assigned_to=supervisor
        )

    fill(5)
    with CaptureQueriesContext(connection) as five:
        assert client.get(reverse("reconciliation:queue")).status_code == 200
    fill(40)
    with django_assert_num_queries(len(five.captured_queries)):
        response = client.get(reverse("reconciliation:queue"))
    assert page_of(response).count('class="qrow ') == 40


def test_the_live_update_sends_counts_and_list_out_of_band_with_the_pages_filters(officer_client, world):
    page = page_of(officer_client.get(reverse("reconciliation:queue-list"), {"outcome": "amount_mismatch"}))

    assert 'id="queue-list" class="card card--flush" hx-swap-oob="true"' in page
    assert 'id="queue-counts" class="counts" hx-swap-oob="true"' in page
    assert f"item-{item('M2').uid}" in page and f"item-{item('M1').uid}" not in page
    assert "<html" not in page


def test_the_queue_page_listens_on_the_reconciliation_socket(officer_client, world):
    page = page_of(officer_client.get(reverse("reconciliation:queue")))

    assert f'data-recon-live-url="{reverse("reconciliation:queue-list")}"' in page
    assert "console/reconciliation.js" in page and 'id="live-indicator"' in page


# --- An item --------------------------------------------------------------------------------------------


def test_the_item_page_shows_both_sides_its_causes_and_nothing_of_other_pages(officer_client, world):
    m2 = item("M2")
    page = page_of(officer_client.get(reverse("reconciliation:item", args=[m2.uid])))

    assert 'id="journal-side"' in page and "M2" in page and "ORD-M2" in page
    assert 'id="ledger-side"' in page and "200.00" in page
    assert '<dd class="mono diff">¥200.00</dd>' in page  # the differing amount stands out
    assert "金额可能录入有误" in page
    assert "2026-11-18 10:00:00" in page  # the kiosk's time, in Beijing time


def test_a_payment_missing_in_the_ledger_says_so_on_the_ledger_side(officer_client, world):
    page = page_of(officer_client.get(reverse("reconciliation:item", args=[item("M1").uid])))

    assert "尚无该笔缴费的结算记录" in page
    assert "A2026111800001" in page


def test_a_write_off_is_requested_by_one_person_and_approved_by_another_both_on_the_trail(
    client, officer, supervisor, world
):
    client.force_login(officer)
    m1 = item("M1")

    no_reason = client.post(reverse("reconciliation:item-write-off", args=[m1.uid]), {"reason": ""})
    assert no_reason.status_code == 400
    assert 'id="id_writeoff_reason_errors"' in page_of(no_reason) and "请说明原因" in page_of(no_reason)
    assert not m1.writeoff_requests.exists()

    requested = client.post(
        reverse("reconciliation:item-write-off", args=[m1.uid]), {"reason": "小额差异，核实无误"}, follow=True
    )
    m1.refresh_from_db()
    assert m1.state == "open"
    page = page_of(requested)
    assert 'id="writeoff-pending"' in page and "待审批" in page
    assert 'id="write-off-approve-form"' not in page and 'id="write-off-withdraw-form"' in page
    # The requester's own approval is refused even when posted by hand.
    own = client.post(reverse("reconciliation:item-write-off-approve", args=[m1.uid]), {"note": ""})
    assert own.status_code == 403
    m1.refresh_from_db()
    assert m1.state == "open"

    client.force_login(supervisor)
    page = page_of(client.get(reverse("reconciliation:item", args=[m1.uid])))
    assert 'id="write-off-approve-form"' in page and 'id="write-off-reject-form"' in page
    done = client.post(reverse("reconciliation:item-write-off-approve", args=[m1.uid]), {"note": ""}, follow=True)

    m1.refresh_from_db()
    assert (m1.state, m1.resolution) == ("resolved", "written_off")
    requested_row, approved_row = m1.actions.all()
    assert (requested_row.action, requested_row.actor, requested_row.note) == (
        "writeoff_requested",
        officer,
        "小额差异，核实无误",
    )
    assert (approved_row.action, approved_row.actor) == ("written_off", supervisor)
    trail = page_of(done).split('id="audit-trail"', 1)[1]
    assert "已申请核销" in trail and "已核销" in trail and "申请人 李娜，审批人 张伟" in trail


def test_a_supervisor_cannot_approve_their_own_write_off_in_the_console(client, supervisor, world):
    client.force_login(supervisor)
    m1 = item("M1")
    client.post(reverse("reconciliation:item-write-off", args=[m1.uid]), {"reason": "小额"})

    page = page_of(client.get(reverse("reconciliation:item", args=[m1.uid])))
    approve = client.post(reverse("reconciliation:item-write-off-approve", args=[m1.uid]), {"note": ""})
    reject = client.post(reverse("reconciliation:item-write-off-reject", args=[m1.uid]), {"note": "不批"})

    assert 'id="write-off-approve-form"' not in page
    assert (approve.status_code, reject.status_code) == (403, 403)
    assert "不能审批自己" in page_of(approve)
    m1.refresh_from_db()
    assert m1.state == "open" and m1.writeoff_requests.get().state == "pending"


def test_a_finance_officer_may_not_approve_or_reject_a_write_off(client, officer, supervisor, world):
    client.force_login(supervisor)
    m1 = item("M1")
    client.post(reverse("reconciliation:item-write-off", args=[m1.uid]), {"reason": "小额"})
    client.force_login(officer)

    page = page_of(client.get(reverse("reconciliation:item", args=[m1.uid])))
    approve = client.post(reverse("reconciliation:item-write-off-approve", args=[m1.uid]), {"note": ""})

    assert 'id="write-off-approve-form"' not in page and "等待有审批权限的人员处理" in page
    assert approve.status_code == 403
    m1.refresh_from_db()
    assert m1.state == "open"


def test_a_rejected_write_off_leaves_the_item_open_and_the_queue_lists_pending_ones(client, officer, supervisor, world):
    client.force_login(officer)
    m1, m2 = item("M1"), item("M2")
    client.post(reverse("reconciliation:item-write-off", args=[m1.uid]), {"reason": "小额"})
    client.post(reverse("reconciliation:item-write-off", args=[m2.uid]), {"reason": "银行已更正"})
    client.force_login(supervisor)

    queue = page_of(client.get(reverse("reconciliation:queue")))
    awaiting = page_of(client.get(reverse("reconciliation:queue") + "?awaiting=on&state=open&outcome=any"))
    assert 'id="writeoffs-awaiting"' in queue and "2 笔核销待您审批" in queue
    assert f'id="item-{m1.uid}"' in awaiting and f'id="item-{m2.uid}"' in awaiting
    assert f'id="item-{item("P1").uid}"' not in awaiting

    no_reason = client.post(reverse("reconciliation:item-write-off-reject", args=[m1.uid]), {"note": ""})
    assert no_reason.status_code == 400 and 'id="id_writeoff_reject_note_errors"' in page_of(no_reason)
    client.post(reverse("reconciliation:item-write-off-reject", args=[m1.uid]), {"note": "请先联系市民核实"})

    m1.refresh_from_db()
    assert m1.state == "open" and m1.writeoff_requests.get().state == "rejected"
    awaiting = page_of(client.get(reverse("reconciliation:queue") + "?awaiting=on&state=open&outcome=any"))
    assert f'id="item-{m1.uid}"' not in awaiting and f'id="item-{m2.uid}"' in awaiting


BAD_INPUT = [
    ("item-request-refund", "M1", {"note": ""}, "id_refund_note_errors", "请说明原因"),
    ("item-refunded", "M1", {"reference": "RF-1"}, "action-error", "请先申请退款"),
    (
        "item-match",
        "M1",
        {"channel": "card", "channel_ref": "NOPE", "reason": "已核对"},
        "id_match_channel_ref_errors",
        "没有该渠道和订单号的账务记录",
    ),
    (
        "item-match",
        "M1",
        {"channel": "wechat", "channel_ref": "ORD-M2", "reason": ""},
        "id_match_reason_errors",
        "请说明原因",
    ),
    (
        "item-match",
        "M1",
        {"channel": "wechat", "channel_ref": "ORD-M2", "reason": "核对"},
        "action-error",
        "已属于另一笔缴费",
    ),
    ("item-contact", "M1", {"note": "   "}, "id_contact_note_errors", "请说明原因"),
    ("item-reopen", "M1", {"reason": "再核对"}, "action-error", "已处于待处理状态"),
    ("item-assign", "M1", {"assignee": "nobody-such"}, "id_assign_assignee_errors", "选择一个有效的选项"),
]


@pytest.mark.parametrize(("action", "txn_id", "data", "where", "message"), BAD_INPUT)
def test_bad_input_shows_the_error_next_to_its_field_and_changes_nothing(
    officer_client, world, action, txn_id, data, where, message
):
    before = item(txn_id)

    response = officer_client.post(reverse(f"reconciliation:{action}", args=[before.uid]), data)

    page = page_of(response)
    assert response.status_code == (409 if where == "action-error" else 400)
    assert where in page and message in page
    after = item(txn_id)
    assert (after.state, after.resolution, after.ledger_entry_id, after.assigned_to_id, after.outcome) == (
        before.state,
        before.resolution,
        before.ledger_entry_id,
        before.assigned_to_id,
        before.outcome,
    )
    assert not ReconAction.objects.filter(item=after).exists()


def test_a_proposed_match_is_matched_to_one_of_its_candidates_with_a_reason(officer_client, officer, world):
    p1 = item("P1")
    assert p1.outcome == "proposed_match"
    chosen = LedgerEntry.objects.get(channel_ref="K-1-typo")
    url = reverse("reconciliation:item-match-candidate", args=[p1.uid])
    page = page_of(officer_client.get(reverse("reconciliation:item", args=[p1.uid])))
    assert 'data-candidate="K-1-typo"' in page and 'data-candidate="K-1-other"' in page

    refused = officer_client.post(url, {"ledger_entry": chosen.pk, "reason": ""})
    stranger = officer_client.post(
        url, {"ledger_entry": LedgerEntry.objects.get(channel_ref="ORD-M3").pk, "reason": "x"}
    )
    assert refused.status_code == 400 and f'id="id_cand{chosen.pk}_reason_errors"' in page_of(refused)
    assert stranger.status_code == 409 and "不是该事项的候选记录" in page_of(stranger)

    response = officer_client.post(url, {"ledger_entry": chosen.pk, "reason": "金额时间一致，订单号录入错误"})

    assert response.status_code == 302
    p1.refresh_from_db()
    assert (p1.outcome, p1.state, p1.resolution, p1.ledger_entry) == ("matched", "resolved", "manual_match", chosen)
    assert p1.actions.get().note == "金额时间一致，订单号录入错误"


def test_a_refund_is_requested_and_then_recorded_closing_the_item(officer_client, world):
    m1 = item("M1")

    officer_client.post(reverse("reconciliation:item-request-refund", args=[m1.uid]), {"note": "市民要求退款"})
    page = page_of(officer_client.get(reverse("reconciliation:item", args=[m1.uid])))
    assert 'id="refunded-form"' in page and 'id="refund-form"' not in page
    officer_client.post(reverse("reconciliation:item-refunded", args=[m1.uid]), {"reference": "RF-20261125-01"})

    m1.refresh_from_db()
    assert (m1.state, m1.resolution) == ("resolved", "refunded")
    assert list(m1.actions.values_list("action", "note")) == [
        ("refund_requested", "市民要求退款"),
        ("refunded", "RF-20261125-01"),
    ]


def test_an_item_is_assigned_contacted_and_reopened_with_each_step_in_the_trail(client, officer, supervisor, world):
    client.force_login(officer)
    m2 = item("M2")

    client.post(reverse("reconciliation:item-assign", args=[m2.uid]), {"assignee": "sup"})
    client.post(reverse("reconciliation:item-contact", args=[m2.uid]), {"note": "电话告知市民正在核查"})
    client.post(reverse("reconciliation:item-write-off", args=[m2.uid]), {"reason": "银行已更正"})
    client.force_login(supervisor)
    client.post(reverse("reconciliation:item-write-off-approve", args=[m2.uid]), {"note": ""})
    client.post(reverse("reconciliation:item-reopen", args=[m2.uid]), {"reason": "银行撤回更正"})

    m2.refresh_from_db()
    assert (m2.state, m2.assigned_to) == ("open", supervisor)
    page = page_of(client.get(reverse("reconciliation:item", args=[m2.uid])))
    trail = page.split('id="audit-trail"', 1)[1]
    assert [a for a in ("已分派", "已联系市民", "已核销", "已重新打开") if a in trail] == [
        "已分派",
        "已联系市民",
        "已核销",
        "已重新打开",
    ]
    assert "电话告知市民正在核查" in trail and "银行撤回更正" in trail


# --- The daily report -----------------------------------------------------------------------------------


def test_the_report_opens_on_yesterday(officer_client):
    response = officer_client.get(reverse("reconciliation:report"))

    yesterday = timezone.localdate() - timedelta(days=1)
    assert response.status_code == 200
    assert yesterday.isoformat() in page_of(response)


def test_the_report_shows_match_rate_outcomes_channels_kiosks_and_cash_of_the_users_regions(officer_client, world):
    page = page_of(officer_client.get(reverse("reconciliation:report-day", args=["2026-11-18"])))

    # Of KS-MINE's four non-cash payments one matched (M3); the other region's T1 does not count here.
    assert '<b class="stat__value" id="match-rate">25.00%</b>' in page
    assert '<tr data-outcome="missing_in_ledger" class="">' in page
    assert 'data-kiosk="KS-MINE"' in page and 'data-kiosk="KS-THEIRS"' not in page
    assert 'data-channel="card"' in page
    assert 'id="cash"' in page and "¥20.00" in page.split('id="cash"', 1)[1].split("</div>", 1)[0]
    assert "<svg" in page and "<script" not in page.split('id="rate-chart"', 1)[1].split("</section>", 1)[0]


def test_a_city_wide_user_sees_the_runs_own_figures(client, supervisor, world):
    client.force_login(supervisor)

    page = page_of(client.get(reverse("reconciliation:report-day", args=["2026-11-18"])))

    run = ReconciliationRun.objects.filter(business_date=date(2026, 11, 18)).latest("started_at")
    assert run.outcomes["missing_in_ledger"] == 2
    assert 'data-kiosk="KS-THEIRS"' in page
    assert (
        '<tr data-outcome="missing_in_ledger" class="">\n            <td><span class="badge badge--outcome-problem">已缴费未对账</span></td>\n            <td class="num">2</td>'
        in page
    )


def test_the_report_downloads_as_csv_and_xlsx_with_the_users_regions_only(officer_client, world):
    csv_response = officer_client.get(reverse("reconciliation:report-csv", args=["2026-11-18"]))
    xlsx_response = officer_client.get(reverse("reconciliation:report-xlsx", args=["2026-11-18"]))

    text = csv_response.content.decode("utf-8-sig")
    assert csv_response["Content-Disposition"] == 'attachment; filename="reconciliation-2026-11-18.csv"'
    assert "KS-MINE" in text and "KS-THEIRS" not in text
    assert "已缴费未对账,1," in text
    workbook = load_workbook(io.BytesIO(xlsx_response.content))
    assert workbook.sheetnames == ["概况", "按对账结果", "按缴费渠道", "按终端"]
    kiosks = [row[0] for row in workbook["按终端"].iter_rows(min_row=2, values_only=True)]
    assert kiosks == ["KS-MINE"]


def test_run_again_queues_a_run_of_the_day_for_people_allowed_to(client, officer, clerk, world, monkeypatch):
    from reconciliation import tasks

    queued = []
    monkeypatch.setattr(tasks.reconcile_date, "delay", lambda *args, **kwargs: queued.append((args, kwargs)))
    client.force_login(officer)

    response = client.post(reverse("reconciliation:report-rerun", args=["2026-11-18"]), follow=True)

    assert queued == [(("2026-11-18",), {"trigger": "console:fin"})]
    assert "已排队" in page_of(response)
    client.force_login(clerk)
    assert client.post(reverse("reconciliation:report-rerun", args=["2026-11-18"])).status_code == 403


def test_the_report_warns_when_the_holiday_data_does_not_cover_a_year_in_play(officer_client, world):
    run = ReconciliationRun.objects.filter(business_date=date(2026, 11, 18)).latest("started_at")
    run.summary["unknown_calendar_years"] = [2099]
    run.save()

    page = page_of(officer_client.get(reverse("reconciliation:report-day", args=["2026-11-18"])))

    banner = page.split('id="calendar-warning"', 1)[1].split("</div>", 1)[0]
    assert "节假日数据未包含" in banner and "2099" in banner
    assert "按周一至周五计算工作日，请在后台补充调休日期" in banner


def test_a_report_date_that_is_not_a_date_is_not_found(officer_client):
    assert officer_client.get(reverse("reconciliation:report-day", args=["yesterday"])).status_code == 404


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "later"])
def test_a_report_of_a_day_outside_the_accepted_window_is_not_found_nor_run(officer_client, day, monkeypatch):
    from reconciliation import tasks

    queued = []
    monkeypatch.setattr(tasks.reconcile_date, "delay", lambda *args, **kwargs: queued.append(args))
    if day == "later":
        day = (timezone.localdate() + timedelta(days=367)).isoformat()

    for name in ("reconciliation:report-day", "reconciliation:report-csv", "reconciliation:report-xlsx"):
        assert officer_client.get(reverse(name, args=[day])).status_code == 404
    assert officer_client.post(reverse("reconciliation:report-rerun", args=[day])).status_code == 404
    assert queued == []
    assert not ReconciliationRun.objects.exists()


def test_a_date_outside_the_window_typed_in_the_date_box_is_refused_in_chinese(officer_client):
    response = officer_client.get(reverse("reconciliation:report"), {"date": "0001-01-01"})

    page = page_of(response)
    assert response.status_code == 200
    assert "日期必须在 2000-01-01 与" in page
    assert (timezone.localdate() - timedelta(days=1)).isoformat() in page  # yesterday's report stays


def test_the_report_of_the_windows_first_day_has_no_link_to_the_day_before(officer_client):
    response = officer_client.get(reverse("reconciliation:report-day", args=["2000-01-01"]))

    assert response.status_code == 200
    assert 'id="previous-day"' not in page_of(response)
    assert 'id="previous-day"' in page_of(officer_client.get(reverse("reconciliation:report-day", args=["2000-01-02"])))


# --- The lookup at the counter --------------------------------------------------------------------------


@pytest.fixture
def clerk_client(client, clerk):
    client.force_login(clerk)
    return client


def test_the_lookup_explains_a_payment_in_chinese_with_the_expected_settlement_date(clerk_client, world):
    page = page_of(clerk_client.post(reverse("reconciliation:lookup"), {"q": "A2026111800001"}))

    assert "找到 1 笔缴费" in page
    assert 'data-outcome="missing_in_ledger"' in page
    assert 'data-deadline="2026-11-23"' in page and "结算应于" in page  # overdue: it was due, not expected
    assert "KS-MINE" in page and "M1" in page  # the journal line
    assert "2026-11-23" in page and "缴费凭证" in page  # the plain-language sentences


def test_the_lookup_answers_links_with_the_query_in_the_address_too(clerk_client, world):
    page = page_of(clerk_client.get(reverse("reconciliation:lookup"), {"q": "ORD-M2"}))

    assert 'data-outcome="amount_mismatch"' in page and "200.00" in page


def test_an_id_number_is_found_but_shown_masked_and_never_written_back(clerk_client, books, tariffs, site):
    kiosk = KioskFactory(site=site, serial="KS-ID")
    books.journal(kiosk, [{"txn_id": "I1", "ref": "ORD-I1", "payer": "310101199001011234"}])
    books.ledger(ref="ORD-I1", kiosk=kiosk, payer="310101199001011234")
    books.run(today=AFTER_WINDOW)

    response = clerk_client.post(reverse("reconciliation:lookup"), {"q": "310101199001011234"})

    page = page_of(response)
    assert "310***********1234" in page and 'data-outcome="matched"' in page
    assert "310101199001011234" not in page
    assert response["Cache-Control"] == "no-store"


def test_the_lookup_shows_nothing_of_other_regions_and_says_the_payment_is_theirs(clerk_client, world):
    page = page_of(clerk_client.get(reverse("reconciliation:lookup"), {"q": "ORD-T1"}))

    assert "KS-THEIRS" not in page and "T1" not in page.split('id="results"')[1]
    assert "该缴费属于您无权查看的辖区" in page and "未找到缴费记录" not in page


def test_an_empty_lookup_says_what_to_type(clerk_client):
    response = clerk_client.post(reverse("reconciliation:lookup"), {"q": " "})

    assert response.status_code == 400 and 'id="id_q_errors"' in page_of(response)


def test_counter_staff_record_that_the_citizen_was_contacted(clerk_client, clerk, world):
    m1 = item("M1")
    url = reverse("reconciliation:lookup-contact", args=[m1.uid])

    empty = clerk_client.post(url, {"note": ""})
    assert empty.status_code == 400 and f'id="id_{m1.uid.hex}_note_errors"' in page_of(empty)
    assert not m1.actions.exists()

    response = clerk_client.post(url, {"note": "已告知市民 11 月 27 日前再来电"})

    assert response.status_code == 302 and response["Location"].endswith("?q=M1")  # no personal data in the URL
    action = m1.actions.get()
    assert (action.action, action.actor, action.note) == ("citizen_contacted", clerk, "已告知市民 11 月 27 日前再来电")


# --- Imports --------------------------------------------------------------------------------------------


def test_a_ledger_file_with_a_bad_line_is_refused_naming_the_line_and_nothing_is_stored(officer_client):
    lines = (SAMPLES / "canonical.csv").read_text().splitlines()
    lines[2] = lines[2].replace("20.00", "twenty")
    upload = io.BytesIO("\n".join(lines).encode())
    upload.name = "bad.csv"

    response = officer_client.post(reverse("reconciliation:import-ledger"), {"format": "canonical", "file": upload})

    page = page_of(response)
    assert response.status_code == 400
    assert 'id="id_file_errors"' in page and "第 3 行" in page and "amount" in page and "未导入任何数据" in page
    assert LedgerFile.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_a_good_ledger_file_is_imported_once_and_reported(officer_client):
    def upload():
        data = io.BytesIO((SAMPLES / "canonical.csv").read_bytes())
        data.name = "canonical.csv"
        return officer_client.post(reverse("reconciliation:import-ledger"), {"format": "canonical", "file": data})

    first, again = page_of(upload()), page_of(upload())

    entries = LedgerEntry.objects.count()
    assert entries > 0 and LedgerFile.objects.count() == 1
    assert f'<dd id="ledger-new">{entries}</dd>' in first and "canonical.csv" in first
    assert "此文件已导入过" in again and 'id="ledger-files"' in again


def test_a_journal_uploaded_from_the_console_reports_its_lines(officer_client, officer, site):
    KioskFactory(site=site, serial="KS-00001")
    content = (SAMPLES / "journal-KS-00001-2026-11-20.csv").read_bytes()
    broken = content + b"9999,T-BAD,not-a-time,1.00,wechat,K-BAD,A1,ID_CARD,success\n"

    def upload(data):
        file = io.BytesIO(data)
        file.name = "journal.csv"
        return officer_client.post(
            reverse("reconciliation:import-journal"), {"kiosk": "KS-00001", "business_date": "2026-11-20", "file": file}
        )

    page = page_of(upload(broken))

    accepted = JournalLine.objects.filter(kiosk__serial="KS-00001").count()
    assert accepted > 0
    assert f'<dd id="journal-accepted">{accepted}</dd>' in page
    assert '<dd id="journal-rejected" class="warning-text">1</dd>' in page
    assert 'id="journal-rejections"' in page and "occurred_at" in page
    assert JournalLine.objects.get(txn_id=JournalLine.objects.first().txn_id).source_file.uploaded_by == officer
    again = page_of(upload(broken))
    assert "此文件已上传过" in again


def test_a_journal_for_a_kiosk_outside_the_users_regions_is_refused(officer_client, world):
    file = io.BytesIO(b"seq,txn_id\n")
    file.name = "journal.csv"

    response = officer_client.post(
        reverse("reconciliation:import-journal"), {"kiosk": "KS-THEIRS", "business_date": "2026-11-18", "file": file}
    )

    assert response.status_code == 400 and 'id="id_kiosk_errors"' in page_of(response)
    assert not JournalLine.objects.filter(kiosk__serial="KS-THEIRS", txn_id="T-X").exists()


# --- Language -------------------------------------------------------------------------------------------


def test_the_console_speaks_english_when_asked(officer_client, world):
    officer_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    page = page_of(officer_client.get(reverse("reconciliation:queue")))

    assert "Exception queue" in page and "Amount mismatch" in page and "working day" in page


def test_the_reports_runs_say_what_started_them_in_words_not_codes(officer_client, world, officer):
    from reconciliation import services

    day = world.day
    services.reconcile_run(business_date=day, today=AFTER_WINDOW, trigger="new_file")
    services.reconcile_run(business_date=day, today=AFTER_WINDOW, trigger=f"console:{officer.username}")

    html = officer_client.get(f"/reconciliation/reports/{day.isoformat()}/").content.decode()

    assert "新文件到达" in html and "控制台 · 李娜" in html
    assert "new_file" not in html and "console:fin" not in html


def test_the_item_page_names_the_fee_not_its_service_code(officer_client, world):
    page = page_of(officer_client.get(f"/reconciliation/items/{item('M2').uid}/"))

    assert "居民身份证工本费" in page
    assert ">ID_CARD<" not in page


# --- Words, not codes -----------------------------------------------------------------------------------


def test_a_bad_ledger_line_is_explained_in_chinese_naming_the_column_as_the_file_does(officer_client):
    lines = (SAMPLES / "canonical.csv").read_text().splitlines()
    lines[2] = lines[2].replace("20.00", "twenty")
    upload = io.BytesIO("\n".join(lines).encode())
    upload.name = "bad.csv"

    page = page_of(
        officer_client.post(reverse("reconciliation:import-ledger"), {"format": "canonical", "file": upload})
    )

    assert "第 3 行" in page and "金额（amount）" in page and "不是带两位小数的元金额" in page
    assert "is not yuan" not in page


def test_a_ledger_file_that_is_no_csv_at_all_names_the_place_in_words(officer_client):
    upload = io.BytesIO("\ufeffnothing,here\n".encode())
    upload.name = "bill.csv"

    page = page_of(officer_client.post(reverse("reconciliation:import-ledger"), {"format": "wechat", "file": upload}))

    assert "不是微信支付交易账单" in page and "the header lacks" not in page


def test_the_imports_page_names_who_imported_and_uploaded_not_their_logins(officer_client, officer, site):
    from reconciliation import services

    kiosk = KioskFactory(site=site, serial="KS-00001")
    services.ledger_import(data=(SAMPLES / "canonical.csv").read_bytes(), fmt="canonical", actor=officer)
    services.journal_ingest(
        kiosk=kiosk,
        business_date=date(2026, 11, 20),
        data=(SAMPLES / "journal-KS-00001-2026-11-20.csv").read_bytes(),
        uploaded_by=officer,
    )

    page = page_of(officer_client.get(reverse("reconciliation:imports")))

    assert page.count("<td>李娜</td>") == 2
    assert "<td>fin</td>" not in page


def test_a_journal_files_technical_error_is_said_in_chinese_with_the_detail_in_a_tooltip(officer_client, site):
    from reconciliation.models import JournalFile

    kiosk = KioskFactory(site=site, serial="KS-00001")
    JournalFile.objects.create(
        kiosk=kiosk,
        business_date=date(2026, 11, 20),
        sha256="0" * 64,
        content=b"",
        size=0,
        status=JournalFile.Status.FAILED,
        error="OperationalError: server closed the connection unexpectedly",
    )

    page = page_of(officer_client.get(reverse("reconciliation:imports")))

    assert (
        '<details class="warning-text journal-file-error" title="OperationalError: server closed the connection'
        ' unexpectedly"><summary>技术错误</summary>'
    ) in page
    assert page.count("OperationalError") == 2  # the tooltip and the folded detail, nowhere else


def test_a_failed_runs_exception_is_said_in_chinese_with_the_detail_in_a_tooltip(officer_client, world):
    ReconciliationRun.objects.create(
        business_date=world.day, status=ReconciliationRun.Status.FAILED, error="RuntimeError('boom')", trigger="demo"
    )

    page = page_of(officer_client.get(f"/reconciliation/reports/{world.day.isoformat()}/"))

    assert 'title="RuntimeError(&#x27;boom&#x27;)"><summary>技术错误</summary>' in page
    assert page.count("RuntimeError") == 2  # the tooltip and the folded detail, nowhere else


def test_a_run_error_already_in_chinese_is_shown_as_it_is(officer_client, world):
    ReconciliationRun.objects.create(
        business_date=world.day, status=ReconciliationRun.Status.FAILED, error="执行对账的任务进程已停止。"
    )

    page = page_of(officer_client.get(f"/reconciliation/reports/{world.day.isoformat()}/"))

    assert '<small class="warning-text run-error">执行对账的任务进程已停止。</small>' in page


def test_the_report_downloads_have_chinese_headers_and_outcomes_with_the_code_kept_last(officer_client, world):
    text = officer_client.get(reverse("reconciliation:report-csv", args=["2026-11-18"])).content.decode("utf-8-sig")
    workbook = load_workbook(
        io.BytesIO(officer_client.get(reverse("reconciliation:report-xlsx", args=["2026-11-18"])).content)
    )

    assert "对账结果,笔数,金额（元）,代码" in text
    assert "缴费渠道,缴费笔数,金额（元）,差异,差异金额（元）,代码" in text
    channels = {row[0]: row for row in workbook["按缴费渠道"].iter_rows(min_row=2, values_only=True)}
    assert channels["银行卡"][-1] == "card" and channels["微信支付"][-1] == "wechat"
    outcomes = [row[0] for row in workbook["按对账结果"].iter_rows(min_row=2, values_only=True)]
    assert "已缴费未对账" in outcomes and "missing_in_ledger" not in outcomes


def test_the_item_page_keeps_the_service_code_in_a_tooltip(officer_client, world):
    page = page_of(officer_client.get(f"/reconciliation/items/{item('M2').uid}/"))

    assert '<dd title="ID_CARD">居民身份证工本费</dd>' in page
