"""The quarterly reminder: a district with no drill planned in the quarter gets one notice for its drill
coordinators — the coordinators' channel and an e-mail to the coordinators of that district (or of every district),
not to a coordinator of another district — once per quarter however often the reminder runs; a district that has a
drill this quarter (a drill planned for the next one does not count) is not reminded."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from drills import services
from incidents.models import Notification, NotificationChannel
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_district_without_a_drill_this_quarter_is_reminded_once_and_only_its_coordinators(region):
    other = RegionFactory(code="far", name="远郊区")
    mine = UserFactory(username="mine", role="drill_coordinator", regions=[region])
    UserFactory(username="city", role="drill_coordinator", regions="all")
    theirs = UserFactory(username="theirs", role="drill_coordinator", regions=[other])
    NotificationChannel.objects.create(
        name="演练协调群", kind="email", target="drills@example.cn", role="drill_coordinator"
    )
    kiosk = KioskFactory(site=SiteFactory(region=other, code="far-1"))
    start = datetime(2026, 11, 10, 10, 0, tzinfo=SHANGHAI)
    services.drill_plan(
        actor=theirs,
        title="远郊区第四季度演练",
        scenario="kiosk_dark",
        region=other,
        kiosks=[kiosk],
        window_start=start,
        window_end=start + timedelta(hours=2),
    )
    ours = KioskFactory(site=SiteFactory(region=region, code="near-1"))
    next_quarter = datetime(2027, 2, 3, 10, 0, tzinfo=SHANGHAI)
    services.drill_plan(
        actor=mine,
        title="下季度演练",
        scenario="kiosk_dark",
        region=region,
        kiosks=[ours],
        window_start=next_quarter,
        window_end=next_quarter + timedelta(hours=2),
    )

    services.drills_remind_quarterly(today=date(2026, 11, 26))
    services.drills_remind_quarterly(today=date(2026, 11, 27))  # again the same quarter: nothing new

    key = f"drills:quarter:{region.code}:2026Q4"
    rows = Notification.objects.filter(notice_key__startswith="drills:quarter:")
    assert set(rows.values_list("notice_key", flat=True)) == {key}
    assert set(rows.exclude(recipient=None).values_list("recipient__username", flat=True)) == {"mine", "city"}
    assert rows.filter(recipient=None, channel__name="演练协调群").count() == 1
    assert region.name in rows.first().subject

    # In Q1 of the next year the far district is reminded again; ours has its drill planned then.
    services.drills_remind_quarterly(today=date(2027, 1, 5))
    assert set(Notification.objects.filter(notice_key__endswith=":2027Q1").values_list("notice_key", flat=True)) == {
        "drills:quarter:far:2027Q1"
    }
