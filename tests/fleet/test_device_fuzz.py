"""The device API under generated requests, in both ingestion modes: bodies (well-formed heartbeats with wrong
values, text with NUL and unpaired surrogates, a payment session flag of every type, timestamps from year 1 to 9999, numbers of every size, arbitrary
JSON and bytes), encodings (UTF-8 with and without BOM, UTF-16, UTF-32, Latin-1) and headers (content types,
tokens). Every request is answered 2xx, and then its heartbeat is stored once the buffer is drained, or 4xx and
nothing is stored; never 5xx. Afterwards nothing was set aside, a normal heartbeat is stored and a silent kiosk
still goes offline. Bounded: a few hundred requests per mode, well under a minute each."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fleet import services
from fleet.models import Heartbeat, HeartbeatDeadLetter, Kiosk, RemoteCommand
from fleet.vocabulary import Component, ComponentState
from tests.factories import KioskFactory

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/device/heartbeat"
EXAMPLES = 200

# --- What a kiosk (or something pretending to be one) might send -------------------------------------------

nasty_chars = st.sampled_from(["\x00", "\ud800", "\udfff", "\ufeff", "\u2028", "é", "终端", "\U0001f4a5", "\\", '"'])
text = st.lists(st.one_of(st.characters(), nasty_chars), max_size=12).map("".join)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


timestamps = st.one_of(
    st.just(None).map(lambda _: django_timezone.now().isoformat()),
    st.integers(min_value=-(10**6), max_value=10**6).map(
        lambda seconds: (django_timezone.now() + timedelta(seconds=seconds)).isoformat()
    ),
    st.builds(
        lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        offsets,
    ),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(_iso),  # no offset
    st.sampled_from(["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59-14:00", "2026-02-30T00:00:00Z", ""]),
    text,
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
scalars = st.one_of(st.none(), numbers, text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=8,
)
components = st.dictionaries(
    st.one_of(st.sampled_from(Component.values), text),
    st.one_of(st.sampled_from(ComponentState.values), scalars),
    max_size=5,
)
heartbeat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "sent_at": st.one_of(timestamps, scalars),
        "software_version": st.one_of(text, scalars),
        "components": st.one_of(components, json_values),
        "error_codes": st.one_of(st.lists(st.one_of(text, scalars), max_size=4), json_values),
        "metrics": st.one_of(st.dictionaries(text, numbers, max_size=4), json_values),
        "payment_session_active": st.one_of(st.booleans(), st.booleans(), scalars, json_values),
        "extra": json_values,
    },
)
command_result_bodies = st.fixed_dictionaries(
    {},
    optional={
        "status": st.one_of(st.sampled_from(["succeeded", "failed"]), scalars),
        "detail": st.one_of(text, scalars),
        "data": st.one_of(st.dictionaries(text, json_values, max_size=4), json_values),
    },
)
encodings = st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"])


def _encode(value, encoding: str, ascii_only: bool) -> bytes:
    raw = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    errors = "surrogatepass" if encoding.startswith("utf") else "replace"
    return raw.encode(encoding, errors)


def _bodies(structured):
    return st.one_of(
        st.builds(_encode, structured, encodings, st.booleans()),
        st.builds(_encode, json_values, encodings, st.booleans()),
        st.binary(max_size=64),
    )


content_types = st.sampled_from(
    ["application/json", "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
     "text/plain", "application/x-www-form-urlencoded", ""]
)  # fmt: skip
authorizations = st.sampled_from(["valid", "valid", "valid", "unknown", "missing", "malformed", "not ascii"])


def _authorization(kind: str, token: str) -> dict:
    header = {
        "valid": f"Device {token}",
        "unknown": "Device kt_" + "0" * 40,
        "missing": None,
        "malformed": f"Device {token} again",
        "not ascii": "Device kt_终端",
    }[kind]
    return {} if header is None else {"HTTP_AUTHORIZATION": header}


# --- The run ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["direct", "buffered"])
def drain(request, settings):
    """Apply what waits in the buffer (buffered mode) as the consumer would; nothing to do in direct mode."""
    settings.KIOSKOPS = {**settings.KIOSKOPS, "DEVICE_HEARTBEATS_PER_MINUTE": 1_000_000}
    if request.param == "buffered":
        return request.getfixturevalue("buffered_ingest")
    return lambda: 0


def test_no_request_to_the_device_api_is_answered_5xx_or_stored_unless_answered_2xx(client, site, drain):
    kiosk, silent = KioskFactory(site=site), KioskFactory(site=site)
    # The silent kiosk reports once, before the run, and never again.
    assert (
        _post(client, URL, json.dumps({"sent_at": django_timezone.now().isoformat()}).encode(), silent).status_code
        == 200
    )
    drain()
    command = services.command_enqueue(kiosk=kiosk, kind="self_test")
    # A disruptive command too, so heartbeats with and without a payment in progress hold it back or hand it out.
    services.command_enqueue(kiosk=kiosk, kind="restart")
    result_url = f"/api/v1/device/commands/{command.pk}/result"
    answered = {"2xx": 0, "4xx": 0}

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        heartbeat=st.booleans(),
        heartbeat_body=_bodies(heartbeat_bodies),
        result_body=_bodies(command_result_bodies),
        content_type=content_types,
        authorization=authorizations,
    )
    def request_once(heartbeat, heartbeat_body, result_body, content_type, authorization):
        stored = Heartbeat.objects.filter(kiosk=kiosk).count()
        result_before = RemoteCommand.objects.values_list("status", "result_data").get(pk=command.pk)
        headers = _authorization(authorization, kiosk.token)

        response = client.generic(
            "POST",
            URL if heartbeat else result_url,
            heartbeat_body if heartbeat else result_body,
            content_type,
            **headers,
        )
        drain()

        assert response.status_code < 500, response.content[:500]
        assert response["Content-Type"].startswith("application/json")
        assert 200 <= response.status_code < 300 or response.json()["code"]
        accepted = 200 <= response.status_code < 300
        if heartbeat:
            assert Heartbeat.objects.filter(kiosk=kiosk).count() == stored + accepted, "2xx means stored, 4xx not"
        elif not accepted:
            assert RemoteCommand.objects.values_list("status", "result_data").get(pk=command.pk) == result_before
        answered["2xx" if accepted else "4xx"] += 1

    request_once()

    assert answered["2xx"] and answered["4xx"], answered
    assert not HeartbeatDeadLetter.objects.exists(), "admission let through something storage refuses"
    normal = {"sent_at": django_timezone.now().isoformat(), "components": {"receipt_printer": "ok"}}
    assert _post(client, URL, json.dumps(normal).encode(), kiosk).status_code == 200
    drain()
    assert Heartbeat.objects.filter(kiosk=kiosk, components={"receipt_printer": "ok"}).exists()
    later = datetime.now(UTC) + timedelta(seconds=silent.heartbeat_interval_s + silent.grace_s + 5)
    services.health_sweep(now=later)
    assert Kiosk.objects.get(pk=silent.pk).status == "offline"


def _post(client, url, body: bytes, kiosk):
    return client.generic("POST", url, body, "application/json", HTTP_AUTHORIZATION=f"Device {kiosk.token}")
