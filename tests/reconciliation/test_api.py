"""The reconciliation staff API: the queue scoped by region, actions with audit trail, imports, reports, the
citizen lookup."""

import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from reconciliation.models import LedgerEntry, LedgerFile, ReconItem
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
AFTER_WINDOW = date(2026, 11, 25)


@pytest.fixture
def world(books, tariffs, region, site):
    """Discrepancies at a kiosk of the manager's region and at one of another region."""
    other = SiteFactory(region=RegionFactory(code="xuhui"), code="xh-01")
    mine = KioskFactory(site=site, serial="KS-MINE")
    theirs = KioskFactory(site=other, serial="KS-THEIRS")
    books.journal(
        mine,
        [
            {"txn_id": "M1", "channel": "card", "amount": "20.00", "payer": "A2026111800001"},
            {"txn_id": "M2", "amount": "20.00"},
        ],
    )
    books.journal(theirs, [{"txn_id": "T1", "channel": "card"}])
    books.ledger(ref="ORD-M2", kiosk=mine, payer="A-M2", amount="200.00")
    books.run(today=AFTER_WINDOW)
    return books


@pytest.fixture
def finance(region):
    return UserFactory(username="fin", role="finance_officer", regions=[region])


@pytest.fixture
def supervisor(region):
    return UserFactory(username="sup", role="finance_supervisor", regions="all")


def test_the_queue_shows_only_items_of_the_users_regions(api_client, world, finance):
    api_client.force_authenticate(finance)
    results = api_client.get("/api/v1/recon/items/?problems_only=true").json()["results"]

    assert sorted((r["kiosk"], r["outcome"]) for r in results) == [
        ("KS-MINE", "amount_mismatch"),
        ("KS-MINE", "missing_in_ledger"),
    ]
    other = ReconItem.objects.get(kiosk__serial="KS-THEIRS")
    assert api_client.get(f"/api/v1/recon/items/{other.uid}/").status_code == 404


def test_the_queue_filters_by_outcome_channel_amount_and_kiosk(api_client, world, supervisor):
    api_client.force_authenticate(supervisor)

    def kiosks_and_outcomes(query):
        return sorted(
            (r["kiosk"], r["outcome"]) for r in api_client.get(f"/api/v1/recon/items/?{query}").json()["results"]
        )

    assert kiosks_and_outcomes("outcome=amount_mismatch") == [("KS-MINE", "amount_mismatch")]
    assert kiosks_and_outcomes("channel=card") == [("KS-MINE", "missing_in_ledger"), ("KS-THEIRS", "missing_in_ledger")]
    assert kiosks_and_outcomes("kiosk=KS-THEIRS") == [("KS-THEIRS", "missing_in_ledger")]
    assert kiosks_and_outcomes("amount_min=100") == []
    assert kiosks_and_outcomes("date=2026-11-18&outcome=missing_in_ledger&site=xh-01") == [
        ("KS-THEIRS", "missing_in_ledger")
    ]
    bad = api_client.get("/api/v1/recon/items/?outcome=lost")
    assert bad.status_code == 400 and "outcome" in bad.json()["errors"]


def test_an_item_explains_its_probable_cause_in_words(api_client, world, supervisor):
    api_client.force_authenticate(supervisor)
    item = ReconItem.objects.get(outcome="amount_mismatch")

    body = api_client.get(f"/api/v1/recon/items/{item.uid}/").json()

    assert body["probable_cause"] == "input_error"
    assert "20.00" in body["explanation"][0] and "200.00" in body["explanation"][0]
    assert body["ledger_amount"] == "200.00"


def test_actions_through_the_api_are_audited_and_bad_ones_change_nothing(api_client, world, finance, supervisor):
    api_client.force_authenticate(finance)
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    url = f"/api/v1/recon/items/{item.uid}"

    assert api_client.post(f"{url}/contact/", {"note": ""}, format="json").status_code == 400
    assert api_client.post(f"{url}/refunded/", {"reference": "RF1"}, format="json").status_code == 409
    named = api_client.post(f"{url}/write-off/", {"reason": "小额", "approver": "sup"}, format="json")
    assert named.status_code == 400 and "approver" in named.json()["errors"]
    item.refresh_from_db()
    assert item.state == "open" and not item.actions.exists() and not item.writeoff_requests.exists()

    assert api_client.post(f"{url}/contact/", {"note": "已告知市民"}, format="json").status_code == 200
    requested = api_client.post(f"{url}/write-off/", {"reason": "小额"}, format="json")
    assert requested.status_code == 202
    assert requested.json()["state"] == "open"
    assert requested.json()["writeoff"] | {"requested_at": None} == {
        "state": "pending",
        "reason": "小额",
        "requested_by": "fin",
        "requested_at": None,
    }
    api_client.force_authenticate(supervisor)
    done = api_client.post(f"{url}/write-off/approve/", {}, format="json").json()
    assert (done["state"], done["resolution"], done["writeoff"]) == ("resolved", "written_off", None)
    assert [a["action"] for a in done["actions"]] == ["citizen_contacted", "writeoff_requested", "written_off"]
    assert [a["actor"] for a in done["actions"]] == ["fin", "fin", "sup"]


def test_naming_an_approver_is_not_enough_the_approver_must_act(api_client, world, finance):
    """As finance, naming a supervisor used to close the item; now it is refused and nothing is stored."""
    api_client.force_authenticate(finance)
    item = ReconItem.objects.get(journal_line__txn_id="M1")

    response = api_client.post(
        f"/api/v1/recon/items/{item.uid}/write-off/", {"reason": "x", "approver": "supervisor"}, format="json"
    )

    assert response.status_code == 400 and response.json()["code"] == "invalid"
    item.refresh_from_db()
    assert (item.state, item.resolution) == ("open", "")
    assert not item.writeoff_requests.exists()


def test_nobody_approves_their_own_write_off_through_the_api(api_client, world, supervisor):
    api_client.force_authenticate(supervisor)
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    url = f"/api/v1/recon/items/{item.uid}/write-off"
    assert api_client.post(f"{url}/", {"reason": "小额"}, format="json").status_code == 202

    own = api_client.post(f"{url}/approve/", {}, format="json")
    own_reject = api_client.post(f"{url}/reject/", {"note": "算了"}, format="json")

    assert own.status_code == 403 and own.json()["code"] == "permission_denied"
    assert own_reject.status_code == 403
    item.refresh_from_db()
    assert item.state == "open" and item.writeoff_requests.get().state == "pending"
    # The requester may take it back.
    withdrawn = api_client.post(f"{url}/withdraw/", {}, format="json")
    assert withdrawn.status_code == 200 and withdrawn.json()["writeoff"] is None


def test_only_people_who_may_approve_write_offs_decide_them(api_client, world, finance, region):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    url = f"/api/v1/recon/items/{item.uid}/write-off"
    other = UserFactory(username="fin2", role="finance_officer", regions=[region])
    api_client.force_authenticate(other)
    api_client.post(f"{url}/", {"reason": "小额"}, format="json")

    api_client.force_authenticate(finance)
    assert api_client.post(f"{url}/approve/", {}, format="json").status_code == 403
    assert api_client.post(f"{url}/reject/", {"note": "不同意"}, format="json").status_code == 403
    assert api_client.post(f"{url}/withdraw/", {}, format="json").status_code == 403
    item.refresh_from_db()
    assert item.state == "open" and item.writeoff_requests.get().state == "pending"


def test_a_rejected_write_off_through_the_api_leaves_the_item_open(api_client, world, finance, supervisor):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    url = f"/api/v1/recon/items/{item.uid}/write-off"
    api_client.force_authenticate(finance)
    api_client.post(f"{url}/", {"reason": "小额"}, format="json")
    api_client.force_authenticate(supervisor)

    assert api_client.post(f"{url}/reject/", {"note": ""}, format="json").status_code == 400
    rejected = api_client.post(f"{url}/reject/", {"note": "请先联系市民"}, format="json")

    assert rejected.status_code == 200
    assert (rejected.json()["state"], rejected.json()["writeoff"]) == ("open", None)
    assert rejected.json()["actions"][-1]["action"] == "writeoff_rejected"
    assert api_client.post(f"{url}/approve/", {}, format="json").status_code == 409


def test_counter_staffs_contact_answer_carries_only_what_the_counter_may_read(api_client, world, region, finance):
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    api_client.force_authenticate(finance)
    api_client.post(f"/api/v1/recon/items/{item.uid}/assign/", {"assignee": "fin"}, format="json")
    api_client.post(f"/api/v1/recon/items/{item.uid}/contact/", {"note": "财务内部备注"}, format="json")
    clerk = UserFactory(username="counter", role="counter_staff", regions=[region])
    api_client.force_authenticate(clerk)

    assert api_client.get(f"/api/v1/recon/items/{item.uid}/").status_code == 403
    response = api_client.post(f"/api/v1/recon/items/{item.uid}/contact/", {"note": "已告知市民"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"uid", "business_date", "outcome", "state", "channel", "amount"}
    assert "财务内部备注" not in response.content.decode() and "fin" not in response.content.decode()


def test_a_manual_match_through_the_api_names_a_missing_ledger_entry(api_client, world, finance):
    api_client.force_authenticate(finance)
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    response = api_client.post(
        f"/api/v1/recon/items/{item.uid}/match/",
        {"channel": "card", "channel_ref": "NOPE", "reason": "checked"},
        format="json",
    )
    assert response.status_code == 400 and "channel_ref" in response.json()["errors"]


def test_counter_staff_may_look_up_but_not_work_the_queue(api_client, world, region):
    clerk = UserFactory(username="counter", role="counter_staff", regions=[region])
    api_client.force_authenticate(clerk)

    assert api_client.get("/api/v1/recon/items/").status_code == 403
    found = api_client.get("/api/v1/recon/lookup/?q=A2026111800001")
    assert found.status_code == 200
    result = found.json()["results"][0]
    assert result["outcome"] == "missing_in_ledger"
    assert result["settlement_expected_by"] == "2026-11-23"
    assert any("2026-11-23" in sentence for sentence in result["explanation"])


def test_the_lookup_finds_by_order_number_and_by_id_number(api_client, books, tariffs, site, supervisor):
    kiosk = KioskFactory(site=site, serial="KS-L")
    books.journal(kiosk, [{"txn_id": "L1", "ref": "ORD-XYZ", "payer": "310101199001011234"}])
    books.ledger(ref="ORD-XYZ", kiosk=kiosk, payer="310101199001011234")
    books.run(today=AFTER_WINDOW)
    api_client.force_authenticate(supervisor)

    by_order = api_client.get("/api/v1/recon/lookup/?q=ORD-XYZ").json()["results"]
    by_id = api_client.get("/api/v1/recon/lookup/?q=310101199001011234").json()["results"]

    assert [r["outcome"] for r in by_order] == ["matched"] == [r["outcome"] for r in by_id]
    assert by_id[0]["payer_ref"] == "310***********1234"
    assert api_client.get("/api/v1/recon/lookup/?q=").status_code == 400


def test_ledger_files_import_through_the_api_once(api_client, supervisor):
    api_client.force_authenticate(supervisor)
    content = (SAMPLES / "canonical.csv").read_bytes()

    first = api_client.post("/api/v1/ledger/imports/", {"file": io.BytesIO(content), "format": "canonical"})
    again = api_client.post("/api/v1/ledger/imports/", {"file": io.BytesIO(content), "format": "canonical"})

    assert first.status_code == 201 and first.json()["new"] == LedgerEntry.objects.count() > 0
    assert again.status_code == 200 and again.json()["duplicate_file"] is True
    assert LedgerFile.objects.count() == 1


def test_a_ledger_file_with_a_bad_line_is_rejected_whole_naming_line_and_field(api_client, supervisor):
    api_client.force_authenticate(supervisor)
    lines = (SAMPLES / "canonical.csv").read_text().splitlines()
    lines[2] = lines[2].replace("20.00", "twenty")
    response = api_client.post(
        "/api/v1/ledger/imports/", {"file": io.BytesIO("\n".join(lines).encode()), "format": "canonical"}
    )

    assert response.status_code == 400
    assert (response.json()["line"], response.json()["field"]) == (3, "amount")
    assert LedgerEntry.objects.count() == 0 and LedgerFile.objects.count() == 0


def test_staff_upload_a_journal_for_a_kiosk_of_their_region(api_client, finance, site):
    KioskFactory(site=site, serial="KS-00001")
    api_client.force_authenticate(finance)
    content = (SAMPLES / "journal-KS-00001-2026-11-20.csv").read_bytes()

    response = api_client.post(
        "/api/v1/journals/", {"kiosk": "KS-00001", "business_date": "2026-11-20", "file": io.BytesIO(content)}
    )
    elsewhere = api_client.post(
        "/api/v1/journals/", {"kiosk": "KS-NOPE", "business_date": "2026-11-20", "file": io.BytesIO(content)}
    )

    assert response.status_code == 201 and response.json()["accepted"] > 0
    assert elsewhere.status_code == 400 and "kiosk" in elsewhere.json()["errors"]


def test_the_daily_report_comes_as_json_csv_and_xlsx(api_client, world, supervisor):
    api_client.force_authenticate(supervisor)
    url = "/api/v1/recon/reports/2026-11-18/"

    body = api_client.get(url).json()
    csv_text = api_client.get(url + "?export=csv").content.decode("utf-8-sig")
    workbook = load_workbook(io.BytesIO(api_client.get(url + "?export=xlsx").content))

    assert body["outcomes"]["missing_in_ledger"] == 2 and body["outcomes"]["amount_mismatch"] == 1
    assert body["match_rate"] == 0.0
    assert "missing_in_ledger,2" in csv_text
    assert workbook.sheetnames == ["summary", "outcomes", "channels", "kiosks"]
    kiosks = {row[0]: row for row in workbook["kiosks"].iter_rows(min_row=2, values_only=True)}
    assert kiosks["KS-MINE"][4] == 2


def test_the_api_report_is_scoped_like_the_consoles_for_a_district_user(api_client, client, world, finance):
    """A user of one district reads their district's totals in the API's JSON and CSV, as on the console's page,
    never the city's: the other district's kiosk and its unreconciled payment stay out."""
    api_client.force_authenticate(finance)
    url = "/api/v1/recon/reports/2026-11-18/"

    body = api_client.get(url).json()
    csv_text = api_client.get(url + "?export=csv").content.decode("utf-8-sig")
    xlsx = load_workbook(io.BytesIO(api_client.get(url + "?export=xlsx").content))
    client.force_login(finance)
    console_csv = client.get("/reconciliation/reports/2026-11-18/report.csv").content.decode("utf-8-sig")

    assert body["outcomes"]["missing_in_ledger"] == 1 and body["outcomes"]["amount_mismatch"] == 1
    assert [row[0] for row in body["per_kiosk"][1:]] == ["KS-MINE"]
    assert "KS-THEIRS" not in csv_text and "missing_in_ledger,1" in csv_text
    # The console's download says the same in words (exports.labelled_rows); the API's keeps the codes.
    assert "KS-THEIRS" not in console_csv and "已缴费未对账,1," in console_csv and "KS-MINE" in console_csv
    assert [row[0] for row in xlsx["kiosks"].iter_rows(min_row=2, values_only=True)] == ["KS-MINE"]


def test_starting_a_run_queues_it_on_the_worker(api_client, supervisor):
    from unittest import mock

    api_client.force_authenticate(supervisor)
    with mock.patch("reconciliation.tasks.reconcile_date.delay") as delay:
        response = api_client.post("/api/v1/recon/runs/", {"business_date": "2026-11-18"}, format="json")
    assert response.status_code == 202
    delay.assert_called_once_with("2026-11-18", trigger="api:sup")
    assert api_client.post("/api/v1/recon/runs/", {"business_date": "soon"}, format="json").status_code == 400


def test_the_api_schema_documents_the_write_off_request_and_its_decision():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]

    for action in ("approve", "reject", "withdraw"):
        assert "post" in paths[f"/api/v1/recon/items/{{uid}}/write-off/{action}/"]
    request_body = paths["/api/v1/recon/items/{uid}/write-off/"]["post"]["requestBody"]
    body_schema = request_body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][body_schema]["properties"]) == {"reason"}
    assert "202" in paths["/api/v1/recon/items/{uid}/write-off/"]["post"]["responses"]
    contact = paths["/api/v1/recon/items/{uid}/contact/"]["post"]["responses"]["200"]["content"]
    contact_schema = contact["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "causes" not in schema["components"]["schemas"][contact_schema]["properties"]


def test_an_approver_lists_the_write_offs_awaiting_their_approval(api_client, world, finance, supervisor):
    m1 = ReconItem.objects.get(journal_line__txn_id="M1")
    api_client.force_authenticate(finance)
    api_client.post(f"/api/v1/recon/items/{m1.uid}/write-off/", {"reason": "小额"}, format="json")

    mine = api_client.get("/api/v1/recon/items/?awaiting_my_approval=true").json()["results"]
    api_client.force_authenticate(supervisor)
    theirs = api_client.get("/api/v1/recon/items/?awaiting_my_approval=true").json()["results"]

    assert mine == []  # the requester is not the one to approve it
    assert [r["uid"] for r in theirs] == [str(m1.uid)]


def test_an_item_is_assigned_only_to_someone_who_works_items_in_its_region(api_client, world, finance, region):
    UserFactory(username="far", role="finance_officer", regions=[RegionFactory(code="xuhui")])
    UserFactory(username="counter", role="counter_staff", regions=[region])
    item = ReconItem.objects.get(journal_line__txn_id="M1")
    api_client.force_authenticate(finance)
    url = f"/api/v1/recon/items/{item.uid}/assign/"

    for username in ("far", "counter", "nobody"):
        response = api_client.post(url, {"assignee": username}, format="json")
        assert response.status_code == 400 and "assignee" in response.json()["errors"]
    assert api_client.post(url, {"assignee": "fin"}, format="json").json()["assigned_to"] == "fin"
    assert list(item.actions.values_list("action", flat=True)) == ["assigned"]


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "later"])
def test_a_report_of_a_day_outside_the_accepted_window_is_a_400_naming_business_date(api_client, supervisor, day):
    from datetime import timedelta

    from django.utils import timezone

    if day == "later":
        day = (timezone.localdate() + timedelta(days=367)).isoformat()
    api_client.force_authenticate(supervisor)

    for export in ("", "?export=csv", "?export=xlsx"):
        response = api_client.get(f"/api/v1/recon/reports/{day}/{export}")

        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid"
        assert list(body["errors"]) == ["business_date"]
        assert "日期必须在 2000-01-01 与" in body["errors"]["business_date"][0]


def test_a_report_date_that_is_not_a_date_is_a_400_telling_the_form_in_chinese(api_client, supervisor):
    api_client.force_authenticate(supervisor)

    response = api_client.get("/api/v1/recon/reports/2026-13-01/")

    assert response.status_code == 400
    assert response.json()["errors"] == {"business_date": ["日期格式应为 YYYY-MM-DD。"]}


def test_the_report_of_the_windows_first_day_is_served(api_client, supervisor):
    api_client.force_authenticate(supervisor)

    response = api_client.get("/api/v1/recon/reports/2000-01-01/")

    assert response.status_code == 200 and response.json()["business_date"] == "2000-01-01"
