"""Stock alerts and count schedules: raised once while their condition holds, cleared when it ends, each told once
through core.notices; per-depot reorder levels override the catalog's."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from parts import selectors, services
from parts.models import Alert, CountSchedule, Lot

pytestmark = pytest.mark.django_db


def test_a_store_below_the_catalogs_reorder_point_raises_one_alert_however_often_the_task_runs(
    store, keeper, paper, posted
):
    services.part_receive(
        part=paper,
        depot=store,
        quantity=4,
        lot_number="P1",
        actor=keeper,
        expires_on=timezone.localdate() + timedelta(400),
    )

    first = services.parts_alerts_refresh()
    second = services.parts_alerts_refresh()

    alert = Alert.objects.get(kind=Alert.Kind.REORDER)
    assert (alert.depot, alert.part, alert.quantity, alert.threshold) == (store, paper, 4, 10)
    assert first["raised"] == 1 and second["raised"] == 0
    (notice,) = [n for n in posted if n.key.startswith("parts:reorder:")]
    assert "低于补货点" in notice.subject and notice.region_id == store.region_id


def test_the_reorder_alert_clears_when_stock_is_back_above_the_point_and_is_raised_again_later(store, keeper, paper):
    later = timezone.localdate() + timedelta(400)
    services.part_receive(part=paper, depot=store, quantity=4, lot_number="P1", actor=keeper, expires_on=later)
    services.parts_alerts_refresh()

    services.part_receive(part=paper, depot=store, quantity=20, lot_number="P1", actor=keeper, expires_on=later)
    assert services.parts_alerts_refresh()["cleared"] == 1
    services.stock_issue(part=paper, depot=store, quantity=20, actor=keeper)
    services.parts_alerts_refresh()

    assert Alert.objects.filter(kind=Alert.Kind.REORDER).count() == 2
    assert Alert.objects.filter(kind=Alert.Kind.REORDER, cleared_at=None).count() == 1


def test_a_depots_own_reorder_level_overrides_the_catalog_and_gives_a_van_one(store, van, keeper, paper, printer):
    later = timezone.localdate() + timedelta(400)
    services.part_receive(part=paper, depot=store, quantity=12, lot_number="P1", actor=keeper, expires_on=later)
    services.reorder_level_set(depot=store, part=paper, reorder_point=20, reorder_quantity=50, actor=keeper)
    services.reorder_level_set(depot=van, part=printer, reorder_point=1, reorder_quantity=1, actor=keeper)

    rows = {(row["depot"].code, row["part"].part_number): row for row in selectors.parts_below_reorder()}

    assert rows[("hp-store", "PAP-80")]["reorder_point"] == 20
    assert rows[("van-li", "PRN-80T")]["quantity"] == 0
    assert ("van-li", "PAP-80") not in rows  # a van without a level of its own has none


def test_only_support_sets_reorder_levels_and_the_numbers_are_bounded(store, keeper, technician, paper):
    with pytest.raises(PermissionDenied):
        services.reorder_level_set(depot=store, part=paper, reorder_point=1, reorder_quantity=1, actor=technician)
    with pytest.raises(ValidationError):
        services.reorder_level_set(depot=store, part=paper, reorder_point=10**12, reorder_quantity=1, actor=keeper)
    with pytest.raises(ValidationError):
        services.reorder_level_set(depot=store, part=paper, reorder_point=-1, reorder_quantity=1, actor=keeper)


def test_a_lot_is_alerted_once_before_expiry_and_once_on_expiry_and_both_are_idempotent(store, keeper, paper, posted):
    today = timezone.localdate()
    services.part_receive(
        part=paper, depot=store, quantity=30, lot_number="SOON", actor=keeper, expires_on=today + timedelta(days=10)
    )

    services.parts_alerts_refresh(today=today)
    services.parts_alerts_refresh(today=today)
    assert Alert.objects.filter(kind=Alert.Kind.EXPIRING).count() == 1

    services.parts_alerts_refresh(today=today + timedelta(days=11))
    services.parts_alerts_refresh(today=today + timedelta(days=12))

    expiring, expired = Alert.objects.get(kind="expiring"), Alert.objects.get(kind="expired")
    assert expiring.cleared_at is not None and expired.cleared_at is None
    keys = [n.key for n in posted if ":expir" in n.key]
    assert len(keys) == len(set(keys)) == 2
    assert any("已过期" in n.subject for n in posted)


def test_scrapping_an_expired_lot_clears_its_alert(store, keeper, paper):
    today = timezone.localdate()
    services.part_receive(
        part=paper, depot=store, quantity=3, lot_number="SOON", actor=keeper, expires_on=today + timedelta(days=1)
    )
    services.parts_alerts_refresh(today=today + timedelta(days=5))
    lot = Lot.objects.get()

    services.stock_adjust(lot=lot, depot=store, delta=-3, actor=keeper, reason="过期报废", kind="scrap")
    services.parts_alerts_refresh(today=today + timedelta(days=5))

    assert not Alert.objects.filter(kind="expired", cleared_at=None).exists()


def test_expiry_colours_follow_the_warning_days_setting(settings):
    today = timezone.localdate()
    settings.KIOSKOPS = {**settings.KIOSKOPS, "PARTS_EXPIRY_WARN_DAYS": 5}

    assert selectors.expiry_state(today + timedelta(days=4), today) == "expiring"
    assert selectors.expiry_state(today + timedelta(days=6), today) == ""
    assert selectors.expiry_state(today - timedelta(days=1), today) == "expired"
    assert selectors.expiry_state(None, today) == ""


def test_a_count_coming_due_is_reminded_once_then_told_once_when_overdue(van, technician, posted):
    today = timezone.localdate()
    services.count_schedule_set(depot=van, every_days=30, due_on=today + timedelta(days=2), actor=technician)

    assert services.count_schedules_remind(today=today) == {"reminded": 1, "overdue": 0}
    assert services.count_schedules_remind(today=today) == {"reminded": 0, "overdue": 0}
    assert services.count_schedules_remind(today=today + timedelta(days=3)) == {"reminded": 0, "overdue": 1}
    assert services.count_schedules_remind(today=today + timedelta(days=4)) == {"reminded": 0, "overdue": 0}

    assert [n.key.split(":")[1] for n in posted] == ["count-due", "count-overdue"]
    assert posted[0].user_ids == (technician.pk,)


def test_posting_a_count_moves_the_due_date_on_by_the_interval(van, technician, keeper, store, printer):
    today = timezone.localdate()
    services.count_schedule_set(depot=van, every_days=30, due_on=today - timedelta(days=1), actor=technician)
    count = services.stock_count_start(depot=van, actor=technician)

    services.stock_count_post(count=count, actor=technician)

    assert CountSchedule.objects.get(depot=van).due_on == today + timedelta(days=30)


@pytest.mark.django_db(transaction=True)
def test_two_alert_runs_at_once_raise_and_tell_each_alert_once(store, keeper, paper, posted):
    import threading

    from django.db import connections

    services.part_receive(
        part=paper,
        depot=store,
        quantity=3,
        lot_number="S",
        actor=keeper,
        expires_on=timezone.localdate() + timedelta(5),
    )
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            services.parts_alerts_refresh()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(Alert.objects.values_list("kind", flat=True)) == ["expiring", "reorder"]
    assert sorted(n.key.split(":")[1] for n in posted) == ["expiring", "reorder"]


def test_the_beat_task_raises_alerts_and_reminds_counts_and_a_second_tick_does_nothing(store, keeper, paper, posted):
    from parts import tasks

    services.part_receive(
        part=paper,
        depot=store,
        quantity=3,
        lot_number="S",
        actor=keeper,
        expires_on=timezone.localdate() + timedelta(5),
    )
    services.count_schedule_set(depot=store, every_days=30, due_on=timezone.localdate(), actor=keeper)

    first, second = tasks.tick(), tasks.tick()

    assert first == {"alerts": {"raised": 2, "cleared": 0}, "counts": {"reminded": 1, "overdue": 0}}
    assert second == {"alerts": {"raised": 0, "cleared": 0}, "counts": {"reminded": 0, "overdue": 0}}
    assert len(posted) == 3


def test_an_alert_reaches_the_incidents_outbox_once_per_channel(store, keeper, paper):
    from incidents.models import Notification, NotificationChannel

    NotificationChannel.objects.create(name="黄浦值班", kind="email", target="duty@example.cn", region=store.region)
    services.part_receive(
        part=paper,
        depot=store,
        quantity=30,
        lot_number="S",
        actor=keeper,
        expires_on=timezone.localdate() + timedelta(5),
    )

    services.parts_alerts_refresh()
    services.parts_alerts_refresh()

    (row,) = Notification.objects.filter(notice_key__startswith="parts:expiring:hp-store:PAP-80:S:")
    assert row.incident_id is None
