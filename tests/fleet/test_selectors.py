"""Console reads: scoped to the user's regions, filtered as the board asks, history read from heartbeats."""

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from fleet import selectors, services
from fleet.models import FlapEvent, Heartbeat, Kiosk
from fleet.selectors import BoardFilters
from fleet.services import HeartbeatInput
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


def beat(kiosk, **kwargs):
    kwargs.setdefault("sent_at", timezone.now())
    services.kiosk_record_heartbeat(kiosk=kiosk, beat=HeartbeatInput(**kwargs))


def test_kiosk_lookup_of_another_region_is_a_404(manager):
    other = KioskFactory(site=SiteFactory(region=RegionFactory(code="pudong")))

    with pytest.raises(Http404):
        selectors.kiosk_for_user(manager, other.serial)


def test_board_counts_every_status_except_the_status_filter(manager, site):
    KioskFactory(site=site, status=Kiosk.Status.OFFLINE, is_flapping=True)
    KioskFactory(site=site, status=Kiosk.Status.ONLINE)

    counts = selectors.board_counts(manager, BoardFilters(status="offline"))

    assert counts.by_status == {"offline": 1, "online": 1}
    assert counts.flapping == 1
    assert counts.total == 2
    assert [status for status, _label, _n in counts.ordered()][:2] == ["offline", "degraded"]


def test_failing_component_filter_skips_healthy_and_unreported_components(manager, site):
    jammed = KioskFactory(site=site, serial="KS-JAM")
    busy = KioskFactory(site=site, serial="KS-BUSY")
    KioskFactory(site=site, serial="KS-SILENT")
    beat(jammed, components={"receipt_printer": "user_error"})
    beat(busy, components={"receipt_printer": "busy"})

    kiosks = selectors.board_kiosks(manager, BoardFilters(component="receipt_printer"))

    assert [k.serial for k in kiosks] == ["KS-JAM"]


def test_board_kiosks_can_be_limited_to_serials(manager, site):
    KioskFactory(site=site, serial="KS-A")
    KioskFactory(site=site, serial="KS-B")

    assert [k.serial for k in selectors.board_kiosks(manager, BoardFilters(), serials=["KS-B"])] == ["KS-B"]


def test_history_charts_only_the_last_day_and_lists_error_codes_with_their_meaning(kiosk):
    now = timezone.now()
    Heartbeat.objects.bulk_create(
        [
            Heartbeat(kiosk=kiosk, received_at=now - timedelta(hours=30), metrics={"paper_pct": 90}),
            Heartbeat(kiosk=kiosk, received_at=now - timedelta(hours=2), metrics={"paper_pct": 40}),
            Heartbeat(
                kiosk=kiosk,
                received_at=now - timedelta(hours=1),
                metrics={"paper_pct": 8},
                error_codes=["E-PRN-002", "X-1"],
            ),
        ]
    )

    history = selectors.kiosk_history(kiosk, now=now)

    (paper,) = history.series
    assert [value for _t, value in paper.points] == [40.0, 8.0]
    assert paper.threshold == 10
    by_code = {e.code: e for e in history.errors}
    assert by_code["E-PRN-002"].catalog.title("zh-hans") == "打印纸将尽"
    assert by_code["X-1"].catalog is None
    assert not by_code["E-PRN-002"].active


def test_timeline_mixes_flips_and_flapping_newest_first(kiosk):
    beat(kiosk)
    kiosk.refresh_from_db()
    FlapEvent.objects.create(kiosk=kiosk, occurred_at=timezone.now(), started=True, flips_in_window=6)
    services.kiosk_start_maintenance(kiosk=kiosk, actor=UserFactory(), reason="巡检")

    entries = selectors.kiosk_timeline(kiosk)

    assert [e.change.to_status if e.change else "flapping" for e in entries] == ["maintenance", "flapping", "online"]
