"""Incident tests. The engine reads only committed rows (core/db.py), so tests that run it commit for real
(`transaction=True`); the flush between such tests empties the seeded playbooks and policies, which `policies`
puts back the way migration 0003 does."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from fleet import services as fleet_services
from fleet.services import HeartbeatInput
from incidents import engine
from tests.factories import KioskFactory, SiteFactory, UserFactory

seed_migration = importlib.import_module("incidents.migrations.0003_seed_playbooks_and_policies")
error_codes_migration = importlib.import_module("fleet.migrations.0002_seed_error_codes")
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def policies(db):
    seed_migration.seed(django_apps, None)
    error_codes_migration.seed(django_apps, None)


@pytest.fixture
def hall(region):
    return SiteFactory(region=region, code="hall-a", name="和平区政务服务大厅", opening_hours=ALWAYS_OPEN)


@pytest.fixture
def make_kiosk(hall):
    def _make(serial, site=None, **components):
        kiosk = KioskFactory(site=site or hall, serial=serial)
        beat(kiosk, **components)
        return kiosk

    return _make


def beat(kiosk, at=None, error_codes=(), **components):
    """A heartbeat reporting these components (the rest OK)."""
    state = {"card_reader": "ok", "receipt_printer": "ok", "network": "ok", **components}
    kiosk.refresh_from_db()
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=HeartbeatInput(sent_at=None, components=state, error_codes=list(error_codes)),
        received_at=at or timezone.now(),
    )


def run_engine(**kwargs):
    return engine.run_until_drained(**kwargs)


@pytest.fixture
def support(region):
    return UserFactory(username="support", role="technical_support", regions=[region], first_name="伟", last_name="王")
