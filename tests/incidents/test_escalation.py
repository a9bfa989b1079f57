"""SLA breaches are recorded once each, on the hall's opening hours or the wall clock as the policy says; the
escalation chain notifies its steps in order, repeats the last until someone acknowledges, and stops then."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from fleet import services as fleet_services
from fleet.models import Kiosk
from incidents import escalation, notify, services
from incidents.models import EscalationChain, EscalationStep, Incident, Notification, NotificationChannel, SlaPolicy
from incidents.models import TimelineEntry as Entry
from tests.factories import RegionFactory, SiteFactory, UserFactory
from tests.incidents.conftest import beat, run_engine

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]

SHANGHAI = ZoneInfo("Asia/Shanghai")
NINE_TO_FIVE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def printer_fault(make_kiosk, serial="KS-40001", site=None, at=None):
    """A P3 module failure (the hall keeps a working kiosk)."""
    make_kiosk(f"{serial}-W", site=site)
    kiosk = make_kiosk(serial, site=site)
    beat(kiosk, at=at, receipt_printer="hardware_error")
    run_engine(now=at) if at else run_engine()
    return Incident.objects.get(kiosk=kiosk)


@pytest.fixture
def role_channels(region):
    return {
        "support": NotificationChannel.objects.create(
            name="技术支持群", kind="wecom", target="support-key", role="technical_support", region=region
        ),
        "manager": NotificationChannel.objects.create(
            name="运营管理群", kind="dingtalk", target="manager-token", role="operations_manager"
        ),
        "general": NotificationChannel.objects.create(name="值班邮箱", kind="email", target="duty@example.cn"),
    }


def events_of(incident, channel=None):
    rows = Notification.objects.filter(incident=incident).exclude(event__in=["opened", "security"])
    if channel is not None:
        rows = rows.filter(channel=channel)
    return list(rows.order_by("id").values_list("event", flat=True))


# --- Escalation -----------------------------------------------------------------------------------------------


def test_the_chain_notifies_its_steps_in_order_repeats_the_last_and_stops_when_acknowledged(
    make_kiosk, role_channels, support
):
    elsewhere = NotificationChannel.objects.create(
        name="徐汇技术支持群",
        kind="wecom",
        target="xuhui-key",
        role="technical_support",
        region=RegionFactory(code="xuhui", name="徐汇区"),
    )
    incident = printer_fault(make_kiosk)
    assert [step["role"] for step in incident.escalation] == ["technical_support", "operations_manager"]
    t0 = incident.opened_at

    escalation.tick(now=t0 + timedelta(seconds=1))
    assert events_of(incident, role_channels["support"]) == ["escalation:1"]
    incident.refresh_from_db()
    assert incident.escalation_step == 1
    assert incident.next_escalation_at == t0 + timedelta(seconds=1, minutes=30)

    escalation.tick(now=t0 + timedelta(minutes=10))  # the step's 30 minutes have not passed
    escalation.tick(now=t0 + timedelta(minutes=31))
    escalation.tick(now=t0 + timedelta(minutes=31))  # a second tick at the same moment changes nothing
    assert events_of(incident, role_channels["manager"]) == ["escalation:2"]

    escalation.tick(now=t0 + timedelta(minutes=92))  # past the last step: it repeats every 60 minutes
    assert events_of(incident, role_channels["manager"]) == ["escalation:2", "escalation:2:2"]

    services.incident_acknowledge(incident=incident, actor=support)
    escalation.tick(now=t0 + timedelta(minutes=400))

    assert events_of(incident, role_channels["manager"]) == ["escalation:2", "escalation:2:2"]
    assert events_of(incident, role_channels["support"]) == ["escalation:1"]
    assert events_of(incident, elsewhere) == []  # another region's team is not told
    entries = list(
        incident.timeline.filter(kind=Entry.Kind.ESCALATED).order_by("at").values_list("once_key", "measure")
    )
    assert [key for key, _m in entries] == ["escalation:1", "escalation:2", "escalation:2:2"]
    assert "技术支持" in entries[0][1] and "第 1 级升级" in entries[0][1]


def test_a_role_without_a_channel_is_emailed_to_its_people_who_see_the_region(make_kiosk, region):
    other = RegionFactory(code="xuhui", name="徐汇区")
    UserFactory(username="zhang", role="technical_support", regions=[region], email="zhang@example.cn")
    UserFactory(username="far", role="technical_support", regions=[other], email="far@example.cn")
    UserFactory(username="nomail", role="technical_support", regions=[region], email="")
    UserFactory(username="city", role="technical_support", regions="all", email="city@example.cn")
    incident = printer_fault(make_kiosk)

    escalation.tick(now=incident.opened_at + timedelta(seconds=1))
    notify.send_due(now=timezone.now() + timedelta(seconds=1))

    assert sorted(Notification.objects.filter(event="escalation:1").values_list("recipient__username", flat=True)) == [
        "city",
        "zhang",
    ]
    assert sorted(address for message in mail.outbox for address in message.to) == [
        "city@example.cn",
        "zhang@example.cn",
    ]
    assert all("第 1 级升级" in message.subject for message in mail.outbox)


def test_a_person_step_emails_the_person_and_a_later_edit_of_the_chain_does_not_rewrite_it(make_kiosk, region):
    lead = UserFactory(username="lead", first_name="强", last_name="李", email="li.qiang@example.cn")
    chain = EscalationChain.objects.get(severity=3, region=None)
    chain.steps.all().delete()
    EscalationStep.objects.create(chain=chain, position=1, user=lead, wait_min=20)
    incident = printer_fault(make_kiosk)
    # Edited after the incident opened: the incident keeps the chain it started with.
    chain.steps.all().delete()
    EscalationStep.objects.create(chain=chain, position=1, role="operations_manager", wait_min=5)

    escalation.tick(now=incident.opened_at + timedelta(seconds=1))

    (row,) = Notification.objects.filter(event="escalation:1")
    assert row.recipient == lead
    entry = incident.timeline.get(kind=Entry.Kind.ESCALATED)
    assert "李强" in entry.measure


def test_a_mass_outage_is_escalated_once_by_the_hall_not_by_each_kiosk(make_kiosk, role_channels):
    kiosks = [make_kiosk(f"KS-4100{n}") for n in range(4)]
    Kiosk.objects.filter(pk__in=[k.pk for k in kiosks]).update(offline_after=timezone.now() - timedelta(minutes=5))
    fleet_services.health_sweep()
    run_engine()
    parent = Incident.objects.get(is_group=True)

    escalation.tick(now=timezone.now() + timedelta(minutes=2))

    assert list(Notification.objects.filter(event__startswith="escalation").values_list("incident", flat=True)) == [
        parent.pk
    ]
    assert not Incident.objects.filter(parent=parent, next_escalation_at__isnull=False).exists()


def test_a_kiosk_down_incident_waits_the_grouping_wait_before_its_first_step(make_kiosk, role_channels):
    kiosk = make_kiosk("KS-42001")
    make_kiosk("KS-42002")
    make_kiosk("KS-42003")
    Kiosk.objects.filter(pk=kiosk.pk).update(offline_after=timezone.now() - timedelta(minutes=5))
    fleet_services.health_sweep()
    run_engine()
    incident = Incident.objects.get()

    escalation.tick(now=incident.opened_at + timedelta(seconds=10))
    assert events_of(incident) == []

    escalation.tick(now=incident.opened_at + timedelta(seconds=61))
    assert events_of(incident) == ["escalation:1"]


# --- SLA breaches ---------------------------------------------------------------------------------------------


def test_each_missed_deadline_is_recorded_once_at_its_time_and_announced_once(make_kiosk, role_channels, support):
    incident = printer_fault(make_kiosk)
    t0 = incident.opened_at

    for _ in range(2):
        escalation.tick(now=t0 + timedelta(minutes=31))

    (breach,) = incident.timeline.filter(kind=Entry.Kind.SLA_BREACHED)
    assert breach.once_key == "sla:acknowledge"
    assert breach.at == incident.acknowledge_due_at
    local = timezone.localtime(incident.acknowledge_due_at).strftime("%Y-%m-%d %H:%M")
    assert local in breach.result and "30 分钟" in breach.result
    assert "确认逾期" in breach.measure
    assert events_of(incident, role_channels["general"]) == ["sla:acknowledge"]

    services.incident_acknowledge(incident=incident, actor=support)  # late, but the breach stays on the record
    escalation.tick(now=t0 + timedelta(minutes=61))

    assert sorted(incident.timeline.filter(kind=Entry.Kind.SLA_BREACHED).values_list("once_key", flat=True)) == [
        "sla:acknowledge",
        "sla:remote",
    ]
    assert events_of(incident, role_channels["general"]) == ["sla:acknowledge", "sla:remote"]


def test_the_opening_hours_clock_stops_at_night_and_the_wall_clock_does_not(make_kiosk, region, role_channels):
    hall = SiteFactory(region=region, code="hall-b", name="徐家汇服务点", opening_hours=NINE_TO_FIVE)
    day = timezone.localdate() + timedelta(days=1)
    opened = datetime(day.year, day.month, day.day, 16, 50, tzinfo=SHANGHAI)
    evening = opened.replace(hour=17, minute=30)
    next_morning = opened.replace(hour=9, minute=0) + timedelta(days=1)

    counted = printer_fault(make_kiosk, "KS-43001", site=hall, at=opened)
    SlaPolicy.objects.filter(severity=3).update(clock="wall")
    wall = printer_fault(make_kiosk, "KS-43002", site=hall, at=opened)
    # 10 open minutes today and 20 tomorrow; on the wall clock, 30 minutes.
    assert counted.acknowledge_due_at == next_morning + timedelta(minutes=20)
    assert wall.acknowledge_due_at == opened + timedelta(minutes=30)

    escalation.tick(now=evening)
    assert not counted.timeline.filter(kind=Entry.Kind.SLA_BREACHED).exists()
    assert wall.timeline.filter(kind=Entry.Kind.SLA_BREACHED, once_key="sla:acknowledge").count() == 1

    escalation.tick(now=next_morning + timedelta(minutes=19))
    assert not counted.timeline.filter(kind=Entry.Kind.SLA_BREACHED).exists()

    escalation.tick(now=next_morning + timedelta(minutes=21))
    escalation.tick(now=next_morning + timedelta(minutes=22))
    assert counted.timeline.filter(kind=Entry.Kind.SLA_BREACHED, once_key="sla:acknowledge").count() == 1


def test_step_for_walks_the_chain_then_repeats_its_last_step():
    chain = [{"position": 2, "role": "operations_manager"}, {"position": 1, "role": "technical_support"}]
    assert [escalation.step_for(chain, taken)[1] for taken in range(4)] == [
        "escalation:1",
        "escalation:2",
        "escalation:2:2",
        "escalation:2:3",
    ]
    assert escalation.step_for(chain, 0)[0]["role"] == "technical_support"
    assert escalation.step_for([], 0) is None


def test_breaches_of_many_incidents_are_recorded_in_a_fixed_number_of_statements(
    make_kiosk, role_channels, django_assert_max_num_queries
):
    make_kiosk("KS-44999")
    for n in range(12):
        beat(make_kiosk(f"KS-440{n:02d}"), receipt_printer="hardware_error")
    run_engine()
    due = max(Incident.objects.values_list("resolve_due_at", flat=True))

    with django_assert_max_num_queries(20):  # a few per milestone, none per incident
        assert escalation.record_breaches(due + timedelta(minutes=1)) == 12 * 4

    assert Notification.objects.filter(event__startswith="sla:").count() == 12 * 4
