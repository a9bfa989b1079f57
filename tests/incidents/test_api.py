"""The incidents staff API: each endpoint as each role, region scoping (another region's incident is a 404), a
kiosk's token refused, a transition the state does not allow a 409 that changes nothing, bad input a 400."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from fleet import services as fleet_services
from incidents import services
from incidents.models import ChecklistItem, Incident, PlaybookVersion, SlaPolicy, State, TimelineEntry
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.incidents.conftest import ALWAYS_OPEN

pytestmark = pytest.mark.django_db

BASE = "/api/v1/incidents/"


@pytest.fixture
def other_region(db):
    return RegionFactory(code="xuhui", name="徐汇区")


@pytest.fixture
def kiosk(hall):
    kiosk = KioskFactory(site=hall, serial="KS-40001")
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=fleet_services.HeartbeatInput(
            sent_at=None, components={"receipt_printer": "hardware_error"}, error_codes=["E-PRN-001"]
        ),
    )
    return kiosk


@pytest.fixture
def people(region, other_region):
    def person(username, role, regions, first="", last=""):
        return UserFactory(username=username, role=role, regions=regions, first_name=first, last_name=last)

    return {
        "manager": person("om", "operations_manager", [region], "强", "李"),
        "support": person("ts", "technical_support", [region], "伟", "王"),
        "field": person("ft", "field_technician", [region]),
        "drill": person("dc", "drill_coordinator", [region]),
        "finance": person("fo", "finance_officer", [region]),
        "counter": person("cs", "counter_staff", [region]),
        "elsewhere": person("om2", "operations_manager", [other_region]),
    }


def report(kiosk, actor, kind="module_failure", symptom="打印机不出纸"):
    incident, _created = services.incident_report(
        report=services.ManualReport(kiosk=kiosk, fault_kind=kind, symptom=symptom, observed_at=timezone.now()),
        actor=actor,
    )
    return incident


@pytest.fixture
def incident(kiosk, people):
    return report(kiosk, people["manager"])


@pytest.fixture
def theirs(other_region, people):
    site = SiteFactory(region=other_region, code="xh-hall", opening_hours=ALWAYS_OPEN)
    return report(KioskFactory(site=site, serial="KS-49999"), people["elsewhere"])


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- Reading ------------------------------------------------------------------------------------------------


def test_the_list_shows_the_callers_regions_only_most_urgent_first(incident, theirs, people, kiosk):
    calmer = report(kiosk, people["manager"], kind="transmission_delay", symptom="缴费确认很慢")

    body = as_user(people["support"]).get(BASE).json()

    assert [row["id"] for row in body["results"]] == [incident.pk, calmer.pk]
    first = body["results"][0]
    assert (first["reference"], first["kiosk"], first["region"]) == (incident.reference, "KS-40001", "huangpu")
    assert first["state_label"] == str(State.NEW.label) and first["fault_kind_label"] == "功能模块失效"


def test_filters_narrow_the_list_and_refuse_bad_values(incident, people, kiosk):
    report(kiosk, people["manager"], kind="transmission_delay", symptom="慢")
    client = as_user(people["manager"])

    assert [r["id"] for r in client.get(BASE, {"fault_kind": "module_failure"}).json()["results"]] == [incident.pk]
    assert client.get(BASE, {"kiosk": "KS-40001", "state": "new", "security": "false"}).json()["count"] == 2
    assert client.get(BASE, {"region": "xuhui"}).json()["count"] == 0
    assert client.get(BASE, {"assignee": "none"}).json()["count"] == 2
    assert client.get(BASE, {"ordering": "newest"}).json()["results"][0]["fault_kind"] == "transmission_delay"
    assert client.get(BASE, {"severity": "9"}).status_code == 400
    assert client.get(BASE, {"kiosk": "KS\x00"}).status_code == 400
    assert client.get(BASE, {"limit": "99999999999999999999999"}).status_code == 400


def test_another_regions_incident_is_a_404_for_every_endpoint(theirs, people):
    client = as_user(people["manager"])
    url = f"{BASE}{theirs.pk}/"

    for path in ("", "timeline/", "checklist/", "likely-causes/"):
        assert client.get(url + path).status_code == 404, path
    for path, body in (("acknowledge/", {}), ("resolve/", {"resolution": "x"}), ("note/", {"text": "x"})):
        assert client.post(url + path, body, format="json").status_code == 404, path
    assert Incident.objects.get(pk=theirs.pk).state == State.NEW


def test_retrieve_timeline_and_checklist_show_the_incident(incident, people):
    client = as_user(people["field"])

    detail = client.get(f"{BASE}{incident.pk}/").json()
    timeline = client.get(f"{BASE}{incident.pk}/timeline/", {"limit": 1}).json()
    checklist = client.get(f"{BASE}{incident.pk}/checklist/").json()

    assert detail["symptom"] == "打印机不出纸" and detail["reported_by"] == "李强"
    assert timeline["count"] == incident.timeline.count() and len(timeline["results"]) == 1
    assert timeline["next"] is not None
    assert [item["position"] for item in checklist["items"]] == list(
        incident.checklist.order_by("position").values_list("position", flat=True)
    )
    assert checklist["catalog_checks"][0]["code"] == "E-PRN-001"
    assert checklist["catalog_checks"][0]["title"] == "打印机卡纸"


def test_likely_causes_are_shown_with_their_evidence(incident, people):
    causes = as_user(people["field"]).get(f"{BASE}{incident.pk}/likely-causes/").json()

    assert causes[0]["label"] == "打印机卡纸"
    assert "自助机报告 E-PRN-001：打印机卡纸" in causes[0]["evidence"]
    assert (causes[0]["fixed"], causes[0]["total"]) == (0, 0)


@pytest.mark.parametrize("role", ["finance", "counter"])
def test_roles_outside_incident_response_cannot_read(incident, people, role):
    client = as_user(people[role])

    assert client.get(BASE).status_code == 403
    assert client.get(f"{BASE}{incident.pk}/").status_code == 403


def test_without_credentials_or_with_a_kiosk_token_the_api_answers_401(incident, kiosk):
    anonymous = APIClient()
    device = APIClient(HTTP_AUTHORIZATION=f"Device {kiosk.token}")

    for client in (anonymous, device):
        assert client.get(BASE).status_code == 401
        assert client.get(f"{BASE}{incident.pk}/").status_code == 401
        assert client.post(f"{BASE}{incident.pk}/acknowledge/").status_code == 401
    assert Incident.objects.get(pk=incident.pk).state == State.NEW


def test_a_staff_token_works_like_a_session(incident, people):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=people['support']).key}")

    assert client.get(f"{BASE}{incident.pk}/").status_code == 200


# --- Transitions --------------------------------------------------------------------------------------------


def test_the_lifecycle_through_the_api(incident, people):
    client = as_user(people["support"])
    url = f"{BASE}{incident.pk}/"

    acknowledged = client.post(url + "acknowledge/")
    remote = client.post(url + "remote-fix/", {"note": "远程重启打印模块"}, format="json")
    onsite = client.post(url + "onsite/", {}, format="json")
    resolved = client.post(url + "resolve/", {"resolution": "更换打印头"}, format="json")
    closed = client.post(url + "close/", {"note": "现场测试出票正常"}, format="json")

    assert [r.status_code for r in (acknowledged, remote, onsite, resolved, closed)] == [200] * 5
    assert acknowledged.json()["assignee_name"] == "王伟"
    assert closed.json()["state"] == "closed"
    kinds = list(Incident.objects.get(pk=incident.pk).timeline.values_list("kind", flat=True))
    assert kinds.count("state_changed") == 2 and kinds[-2:] == ["verified", "closed"]


def test_an_illegal_transition_is_a_409_in_chinese_and_changes_nothing(incident, people):
    client = as_user(people["support"])
    url = f"{BASE}{incident.pk}/"
    client.post(url + "cancel/", {"reason": "测试误报"}, format="json")
    entries = TimelineEntry.objects.filter(incident=incident).count()

    response = client.post(url + "resolve/", {"resolution": "重启"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert "已取消" in response.json()["detail"] or "误报" in response.json()["detail"]
    incident.refresh_from_db()
    assert (incident.state, incident.resolution) == (State.CANCELLED, "")
    assert TimelineEntry.objects.filter(incident=incident).count() == entries


def test_a_role_that_only_reads_cannot_act(incident, people):
    client = as_user(people["field"])

    response = client.post(f"{BASE}{incident.pk}/acknowledge/")

    assert response.status_code == 403
    assert Incident.objects.get(pk=incident.pk).state == State.NEW


def test_assign_severity_and_note(incident, people):
    client = as_user(people["manager"])
    url = f"{BASE}{incident.pk}/"

    assigned = client.post(url + "assign/", {"assignee": "ts"}, format="json")
    not_theirs = client.post(url + "assign/", {"assignee": "om2"}, format="json")
    nobody = client.post(url + "assign/", {"assignee": "no-such-person"}, format="json")
    severity = client.post(url + "severity/", {"severity": 1, "reason": "大厅唯一一台"}, format="json")
    note = client.post(url + "note/", {"text": "已通知大厅"}, format="json")

    assert assigned.status_code == 200 and assigned.json()["assignee_name"] == "王伟"
    assert not_theirs.status_code == 400 and "assignee" in not_theirs.json()["errors"]
    assert nobody.status_code == 400 and "assignee" in nobody.json()["errors"]
    assert severity.status_code == 200 and severity.json()["severity"] == 1
    assert note.status_code == 201 and note.json()["actor_name"] == "李强"


def test_a_service_error_names_its_field(incident, people):
    client = as_user(people["manager"])

    response = client.post(f"{BASE}{incident.pk}/resolve/", {"resolution": "   "}, format="json")

    assert response.status_code == 400
    assert "resolution" in response.json()["errors"]


def test_a_command_goes_to_the_kiosk_and_moves_the_incident_to_remote_fix(incident, people, kiosk):
    client = as_user(people["support"])

    response = client.post(
        f"{BASE}{incident.pk}/command/",
        {"kind": "restart_module", "params": {"module": "receipt_printer"}},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["kind"] == "restart_module"
    incident.refresh_from_db()
    assert incident.state == State.REMOTE_FIX
    assert kiosk.commands.get().params == {"module": "receipt_printer"}


def test_a_checklist_result_is_recorded_and_acknowledges(incident, people):
    client = as_user(people["support"])
    position = incident.checklist.order_by("position").first().position

    response = client.post(
        f"{BASE}{incident.pk}/checklist/{position}/", {"outcome": "problem", "note": "卡纸"}, format="json"
    )
    missing = client.post(f"{BASE}{incident.pk}/checklist/999/", {"outcome": "ok"}, format="json")
    wrong = client.post(f"{BASE}{incident.pk}/checklist/{position}/", {"outcome": "maybe"}, format="json")

    assert response.status_code == 200 and response.json()["done_by"] == "王伟"
    assert ChecklistItem.objects.get(incident=incident, position=position).outcome == "problem"
    assert Incident.objects.get(pk=incident.pk).state == State.ACKNOWLEDGED
    assert (missing.status_code, wrong.status_code) == (404, 400)


def test_bulk_acknowledge_reports_each_that_cannot_be_and_skips_other_regions(incident, theirs, people, kiosk):
    done = report(kiosk, people["manager"], kind="transmission_delay", symptom="慢")
    services.incident_cancel(incident=done, actor=people["manager"], reason="误报")
    client = as_user(people["manager"])

    response = client.post(f"{BASE}acknowledge/", {"ids": [incident.pk, done.pk, theirs.pk]}, format="json")

    assert response.status_code == 200
    assert response.json()["acknowledged"] == 1
    assert len(response.json()["problems"]) == 1 and done.reference in response.json()["problems"][0]
    assert Incident.objects.get(pk=theirs.pk).state == State.NEW


# --- Reports by hand ----------------------------------------------------------------------------------------


def test_a_manual_report_opens_an_incident_and_a_second_is_an_occurrence(kiosk, people):
    client = as_user(people["manager"])
    body = {"kiosk": "KS-40001", "fault_kind": "physical_damage", "symptom": "屏幕裂了", "reporter_name": "张女士"}

    first = client.post(f"{BASE}report/", body, format="json")
    second = client.post(f"{BASE}report/", body, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["created"] is True and second.json()["created"] is False
    assert first.json()["incident"]["id"] == second.json()["incident"]["id"]
    assert Incident.objects.get(pk=first.json()["incident"]["id"]).occurrences == 2


def test_a_report_may_carry_a_photo(kiosk, people):
    client = as_user(people["manager"])
    photo = SimpleUploadedFile("crack.jpg", b"\xff\xd8\xff\xe0" + b"0" * 100, content_type="image/jpeg")

    response = client.post(
        f"{BASE}report/",
        {"kiosk": "KS-40001", "fault_kind": "physical_damage", "symptom": "屏幕裂了", "photos": [photo]},
        format="multipart",
    )

    assert response.status_code == 201
    assert len(response.json()["incident"]["attachments"]) == 1


def test_a_report_refuses_a_kiosk_of_another_region_and_bad_files(people, theirs, kiosk):
    client = as_user(people["manager"])
    text = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")

    elsewhere = client.post(
        f"{BASE}report/", {"kiosk": "KS-49999", "fault_kind": "wont_start", "symptom": "黑屏"}, format="json"
    )
    not_a_photo = client.post(
        f"{BASE}report/",
        {"kiosk": "KS-40001", "fault_kind": "wont_start", "symptom": "黑屏", "photos": [text]},
        format="multipart",
    )

    assert elsewhere.status_code == 400 and "kiosk" in elsewhere.json()["errors"]
    assert not_a_photo.status_code == 400 and "photos" in not_a_photo.json()["errors"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"kiosk": "KS-40001", "fault_kind": "wont_start", "symptom": "黑\u0000屏"}, "symptom"),
        ({"kiosk": "KS-40001", "fault_kind": "wont_start", "symptom": 12}, None),
        ({"kiosk": "KS-40001", "fault_kind": "exploded", "symptom": "黑屏"}, "fault_kind"),
        ({"kiosk": ["KS-40001"], "fault_kind": "wont_start", "symptom": "黑屏"}, "kiosk"),
        ({"kiosk": "KS-40001", "fault_kind": "wont_start", "symptom": "x", "observed_at": "1900-01-01T00:00Z"}, None),
        ({"kiosk": "KS-40001", "fault_kind": "wont_start", "symptom": "x" * 3000}, "symptom"),
    ],
)
def test_bad_report_input_is_a_400_and_opens_nothing(people, kiosk, body, field):
    response = as_user(people["manager"]).post(f"{BASE}report/", body, format="json")

    assert response.status_code == 400, response.json()
    if field:
        assert field in str(response.json()["errors"])
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    "path, body",
    [
        ("severity/", {"severity": 10**30, "reason": "x"}),
        ("severity/", {"severity": "1", "reason": ["x"]}),
        ("note/", {"text": "a\u0000b"}),
        ("resolve/", {"resolution": 3.5}),
        ("assign/", {"assignee": {"username": "ts"}}),
        ("command/", {"kind": "restart_module", "params": {"module": "\u0000"}}),
        ("command/", {"kind": "launch_rocket"}),
    ],
)
def test_bad_action_input_is_a_400_and_changes_nothing(incident, people, path, body):
    response = as_user(people["manager"]).post(f"{BASE}{incident.pk}/{path}", body, format="json")

    assert response.status_code == 400
    incident.refresh_from_db()
    assert (incident.state, incident.severity) == (State.NEW, Incident.objects.get(pk=incident.pk).severity)
    assert not incident.timeline.exclude(kind__in=["detected", "reported"]).exists()


def test_a_huge_number_in_the_body_is_a_400(incident, people):
    client = as_user(people["manager"])

    response = client.post(f"{BASE}acknowledge/", b'{"ids": [1' + b"0" * 40 + b"]}", content_type="application/json")

    assert response.status_code == 400


def test_a_path_id_beyond_any_incident_is_a_404(people):
    assert as_user(people["manager"]).get(f"{BASE}{'9' * 30}/").status_code == 404


# --- Response configuration ---------------------------------------------------------------------------------


def test_playbooks_sla_policies_and_chains_are_read_by_incident_roles(people):
    client = as_user(people["support"])

    playbooks = client.get(f"{BASE}playbooks/")
    one = client.get(f"{BASE}playbooks/module_failure/")
    policies = client.get(f"{BASE}sla-policies/")
    chains = client.get(f"{BASE}escalation-chains/")

    assert playbooks.status_code == one.status_code == policies.status_code == chains.status_code == 200
    assert one.json()["versions"][0]["steps"]
    assert [p["severity"] for p in policies.json()] == [1, 2, 3, 4]
    assert as_user(people["counter"]).get(f"{BASE}playbooks/").status_code == 403


def test_only_response_managers_change_sla_targets(people):
    body = {"acknowledge_min": 5, "remote_min": 10, "onsite_min": 60, "resolve_min": 120, "clock": "wall"}

    refused = as_user(people["support"]).put(f"{BASE}sla-policies/1/", body, format="json")
    changed = as_user(people["manager"]).put(f"{BASE}sla-policies/1/", body, format="json")
    patched = as_user(people["manager"]).patch(f"{BASE}sla-policies/1/", {"acknowledge_min": 7}, format="json")
    backwards = as_user(people["manager"]).patch(f"{BASE}sla-policies/1/", {"resolve_min": 1}, format="json")
    huge = as_user(people["manager"]).patch(f"{BASE}sla-policies/1/", {"resolve_min": 10**20}, format="json")

    assert refused.status_code == 403
    assert changed.status_code == 200 and patched.json()["acknowledge_min"] == 7
    assert backwards.status_code == 400 and "resolve_min" in backwards.json()["errors"]
    assert huge.status_code == 400
    policy = SlaPolicy.objects.get(severity=1)
    assert (policy.acknowledge_min, policy.resolve_min, policy.clock) == (7, 120, "wall")


def test_a_new_playbook_version_is_published_and_open_incidents_keep_theirs(incident, people):
    before = incident.playbook_version_id
    body = {
        "steps": [{"key": "paper", "text": "检查打印纸"}, {"key": "restart", "text": "重启打印模块"}],
        "note": "加一步",
    }

    refused = as_user(people["support"]).post(f"{BASE}playbooks/module_failure/versions/", body, format="json")
    published = as_user(people["manager"]).post(f"{BASE}playbooks/module_failure/versions/", body, format="json")
    duplicate_keys = as_user(people["manager"]).post(
        f"{BASE}playbooks/module_failure/versions/",
        {"steps": [{"key": "a", "text": "x"}, {"key": "a", "text": "y"}], "note": "n"},
        format="json",
    )

    assert refused.status_code == 403
    assert published.status_code == 201
    newest = published.json()["versions"][0]
    assert newest["steps"][0] == {"key": "paper", "text": "检查打印纸"} and newest["created_by"] == "李强"
    assert PlaybookVersion.objects.filter(playbook__fault_kind="module_failure").count() == newest["number"]
    assert duplicate_keys.status_code == 400
    incident.refresh_from_db()
    assert incident.playbook_version_id == before


def test_a_sla_deadline_changes_nothing_already_open(incident, people):
    due = incident.acknowledge_due_at
    as_user(people["manager"]).patch(f"{BASE}sla-policies/{incident.severity}/", {"acknowledge_min": 1}, format="json")

    incident.refresh_from_db()
    assert incident.acknowledge_due_at == due or abs(incident.acknowledge_due_at - due) < timedelta(seconds=1)
