"""The incident demo data: channels that print, and a history of closed incidents whose commands and resolutions
the likely-cause statistics can count. Seeding twice changes nothing."""

import pytest

from incidents import demo
from incidents.models import Incident, IncidentCommand, NotificationChannel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]


def test_the_demo_history_is_closed_incidents_each_with_its_command_and_seeding_twice_changes_nothing(make_kiosk):
    for n in range(3):
        make_kiosk(f"KS-DEMO{n}")

    first = demo.seed_incidents_demo()
    again = demo.seed_incidents_demo()

    assert (first.created, again.created) == (True, False)
    assert Incident.objects.count() == demo.HISTORY_SIZE
    assert set(Incident.objects.values_list("state", flat=True)) == {"closed"}
    assert IncidentCommand.objects.count() == demo.HISTORY_SIZE
    assert NotificationChannel.objects.filter(security=True).exists()
    timeline = Incident.objects.first().timeline.values_list("kind", flat=True)
    assert list(timeline)[0] == "detected" and list(timeline)[-1] == "closed"
