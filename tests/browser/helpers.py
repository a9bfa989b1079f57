"""What the browser tests do as a person would (log in, wait for the live socket) and the fleet they look at."""

import importlib
import random
from datetime import timedelta

from django.utils import timezone

from fleet import services
from fleet.models import Heartbeat, Kiosk
from fleet.services import HeartbeatInput
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

PASSWORD = "correct-horse-battery"  # what tests.factories.UserFactory sets


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.form button[type=submit]")
    page.wait_for_url("**/")


def wait_until_live(page) -> None:
    """The socket is open and subscribed to the user's regions (the server joins the groups before accepting)."""
    page.wait_for_selector("#live-indicator[data-state=live]")


def heartbeat(kiosk: Kiosk, **kwargs) -> Kiosk:
    kwargs.setdefault("sent_at", timezone.now())
    kwargs.setdefault("components", {"receipt_printer": "ok", "card_reader": "ok", "network": "ok"})
    services.kiosk_record_heartbeat(kiosk=kiosk, beat=HeartbeatInput(**kwargs))
    kiosk.refresh_from_db()
    return kiosk


def seed_error_codes() -> None:
    """Put back the error-code catalog the migration seeds: the flush after each transactional test removed it."""
    from django.apps import apps

    importlib.import_module("fleet.migrations.0002_seed_error_codes").seed(apps, None)


def build_fleet() -> dict:
    """A small but varied fleet in one region (and one kiosk outside it): every status, a fraud alarm, a flapping
    kiosk, error codes, and a day of metrics on KS-HP-0001 for its charts. Returns names the tests use."""
    seed_error_codes()
    rng = random.Random(7)
    huangpu = RegionFactory(code="huangpu", name="黄浦区")
    jingan = RegionFactory(code="jingan", name="静安区")
    centre = SiteFactory(region=huangpu, code="hp-01", name="黄浦区政务服务中心", address="西藏南路 1 号")
    annex = SiteFactory(region=huangpu, code="hp-02", name="黄浦区外滩街道社区事务受理中心", address="中山东二路 9 号")
    other = SiteFactory(region=jingan, code="ja-01", name="静安区政务服务中心", address="天目中路 1 号")
    ok = {"receipt_printer": "ok", "card_reader": "ok", "qr_scanner": "ok", "cash_module": "ok", "network": "ok"}
    healthy_metrics = {"paper_pct": 72, "net_latency_ms": 85, "cpu_temp_c": 51}

    kiosks = [KioskFactory(site=centre, serial=f"KS-HP-{n:04d}") for n in range(1, 9)]
    kiosks += [KioskFactory(site=annex, serial=f"KS-HP-{n:04d}") for n in range(9, 13)]
    for kiosk in kiosks:
        heartbeat(kiosk, components=ok, metrics=healthy_metrics, software_version="3.4.2")
    heartbeat(kiosks[1], components=ok | {"receipt_printer": "user_error"}, error_codes=["E-PRN-001"])
    heartbeat(kiosks[2], components=ok | {"card_reader": "fraud_attempt"}, error_codes=["E-SEC-001"])
    heartbeat(kiosks[3], components=ok, metrics=healthy_metrics | {"paper_pct": 4}, error_codes=["E-PRN-002"])
    heartbeat(kiosks[9], components=ok | {"network": "offline"}, error_codes=["E-NET-001"])
    Kiosk.objects.filter(pk__in=[kiosks[5].pk, kiosks[10].pk]).update(
        offline_after=timezone.now() - timedelta(seconds=1)
    )
    services.health_sweep()
    Kiosk.objects.filter(pk=kiosks[4].pk).update(is_flapping=True)  # after the sweep, which would end it
    admin = UserFactory(username="ops-admin", regions="all", is_staff=True, is_superuser=True)
    services.kiosk_start_maintenance(kiosk=kiosks[6], actor=admin, reason="更换票据打印机")
    KioskFactory(site=annex, serial="KS-HP-0099", model="ZW-5000")  # provisioned, never reported
    KioskFactory(site=other, serial="KS-JA-0001")

    # A day of heartbeats for the first kiosk's charts, every 10 minutes, paper running down and refilled.
    now = timezone.now()
    Heartbeat.objects.bulk_create(
        Heartbeat(
            kiosk=kiosks[0],
            received_at=now - timedelta(minutes=10 * i),
            sent_at=now - timedelta(minutes=10 * i),
            components=ok,
            error_codes=["E-NET-002"] if i in (30, 31) else [],
            metrics={
                "paper_pct": (100 - (143 - i) % 80),
                "net_latency_ms": 80 + rng.randint(0, 60) + (900 if i in (30, 31) else 0),
                "cpu_temp_c": 48 + rng.randint(0, 8),
            },
        )
        for i in range(1, 144)
    )
    manager = UserFactory(username="hp-manager", first_name="王芳", role="operations_manager", regions=[huangpu])
    coordinator = UserFactory(username="hp-drill", role="drill_coordinator", regions=[huangpu])
    return {"manager": manager.username, "coordinator": coordinator.username, "site": centre.code}
