"""The incident console: who may see and work incidents (each role, each region), the queue in order of urgency
with its filters and a fixed number of queries, the incident page, its actions (a refused one says why and
changes nothing), bulk acknowledge, and the report of a fault a person saw."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from fleet.models import RemoteCommand
from incidents import services
from incidents.models import Attachment, ChecklistItem, Incident, State, TimelineEntry
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def other_region(db):
    return RegionFactory(code="jingan", name="静安区")


@pytest.fixture
def people(region, other_region):
    return {
        "manager": UserFactory(
            username="ops", role="operations_manager", regions=[region], first_name="芳", last_name="王"
        ),
        "support": UserFactory(username="tech-support", role="technical_support", regions=[region]),
        "technician": UserFactory(username="field", role="field_technician", regions=[region]),
        "coordinator": UserFactory(username="drill", role="drill_coordinator", regions=[region]),
        "finance": UserFactory(username="fin", role="finance_officer", regions=[region]),
        "outsider": UserFactory(username="ja-ops", role="operations_manager", regions=[other_region]),
        "citywide": UserFactory(username="city", role="operations_manager", regions="all"),
    }


def report(kiosk, actor, kind="module_failure", symptom="票据打印机不出纸", **kwargs) -> Incident:
    incident, _created = services.incident_report(
        report=services.ManualReport(
            kiosk=kiosk, fault_kind=kind, symptom=symptom, observed_at=timezone.now(), **kwargs
        ),
        actor=actor,
    )
    return incident


@pytest.fixture
def incident(kiosk, people):
    return report(kiosk, people["manager"])


@pytest.fixture
def foreign_incident(other_region, people):
    hall = SiteFactory(region=other_region, code="ja-01", name="静安区政务服务中心")
    return report(KioskFactory(site=hall, serial="KS-JA-0001"), people["citywide"])


def client_for(client, user):
    client.force_login(user)
    return client


# --- Who may see what -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("manager", 200),
        ("support", 200),
        ("technician", 200),
        ("coordinator", 200),
        ("finance", 403),
    ],
)
def test_each_role_sees_the_queue_and_the_incident_page_or_gets_403(client, people, incident, who, status):
    client_for(client, people[who])
    assert client.get(reverse("incidents:queue")).status_code == status
    assert client.get(reverse("incidents:detail", args=[incident.pk])).status_code == status
    assert client.get(reverse("incidents:queue-live")).status_code == status


def test_a_person_not_logged_in_is_sent_to_the_login_page(client, incident):
    response = client.get(reverse("incidents:queue"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("who", ["technician", "coordinator"])
def test_technicians_and_drill_coordinators_read_but_cannot_work_an_incident(client, people, incident, who):
    client_for(client, people[who])
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert 'id="acknowledge"' not in page
    assert 'id="command-form"' not in page

    response = client.post(reverse("incidents:acknowledge", args=[incident.pk]))

    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.state == State.NEW


def test_the_queue_lists_only_the_users_regions(client, people, incident, foreign_incident):
    client_for(client, people["manager"])
    page = client.get(reverse("incidents:queue")).content.decode()
    assert incident.reference in page
    assert foreign_incident.reference not in page

    client_for(client, people["citywide"])
    page = client.get(reverse("incidents:queue")).content.decode()
    assert incident.reference in page and foreign_incident.reference in page


def test_an_incident_of_another_region_is_a_404_on_its_page_and_every_action(client, people, foreign_incident):
    client_for(client, people["manager"])
    pk = foreign_incident.pk
    item = foreign_incident.checklist.first()
    assert client.get(reverse("incidents:detail", args=[pk])).status_code == 404
    assert client.get(reverse("incidents:detail-live", args=[pk])).status_code == 404
    for name in ("acknowledge", "move", "resolve", "close", "cancel", "assign", "severity", "note", "command"):
        assert client.post(reverse(f"incidents:{name}", args=[pk]), {"to": "remote_fix"}).status_code == 404, name
    response = client.post(reverse("incidents:checklist", args=[pk, item.pk]), {"outcome": "ok"})
    assert response.status_code == 404
    foreign_incident.refresh_from_db()
    assert foreign_incident.state == State.NEW
    assert not TimelineEntry.objects.filter(incident=foreign_incident, actor=people["manager"]).exists()


def test_bulk_acknowledge_skips_incidents_of_another_region(client, people, incident, foreign_incident):
    client_for(client, people["manager"])
    client.post(reverse("incidents:bulk-acknowledge"), {"incidents": [incident.pk, foreign_incident.pk]})
    incident.refresh_from_db()
    foreign_incident.refresh_from_db()
    assert incident.state == State.ACKNOWLEDGED
    assert foreign_incident.state == State.NEW


# --- The queue --------------------------------------------------------------------------------------------


def test_the_queue_puts_security_first_then_severity_then_the_deadline_running_out(client, people, site):
    manager = people["manager"]
    kiosks = [KioskFactory(site=site, serial=f"KS-Q-{n}") for n in range(4)]
    low = report(kiosks[0], manager, kind="transmission_delay")
    soon = report(kiosks[1], manager, kind="module_failure")
    later = report(kiosks[2], manager, kind="module_failure")
    security = report(kiosks[3], manager, kind="tampering")
    now = timezone.now()
    Incident.objects.filter(pk__in=[soon.pk, later.pk, low.pk]).update(severity=2)
    Incident.objects.filter(pk=low.pk).update(severity=4)
    Incident.objects.filter(pk=soon.pk).update(acknowledge_due_at=now + timedelta(minutes=5))
    Incident.objects.filter(pk=later.pk).update(acknowledge_due_at=now + timedelta(minutes=50))

    client_for(client, manager)
    page = client.get(reverse("incidents:queue")).context["page"]

    assert [i.pk for i in page] == [security.pk, soon.pk, later.pk, low.pk]


def test_the_queue_filters_by_state_severity_kind_assignee_and_security(client, people, site, incident):
    manager = people["manager"]
    other = report(KioskFactory(site=site, serial="KS-F-1"), manager, kind="tampering")
    services.incident_acknowledge(incident=incident, actor=manager)
    Incident.objects.filter(pk=incident.pk).update(severity=3)
    client_for(client, manager)

    def listed(**query):
        return [i.pk for i in client.get(reverse("incidents:queue"), query).context["page"]]

    assert listed(security="on") == [other.pk]
    assert listed(state="acknowledged") == [incident.pk]
    assert listed(fault_kind="module_failure") == [incident.pk]
    assert listed(assignee="me") == [incident.pk]
    assert listed(assignee="none") == [other.pk]
    assert listed(severity=1) == [other.pk]
    assert set(listed()) == {incident.pk, other.pk}


def test_a_filter_value_outside_the_users_scope_is_refused_not_used(client, people, incident, other_region):
    client_for(client, people["manager"])
    response = client.get(reverse("incidents:queue"), {"region": other_region.code})
    assert response.status_code == 200
    assert response.context["form"].errors["region"]
    assert [i.pk for i in response.context["page"]] == [incident.pk]


def test_the_queue_counts_states_and_severities_of_the_filtered_incidents(client, people, site, incident):
    manager = people["manager"]
    report(KioskFactory(site=site, serial="KS-C-1"), manager, kind="tampering")
    services.incident_acknowledge(incident=incident, actor=manager)
    client_for(client, manager)

    counts = client.get(reverse("incidents:queue")).context["counts"]

    assert counts.by_state == {"acknowledged": 1, "new": 1}
    assert counts.open_total == 2
    assert counts.security_open == 1


def _many_incidents(site, n: int, prefix: str = "KS-M") -> None:
    """n open incidents, one per kiosk (the database allows one open incident per kiosk and fault kind)."""
    from fleet.models import Kiosk

    kiosks = Kiosk.objects.bulk_create(
        Kiosk(site=site, serial=f"{prefix}-{i:05d}", heartbeat_interval_s=60, grace_s=90) for i in range(n)
    )
    now = timezone.now()
    Incident.objects.bulk_create(
        Incident(
            kiosk=kiosk,
            site=site,
            region_id=site.region_id,
            fault_kind="module_failure",
            category="software",
            source="health",
            severity=1 + i % 4,
            state=[State.NEW, State.ACKNOWLEDGED, State.REMOTE_FIX, State.RESOLVED][i % 4],
            title=f"{kiosk.serial} 功能模块失效",
            opened_at=now - timedelta(minutes=i),
            last_seen_at=now,
            acknowledge_due_at=now + timedelta(minutes=i % 60),
            resolve_due_at=now + timedelta(hours=4),
        )
        for i, kiosk in enumerate(kiosks)
    )


def test_the_queue_page_takes_the_same_number_of_queries_for_10_or_300_incidents(client, people, site):
    client_for(client, people["manager"])
    _many_incidents(site, 10)
    client.get(reverse("incidents:queue"))  # warm the session and permission caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("incidents:queue")).status_code == 200
    _many_incidents(SiteFactory(region=site.region), 290, prefix="KS-N")
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("incidents:queue"))
    assert response.status_code == 200
    assert len(response.context["page"]) == 100
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
    with CaptureQueriesContext(connection) as live:
        client.get(reverse("incidents:queue-live"))
    assert len(live) <= len(many)


def test_the_queue_shows_labels_in_chinese_with_the_codes_only_in_tooltips(client, people, incident):
    client_for(client, people["manager"])
    page = client.get(reverse("incidents:queue")).content.decode()
    assert ">新建<" in page  # the state
    assert "功能模块失效" in page  # the fault kind
    assert 'title="module_failure"' in page
    assert ">module_failure<" not in page and ">new<" not in page


# --- The incident page ------------------------------------------------------------------------------------


def test_the_incident_page_shows_the_checklist_timeline_kiosk_and_people_by_name(client, people, incident):
    client_for(client, people["manager"])
    response = client.get(reverse("incidents:detail", args=[incident.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    for item in incident.checklist.all():
        assert item.text in page
    assert "王芳" in page  # who recorded the report, family name first
    assert 'id="incident-kiosk"' in page
    assert "KS-00001" in page


def test_a_deferred_command_reads_as_waiting_for_the_payment_to_end(client, people, incident):
    manager = people["manager"]
    command = services.incident_send_command(incident=incident, actor=manager, kind="restart")
    RemoteCommand.objects.filter(pk=command.pk).update(deferred_at=timezone.now(), deferred_count=2)
    client_for(client, manager)
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "等待缴费结束" in page


def test_a_proposed_onsite_dispatch_shows_as_a_banner(client, people, incident):
    Incident.objects.filter(pk=incident.pk).update(
        onsite_proposed_at=timezone.now(), onsite_proposed_reason="远程命令失败"
    )
    client_for(client, people["manager"])
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert 'id="onsite-banner"' in page
    assert "远程命令失败" in page


def test_likely_causes_are_shown_when_the_diagnosis_module_answers(client, people, incident, monkeypatch):
    import sys
    import types

    class Cause:
        label, measure, evidence, counts = "打印机卡纸", "restart_module", ["自助机报告 E-PRN-001"], "4/5"

    import incidents

    module = types.ModuleType("incidents.diagnosis")
    module.likely_causes = lambda incident: [Cause()]
    monkeypatch.setitem(sys.modules, "incidents.diagnosis", module)
    monkeypatch.setattr(incidents, "diagnosis", module, raising=False)
    client_for(client, people["manager"])
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "打印机卡纸" in page and "重启模块" in page and "自助机报告 E-PRN-001" in page
    assert "['" not in page


def test_a_mass_outage_lists_its_kiosks_and_a_kiosk_links_to_its_mass_outage(client, people, site, incident):
    group = Incident.objects.create(
        site=site,
        region=site.region,
        is_group=True,
        fault_kind="wont_start",
        category="device",
        source="grouping",
        severity=1,
        title="批量故障 · 黄浦区政务服务中心",
        opened_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    Incident.objects.filter(pk=incident.pk).update(parent=group)
    client_for(client, people["manager"])
    group_page = client.get(reverse("incidents:detail", args=[group.pk])).content.decode()
    child_page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert reverse("incidents:detail", args=[incident.pk]) in group_page
    assert reverse("incidents:detail", args=[group.pk]) in child_page


# --- Actions ----------------------------------------------------------------------------------------------


def test_acknowledging_moves_the_incident_and_records_who_did_it(client, people, incident):
    client_for(client, people["support"])
    response = client.post(reverse("incidents:acknowledge", args=[incident.pk]))
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.state == State.ACKNOWLEDGED
    assert incident.acknowledged_by == people["support"]


def test_an_illegal_transition_answers_409_says_why_and_changes_nothing(client, people, incident):
    manager = people["manager"]
    services.incident_cancel(incident=incident, actor=manager, reason="误报")
    entries = TimelineEntry.objects.filter(incident=incident).count()
    client_for(client, manager)

    for name, data in [("acknowledge", {}), ("move", {"to": "onsite"}), ("resolve", {"resolution": "重启"})]:
        response = client.post(reverse(f"incidents:{name}", args=[incident.pk]), data)
        assert response.status_code == 409, name
        assert "误报" in response.content.decode()  # the state it is in, in words
    incident.refresh_from_db()
    assert incident.state == State.CANCELLED
    assert TimelineEntry.objects.filter(incident=incident).count() == entries


def test_closing_an_incident_not_yet_recovered_is_refused_with_409(client, people, incident):
    client_for(client, people["manager"])
    response = client.post(reverse("incidents:close", args=[incident.pk]), {"note": "看过了"})
    assert response.status_code == 409
    incident.refresh_from_db()
    assert incident.state == State.NEW


def test_resolving_without_saying_what_fixed_it_is_a_400_next_to_the_field(client, people, incident):
    client_for(client, people["manager"])
    response = client.post(reverse("incidents:resolve", args=[incident.pk]), {"resolution": "  "})
    assert response.status_code == 400
    assert response.context["resolve_form"].errors["resolution"]
    incident.refresh_from_db()
    assert incident.state == State.NEW


def test_resolve_then_close_verifies_the_incident(client, people, incident):
    client_for(client, people["manager"])
    client.post(reverse("incidents:resolve", args=[incident.pk]), {"resolution": "更换打印机"})
    client.post(reverse("incidents:close", args=[incident.pk]), {"note": "现场试打印正常"})
    incident.refresh_from_db()
    assert incident.state == State.CLOSED


def test_ticking_a_checklist_step_records_it_and_starts_triage(client, people, incident):
    item = incident.checklist.order_by("position").first()
    client_for(client, people["manager"])
    response = client.post(
        reverse("incidents:checklist", args=[incident.pk, item.pk]), {"outcome": "problem", "note": "卡纸"}
    )
    assert response.status_code == 302
    item.refresh_from_db()
    incident.refresh_from_db()
    assert (item.outcome, item.note, item.done_by) == ("problem", "卡纸", people["manager"])
    assert incident.state == State.ACKNOWLEDGED


def test_a_checklist_step_without_a_result_is_a_400(client, people, incident):
    item = incident.checklist.first()
    client_for(client, people["manager"])
    response = client.post(reverse("incidents:checklist", args=[incident.pk, item.pk]), {"outcome": "maybe"})
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.outcome == ChecklistItem.Outcome.PENDING


def test_sending_a_restart_queues_it_and_moves_the_incident_to_remote_fix(client, people, incident):
    client_for(client, people["support"])
    response = client.post(reverse("incidents:command", args=[incident.pk]), {"kind": "restart"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.state == State.REMOTE_FIX
    assert RemoteCommand.objects.get(incident_link__incident=incident).kind == "restart"


def test_a_factory_reset_needs_the_backup_and_the_typed_serial(client, people, incident):
    client_for(client, people["support"])
    url = reverse("incidents:command", args=[incident.pk])
    response = client.post(url, {"kind": "factory_reset", "backup": "on", "confirm_serial": "KS-99999"})
    assert response.status_code == 400
    assert response.context["command_form"].errors["confirm_serial"]
    response = client.post(url, {"kind": "factory_reset", "confirm_serial": "KS-00001"})
    assert response.status_code == 400
    assert not RemoteCommand.objects.exists()

    response = client.post(url, {"kind": "factory_reset", "backup": "on", "confirm_serial": "KS-00001"})
    assert response.status_code == 302
    assert RemoteCommand.objects.get().params == {"backup": True}


def test_a_patch_is_pushed_with_the_version_chosen(client, people, incident):
    client_for(client, people["support"])
    url = reverse("incidents:command", args=[incident.pk])
    assert client.post(url, {"kind": "push_patch"}).status_code == 400
    assert client.post(url, {"kind": "push_patch", "version": "3.4.3"}).status_code == 302
    assert RemoteCommand.objects.get().params == {"version": "3.4.3"}


def test_assign_severity_and_note_are_recorded(client, people, incident):
    manager, support = people["manager"], people["support"]
    client_for(client, manager)
    client.post(reverse("incidents:assign", args=[incident.pk]), {"assignee": support.pk})
    client.post(reverse("incidents:severity", args=[incident.pk]), {"severity": 1, "reason": "大厅唯一一台"})
    client.post(reverse("incidents:note", args=[incident.pk]), {"text": "已电话联系大厅"})
    incident.refresh_from_db()
    assert incident.assignee == support
    assert incident.severity == 1
    assert incident.timeline.filter(kind="note", result="已电话联系大厅").exists()


def test_someone_of_another_region_cannot_be_assigned(client, people, incident):
    client_for(client, people["manager"])
    response = client.post(reverse("incidents:assign", args=[incident.pk]), {"assignee": people["outsider"].pk})
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.assignee is None


def test_bulk_acknowledge_acknowledges_the_new_ones_and_reports_the_rest(client, people, site, incident):
    manager = people["manager"]
    second = report(KioskFactory(site=site, serial="KS-B-1"), manager)
    done = report(KioskFactory(site=site, serial="KS-B-2"), manager)
    services.incident_cancel(incident=done, actor=manager, reason="误报")
    client_for(client, manager)

    response = client.post(
        reverse("incidents:bulk-acknowledge"), {"incidents": [incident.pk, second.pk, done.pk]}, follow=True
    )

    states = dict(Incident.objects.values_list("pk", "state"))
    assert states[incident.pk] == states[second.pk] == State.ACKNOWLEDGED
    assert states[done.pk] == State.CANCELLED
    texts = [str(m) for m in response.context["messages"]]
    assert any("2" in t for t in texts) and any("1" in t for t in texts)


def test_bulk_acknowledge_with_nothing_ticked_changes_nothing(client, people, incident):
    client_for(client, people["manager"])
    response = client.post(reverse("incidents:bulk-acknowledge"), {"incidents": ["x", ""]})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.state == State.NEW


# --- A reported fault -------------------------------------------------------------------------------------


def _report_data(**overrides):
    data = {
        "kiosk": "KS-00001",
        "fault_kind": "physical_damage",
        "observed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "symptom": "屏幕碎裂，触摸无反应",
        "reporter_name": "张女士",
        "reporter_contact": "13800000000",
    }
    return data | overrides


def test_a_manager_records_a_reported_fault_with_a_photo(client, people, kiosk):
    client_for(client, people["manager"])
    photo = SimpleUploadedFile("screen.png", PNG, content_type="image/png")
    response = client.post(reverse("incidents:report"), _report_data(photos=[photo]))
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert (incident.fault_kind, incident.reporter_name, incident.reporter_contact) == (
        "physical_damage",
        "张女士",
        "13800000000",
    )
    assert incident.source == "manual"
    attachment = Attachment.objects.get(incident=incident)
    assert response["Location"] == reverse("incidents:detail", args=[incident.pk])
    photo_url = reverse("incidents:photo", args=[incident.pk, attachment.pk])
    assert client.get(photo_url).status_code == 200
    client_for(client, people["outsider"])
    assert client.get(photo_url).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"symptom": ""}, "symptom"),
        ({"fault_kind": "melted"}, "fault_kind"),
        ({"kiosk": "KS-JA-0001"}, "kiosk"),  # a kiosk of another region is not among the choices
        ({"observed_at": "2020-01-01T09:00"}, "observed_at"),
        ({"observed_at": "明天"}, "observed_at"),
    ],
)
def test_a_report_with_bad_input_is_refused_next_to_the_field(
    client, people, kiosk, foreign_incident, overrides, field
):
    client_for(client, people["manager"])
    before = Incident.objects.count()
    response = client.post(reverse("incidents:report"), _report_data(**overrides))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Incident.objects.count() == before


def test_a_report_in_the_future_is_refused_by_the_service_message(client, people, kiosk):
    client_for(client, people["manager"])
    later = (timezone.localtime() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("incidents:report"), _report_data(observed_at=later))
    assert response.status_code == 400
    assert response.context["form"].errors["observed_at"]
    assert not Incident.objects.exists()


def test_a_file_that_is_not_a_photo_is_refused(client, people, kiosk):
    client_for(client, people["manager"])
    fake = SimpleUploadedFile("virus.png", b"MZ\x90\x00 not an image", content_type="image/png")
    response = client.post(reverse("incidents:report"), _report_data(photos=[fake]))
    assert response.status_code == 400
    assert response.context["form"].errors["photos"]
    assert not Incident.objects.exists()


def test_a_second_report_of_the_same_fault_is_added_to_the_open_incident(client, people, kiosk):
    client_for(client, people["manager"])
    client.post(reverse("incidents:report"), _report_data())
    client.post(reverse("incidents:report"), _report_data(reporter_name="大厅保安"))
    incident = Incident.objects.get()
    assert incident.occurrences == 2


@pytest.mark.parametrize("who", ["technician", "coordinator", "finance"])
def test_only_those_who_record_reports_open_the_report_form(client, people, who):
    client_for(client, people[who])
    assert client.get(reverse("incidents:report")).status_code == 403


# --- The fleet board's annotation -------------------------------------------------------------------------


def test_each_kiosk_gets_its_open_incident_for_the_board_in_one_query(
    people, site, incident, django_assert_num_queries
):
    from incidents.selectors import board_annotations

    other = KioskFactory(site=site, serial="KS-A-2")
    with django_assert_num_queries(1):
        notes = board_annotations([incident.kiosk_id, other.pk])
    assert set(notes) == {incident.kiosk_id}
    assert notes[incident.kiosk_id]["url"] == reverse("incidents:detail", args=[incident.pk])
    assert incident.reference in notes[incident.kiosk_id]["label"]


def test_the_incidents_app_annotates_the_fleet_boards_kiosks_through_the_registry(incident):
    from core import registry

    notes = registry.kiosk_annotations([incident.kiosk_id])
    assert any(note["url"] == reverse("incidents:detail", args=[incident.pk]) for note in notes[incident.kiosk_id])


def test_an_incident_from_a_failed_inspection_says_so_in_chinese():
    from django.utils import translation

    from incidents.templatetags.incidents_console import source_label

    with translation.override("zh-hans"):
        assert source_label("inspection") == "定期巡检发现"
