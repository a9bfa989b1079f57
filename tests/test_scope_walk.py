"""Every URL and every WebSocket, as every role scoped to one district: nothing of the other district comes back.

The list of URLs is not written by hand: it is the URLconf (django.urls.get_resolver) and the staff API's OpenAPI
schema, with path parameters filled from real objects and query parameters taken from the schema (each value of
an enum, so JSON, CSV and XLSX reports are all read; and the other district's codes in every filter, which a
filter must not let through). The WebSockets are the ASGI application's routes. A new page, endpoint or socket
is walked as soon as it is routed; a path parameter the walk cannot fill fails the test until it is taught one.
"""

import io
import re
from datetime import date
from zipfile import BadZipFile

import pytest
from asgiref.sync import sync_to_async
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from openpyxl import load_workbook

from accounts.roles import Role
from fleet import services as fleet_services
from incidents import services as incident_services
from incidents.models import Attachment, EscalationChain
from reconciliation import services as recon_services
from reconciliation.models import ReconItem, Tariff
from tests.factories import KioskFactory, RegionFactory, SiteFactory, UserFactory
from tests.reconciliation.conftest import Books, at

DAY = date(2026, 11, 18)
AFTER_WINDOW = date(2026, 11, 25)
# Pages that are not the product's own: Django's admin (staff only, its own permission model) and the
# password-reset views, whose parameters are signed tokens.
FOREIGN_PREFIXES = ("admin/", "accounts/")
# Citizens' pages (docs/citizen-guidance.md): no login, any hall's status to anyone, by design. What they must never
# show — people — is tested in tests/guidance/test_public_views.py.
PUBLIC_PREFIXES = ("p/",)
PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>|\(\?P<(?P<regex_name>\w+)>[^)]*\)")


def _tariffs():
    from decimal import Decimal

    Tariff.objects.create(
        service_code="ID_CARD",
        name="居民身份证工本费",
        amount=Decimal("20.00"),
        effective_from=date(2026, 1, 1),
        accepted_channels=["card", "wechat", "alipay", "unionpay_qr", "cash"],
    )


def _district(books: Books, code: str, name: str, prefix: str) -> dict:
    """A district like the demo's: a service hall, two kiosks (one degraded, one in maintenance), a queued
    command, a day's journal with the usual troubles, its ledger, and the items a run leaves."""
    region = RegionFactory(code=code, name=name)
    site = SiteFactory(region=region, code=f"{prefix}-walk-hall", name=f"{name}政务服务中心")
    kiosk = KioskFactory(site=site, serial=f"{prefix.upper()}-WALK-0001")
    spare = KioskFactory(site=site, serial=f"{prefix.upper()}-WALK-0002")
    fleet_services.kiosk_record_heartbeat(
        kiosk=kiosk,
        beat=fleet_services.HeartbeatInput(
            sent_at=timezone.now(), components={"receipt_printer": "user_error"}, error_codes=["E-PRN-001"]
        ),
    )
    fleet_services.kiosk_start_maintenance(kiosk=spare, actor=None, reason="更换打印机")
    command = fleet_services.command_enqueue(kiosk=kiosk, kind="restart")
    t = prefix.upper()
    books.journal(
        kiosk,
        [
            {"txn_id": f"{t}1", "channel": "card", "payer": f"A{t}0001"},  # never settled
            {"txn_id": f"{t}2"},  # settled for ten times the amount
            {"txn_id": f"{t}3", "ref": f"K-{t}", "time": "09:00"},  # two ledger entries fit
        ],
    )
    books.ledger(ref=f"ORD-{t}2", kiosk=kiosk, payer=f"A-{t}2", amount="200.00")
    books.ledger(ref=f"K-{t}-typo", kiosk=kiosk, payer=f"A-{t}3", paid=at(DAY, "09:01"))
    books.ledger(ref=f"K-{t}-other", kiosk=kiosk, payer="", paid=at(DAY, "09:02"))
    # An incident of the district (a citizen's report of the jammed printer) and its own escalation chain.
    reporter = UserFactory(username="walk-reporter", role="operations_manager", regions="all")
    incident, _created = incident_services.incident_report(
        report=incident_services.ManualReport(
            kiosk=kiosk, fault_kind="module_failure", symptom="打印机卡纸", observed_at=timezone.now()
        ),
        actor=reporter,
    )
    chain = EscalationChain.objects.create(name=f"{name} P1", severity=1, region=region)
    photo = Attachment.objects.create(
        incident=incident, file=ContentFile(b"\xff\xd8\xff\xe0", name="walk.jpg"), caption="现场照片"
    )
    # A spare-parts store of the district named like its hall (so the depot pages are walked with its code), holding
    # a lot of a catalog part, with a count under way.
    from parts import services as parts_services
    from parts.models import Depot, Part

    part, _created = Part.objects.get_or_create(part_number="WALK-PRN", defaults={"name": "凭条打印机"})
    depot = Depot.objects.create(code=site.code, name=f"{name}备件库", kind=Depot.Kind.STORE, region=region)
    parts_services.part_receive(part=part, depot=depot, quantity=3, lot_number=f"{t}-LOT", actor=reporter)
    parts_services.stock_count_start(depot=depot, actor=reporter)
    return {
        "region": region,
        "site": site,
        "kiosk": kiosk,
        "command": command,
        "prefix": t,
        "incident": incident,
        "chain": chain,
        "photo": photo,
    }


def build_world() -> dict:
    _tariffs()
    books = Books(DAY)
    mine = _district(books, "huangpu", "黄浦区", "hp")
    theirs = _district(books, "xuhui", "徐汇区", "xh")
    books.ledger(ref="ORD-NOBODY", kiosk=None, payer="A-NOBODY")  # a settlement no kiosk claims: city-wide only
    books.run(today=AFTER_WINDOW)
    for district in (mine, theirs):
        district["items"] = list(
            ReconItem.objects.filter(kiosk=district["kiosk"]).exclude(outcome="matched").order_by("id")
        )
    theirs["items"] += list(ReconItem.objects.filter(kiosk=None))
    # One of their items waits for a write-off approval, so pending lists have something to leak.
    boss = UserFactory(username="walk-boss", role="finance_supervisor", regions="all")
    recon_services.item_write_off_request(item=theirs["items"][0], reason="小额", actor=boss)
    users = {role: UserFactory(username=f"walk-{role}", role=role, regions=[mine["region"]]) for role in Role.values}
    return {"mine": mine, "theirs": theirs, "users": users}


def forbidden_strings(district: dict) -> set[str]:
    """What must never reach a user of the other district: kiosk serials, the site's code, item uids."""
    strings = {district["kiosk"].serial, district["kiosk"].serial.replace("-0001", "-0002"), district["site"].code}
    strings.add(district["incident"].reference)
    strings.add(f"{district['prefix']}-LOT")  # their spare-parts lot
    for item in district["items"]:
        strings |= {str(item.uid), item.uid.hex}
    return strings


def path_values(district: dict) -> dict[str, str]:
    """How to fill a path parameter, by its name, from a district's objects."""
    return {
        "serial": district["kiosk"].serial,
        "uid": str(district["items"][0].uid),
        "command_id": str(district["command"].id),
        "business_date": DAY.isoformat(),
        "day": DAY.isoformat(),
        "date": DAY.isoformat(),
        "code": district["site"].code,
        "site": district["site"].code,
        "region": district["region"].code,
        "incident_id": str(district["incident"].pk),
        "pk": str(district["incident"].pk),
        "item_id": str(district["incident"].checklist.order_by("position").first().pk),
        "attachment_id": str(district["photo"].pk),
        "photo_id": "1",  # a work order's photo (the order's uid is not one of theirs: a 404 either way)
        "incident_pk": str(district["incident"].pk),
        "position": "1",
        "chain_id": str(district["chain"].pk),
        "fault_kind": "module_failure",
        "severity": "1",
        "part_number": "WALK-PRN",
        "action": "receive",
        "what": "stock",
        "fmt": "csv",  # an export's format
    }


def urlconf_routes() -> list[str]:
    """Every route of the URLconf, as a string with its parameters in place (e.g. 'kiosks/<str:serial>/')."""

    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, route)
            elif isinstance(pattern, URLPattern):
                yield route

    return sorted(set(walk(get_resolver())))


def fill(route: str, values: dict[str, str]) -> str | None:
    missing = []

    def value(match):
        name = match.group("name") or match.group("regex_name")
        if name not in values:
            missing.append(name)
            return ""
        return values[name]

    path = "/" + PARAM.sub(value, route).replace("\\", "")
    return None if missing else path


def schema_requests(values: dict[str, str], theirs: dict) -> list[tuple[str, dict, set[str]]]:
    """(path, query, injected) for every GET of the staff API's schema: plain, once per value of each enum
    parameter, and once with the other district's codes in every filter that names a kiosk, site or region."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    their_codes = {
        "kiosk": theirs["kiosk"].serial,
        "serial": theirs["kiosk"].serial,
        "site": theirs["site"].code,
        "region": theirs["region"].code,
        # Not a tracked string itself: a leak shows as their serial and item uids in the answer.
        "q": f"ORD-{theirs['prefix']}2",
    }
    requests = []
    for template, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "missing"), template)
        query_params = [p for p in operations["get"].get("parameters", []) if p["in"] == "query"]
        requests.append((path, {}, set()))
        for param in query_params:
            for choice in param.get("schema", {}).get("enum", []):
                requests.append((path, {param["name"]: choice}, set()))
        injected = {p["name"]: their_codes[p["name"]] for p in query_params if p["name"] in their_codes}
        if injected:
            requests.append((path, injected, set(injected.values())))
    return requests


def body_text(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Type", "").startswith("application/vnd.openxmlformats"):
        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True)
        except BadZipFile:
            return content.decode("utf-8", "replace")
        return "\n".join(str(cell) for sheet in workbook for row in sheet.iter_rows(values_only=True) for cell in row)
    return content.decode("utf-8", "replace")


@pytest.mark.django_db
def test_no_page_endpoint_export_or_report_shows_a_district_user_anything_of_another_district(client):
    world = build_world()
    mine, theirs = world["mine"], world["theirs"]
    forbidden = forbidden_strings(theirs)
    own_values, their_values = path_values(mine), path_values(theirs)

    routes = urlconf_routes()
    unfillable = [r for r in routes if fill(r, own_values) is None and not r.startswith(FOREIGN_PREFIXES)]
    assert not unfillable, f"teach the walk these path parameters: {unfillable}"
    requests = []
    for route in routes:
        if route.startswith(PUBLIC_PREFIXES):
            continue
        for values, from_theirs in ((own_values, False), (their_values, True)):
            path = fill(route, values)
            if path is not None and (not from_theirs or path != fill(route, own_values)):
                requests.append((path, {}, set(), from_theirs))
    requests += [(p, q, i, False) for p, q, i in schema_requests(own_values, theirs)]
    requests += [(p, q, i, True) for p, q, i in schema_requests(their_values, theirs)]

    leaks, answered, seen_own = [], 0, set()
    own = forbidden_strings(mine)
    for role, user in world["users"].items():
        client.force_login(user)
        for path, query, injected, _from_theirs in requests:
            response = client.get(path, query)
            if response.status_code != 200:
                continue
            answered += 1
            text = body_text(response)
            found = {s for s in forbidden - injected if s in text}
            if found:
                leaks.append(f"{role} GET {path}?{query} -> {sorted(found)}")
            seen_own |= {s for s in own if s in text}

    assert not leaks, "out-of-scope data answered:\n" + "\n".join(leaks)
    # The walk really read pages with data in them: the district's own kiosk and items were shown.
    assert answered > 100
    assert mine["kiosk"].serial in seen_own and str(mine["items"][0].uid) in seen_own


@pytest.mark.django_db
def test_the_walk_would_catch_a_report_that_forgets_the_scope(client, monkeypatch):
    """The walk's own check: with the scoping taken out of the daily report, the other district shows."""
    from reconciliation import selectors

    world = build_world()
    monkeypatch.setattr(selectors, "kiosk_scope_for", lambda user: None)
    client.force_login(world["users"][Role.FINANCE_OFFICER])

    text = body_text(client.get(f"/api/v1/recon/reports/{DAY}/", {"export": "csv"}))

    assert world["theirs"]["kiosk"].serial in text


# --- WebSockets ------------------------------------------------------------------------------------------


def websocket_paths() -> list[str]:
    from config.asgi import websocket_urlpatterns

    return ["/" + str(pattern.pattern).lstrip("^").rstrip("$") for pattern in websocket_urlpatterns]


async def _connect(user, path):
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from config.asgi import application

    def make_session():
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        return session.session_key

    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost")])
    communicator.scope["headers"].append((b"cookie", f"sessionid={await sync_to_async(make_session)()}".encode()))
    connected, _code = await communicator.connect()
    return communicator, connected


def _changes_in(district: dict) -> None:
    """Something happens to each kind of thing a socket reports on, in the district."""
    fleet_services.kiosk_record_heartbeat(
        kiosk=district["kiosk"],
        beat=fleet_services.HeartbeatInput(sent_at=timezone.now(), components={"card_reader": "user_error"}),
    )
    recon_services.item_record_contact(item=district["items"][1], note="已告知市民", actor=None)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_no_socket_carries_anything_of_another_district_to_any_role():
    world = await sync_to_async(build_world)()
    forbidden = forbidden_strings(world["theirs"])
    paths = websocket_paths()
    assert paths, "the ASGI application routes no WebSocket"

    sockets = []
    for role, user in world["users"].items():
        for path in paths:
            communicator, connected = await _connect(user, path)
            if connected:
                sockets.append((role, path, communicator))
    await sync_to_async(_changes_in)(world["theirs"])
    await sync_to_async(_changes_in)(world["mine"])

    leaks, heard = [], 0
    for role, path, communicator in sockets:
        while not await communicator.receive_nothing(timeout=0.5):
            message = await communicator.receive_from()
            heard += 1
            if found := {s for s in forbidden if s in message}:
                leaks.append(f"{role} {path} -> {sorted(found)}")
        await communicator.disconnect()

    assert not leaks, "out-of-scope data pushed:\n" + "\n".join(leaks)
    assert heard > 0, "no socket heard the changes of the user's own district"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_counter_staff_cannot_subscribe_to_the_live_board():
    clerk = await sync_to_async(UserFactory)(username="walk-clerk", role="counter_staff", regions="all")

    communicator, connected = await _connect(clerk, "/ws/fleet/")

    assert not connected


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_queue_socket_tells_a_district_user_of_changes_in_their_district_only():
    world = await sync_to_async(build_world)()
    officer = world["users"][Role.FINANCE_OFFICER]
    city = await sync_to_async(UserFactory)(username="walk-city", role="finance_officer", regions="all")
    district_socket, connected = await _connect(officer, "/ws/reconciliation/")
    city_socket, city_connected = await _connect(city, "/ws/reconciliation/")
    assert connected and city_connected

    await sync_to_async(recon_services.item_record_contact)(
        item=world["theirs"]["items"][1], note="已告知市民", actor=city
    )

    assert await city_socket.receive_json_from(timeout=2) == {"business_date": DAY.isoformat()}
    assert await district_socket.receive_nothing(timeout=0.5)
    await sync_to_async(recon_services.item_record_contact)(
        item=world["mine"]["items"][1], note="已告知市民", actor=officer
    )
    assert await district_socket.receive_json_from(timeout=2) == {"business_date": DAY.isoformat()}
    await district_socket.disconnect()
    await city_socket.disconnect()
