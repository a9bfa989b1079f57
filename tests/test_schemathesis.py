"""Property-based tests of the device and staff APIs against their own OpenAPI schema (schemathesis).

The schema is the application's own (what /api/schema/ serves to a logged-in user), the calls go to the WSGI
application in-process, and every operation is called with generated paths, queries and bodies: staff
operations with a city-wide superuser's API token, device operations with a kiosk's token. Every answer must be
a non-5xx, and a documented status must match the schema.

Bounded for CI: SCHEMATHESIS_EXAMPLES generated examples per operation (default 10), on top of schemathesis's
boundary cases (huge and negative numbers, empty and odd strings); the whole file runs in about 70 s on two busy
cores.
"""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from fleet import services
from incidents import services as incident_services
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
# Operations whose documented responses do not yet describe every body they send; only the 5xx check runs there.
# - The journal upload documents its 400 as the journal report, but a bad business date gets the API's error
#   shape ({"code", "detail", "errors"}); the schema should offer both (reconciliation/api/device_views.py).
SCHEMA_GAPS = {("PUT", "/api/v1/device/journals/{business_date}")}


@pytest.fixture
def in_process_wsgi():
    """Requests to the WSGI application share the test's transaction, as with Django's test client: the
    handler's end-of-request connection cleanup would otherwise close the connection the transaction lives in."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db, settings, in_process_wsgi):
    # A device rate limit high enough that the generated calls reach the endpoints' own checks.
    settings.KIOSKOPS = {**settings.KIOSKOPS, "DEVICE_HEARTBEATS_PER_MINUTE": 1_000_000}
    region = RegionFactory(code="huangpu", name="黄浦区")
    site = SiteFactory(region=region, code="hp-01")
    kiosk = KioskFactory(site=site, serial="KS-00001")
    services.kiosk_record_heartbeat(kiosk=kiosk, beat=services.HeartbeatInput(sent_at=None, components={}))
    staff = UserFactory(username="schema-staff", role="operations_manager", regions="all")
    staff.is_superuser = True
    staff.save()
    incident, _created = incident_services.incident_report(
        report=incident_services.ManualReport(
            kiosk=kiosk, fault_kind="module_failure", symptom="打印机卡纸", observed_at=timezone.now()
        ),
        actor=staff,
    )
    from workorders import services as workorder_services

    order = workorder_services.work_order_create(incident=incident, actor=staff)
    # Spare parts: a store of the district holding a lot, and a count under way, so the parts actions act on them.
    from parts import services as parts_services
    from parts.models import Depot, Part

    part = Part.objects.create(part_number="PRN-80T", name="凭条打印机")
    depot = Depot.objects.create(code="hp-store", name="黄浦区备件库", kind=Depot.Kind.STORE, region=region)
    receipt = parts_services.part_receive(part=part, depot=depot, quantity=5, lot_number="L-1", actor=staff)
    count = parts_services.stock_count_start(depot=depot, actor=staff)
    return {
        "staff": Token.objects.create(user=staff).key,
        "device": kiosk.token,
        "serial": kiosk.serial,
        "incident_id": incident.pk,
        "order_uid": str(order.uid),
        "parts": {"code": depot.code, "part_number": part.part_number, "lot": receipt.lot_id, "count": count.pk},
    }


def _load_schema():
    """The schema /api/schema/ serves to a logged-in user (drf-spectacular's generator, public=True: every
    operation), with calls going to the application in-process. Loaded at collection, before any database
    exists, so it is generated directly rather than fetched with a user's token; the staff API tests check that
    the served schema needs a login."""
    from drf_spectacular.generators import SchemaGenerator

    from config.wsgi import application

    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    loaded.app = application
    return loaded


schema = _load_schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_apis_never_answer_5xx_and_match_their_schema(case, tokens):
    if case.path_parameters and "serial" in case.path_parameters:
        # A generated serial almost never names a kiosk; the real one lets the calls reach the actions' own
        # checks (unknown serials are a 404, tested in tests/fleet/test_staff_api.py).
        case.path_parameters["serial"] = tokens["serial"]
    if case.path_parameters and "incident_id" in case.path_parameters:
        # Likewise an incident: the actions' own checks (state, input) answer, not a 404.
        case.path_parameters["incident_id"] = tokens["incident_id"]
    if case.path_parameters and "uid" in case.path_parameters and case.path.startswith("/api/v1/workorders/"):
        # And a work order: its actions answer for its status and the input, not a 404.
        case.path_parameters["uid"] = tokens["order_uid"]
    if case.path_parameters and case.path.startswith("/api/v1/parts/"):
        # And the parts' depot, part, lot and count: their actions answer for the input, not a 404.
        ours = tokens["parts"]
        for name, value in (("code", ours["code"]), ("part_number", ours["part_number"])):
            if name in case.path_parameters:
                case.path_parameters[name] = value
        if "id" in case.path_parameters:
            case.path_parameters["id"] = ours["count"] if "/counts/" in case.path else ours["lot"]
    device = case.path.startswith("/api/v1/device/")
    header = f"Device {tokens['device']}" if device else f"Token {tokens['staff']}"
    checks = [not_a_server_error]
    if (case.method.upper(), case.path) not in SCHEMA_GAPS:
        checks.append(response_schema_conformance)
    case.call_and_validate(headers={"Authorization": header}, checks=checks)
