"""Notifications leave from the outbox to a local HTTP receiver standing in for WeCom, DingTalk and a webhook, and
to the in-memory mailbox: in Chinese, with the incident's link, each once; a failing channel is retried with
backoff and every failure is on the timeline; a hall's mass outage is announced once, by the hall."""

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from fleet import services as fleet_services
from fleet.models import Kiosk
from incidents import notify
from incidents.models import Incident, Notification, NotificationChannel, TimelineEntry
from tests.incidents.conftest import beat, run_engine

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]

DINGTALK_SECRET = "SECtest-secret-0123456789"


class Receiver:
    """An HTTP server on 127.0.0.1 that answers like the robots do and keeps what it was sent."""

    def __init__(self):
        self.requests: list[dict] = []
        self.failures: dict[str, list[int]] = {}  # path → statuses to answer next, one per request
        self.delay_s = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                parts = urllib.parse.urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver.lock:
                    receiver.requests.append({"path": parts.path, "query": query, "body": json.loads(raw or b"{}")})
                    queued = receiver.failures.get(parts.path) or []
                    status = queued.pop(0) if queued else 200
                answer = {"errcode": 0, "errmsg": "ok"}
                if parts.path == "/robot/send" and not receiver.dingtalk_signature_ok(query):
                    answer = {"errcode": 310000, "errmsg": "sign not match"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def dingtalk_signature_ok(query: dict) -> bool:
        """DingTalk's check: sign = base64(HMAC-SHA256(secret, "timestamp\\nsecret")), timestamp within an hour."""
        timestamp, sign = query.get("timestamp"), query.get("sign")
        if not timestamp or not sign or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
            return False
        expected = hmac.new(
            DINGTALK_SECRET.encode(), f"{timestamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
        ).digest()
        return hmac.compare_digest(base64.b64encode(expected).decode(), sign)

    def to(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    server = Receiver()
    settings.KIOSKOPS = {
        **settings.KIOSKOPS,
        "NOTIFY_ENDPOINTS": {"wecom": server.url, "dingtalk": server.url},
        "PUBLIC_BASE_URL": "https://ops.example.cn",
    }
    yield server
    server.close()


@pytest.fixture
def channels(receiver, region):
    return {
        "wecom": NotificationChannel.objects.create(name="运维群（企业微信）", kind="wecom", target="wecom-key-1"),
        "dingtalk": NotificationChannel.objects.create(
            name="值班群（钉钉）", kind="dingtalk", target="ding-token-1", secret=DINGTALK_SECRET
        ),
        "webhook": NotificationChannel.objects.create(
            name="工单系统", kind="webhook", target=f"{receiver.url}/hooks/kioskops?token=abc", region=region
        ),
        "email": NotificationChannel.objects.create(name="值班邮箱", kind="email", target="duty@example.cn"),
    }


def printer_fault(make_kiosk, serial="KS-30001"):
    make_kiosk("KS-39999")  # the hall keeps a working kiosk
    kiosk = make_kiosk(serial)
    beat(kiosk, receipt_printer="hardware_error")
    run_engine()
    return Incident.objects.get(kiosk=kiosk)


def later(minutes=0, seconds=1):
    return timezone.now() + timedelta(minutes=minutes, seconds=seconds)


def test_a_new_incident_is_announced_in_chinese_to_each_channel_once_with_its_link(make_kiosk, channels, receiver):
    incident = printer_fault(make_kiosk)

    sent = notify.send_due(now=later())

    assert sent == 4
    link = f"https://ops.example.cn/incidents/{incident.pk}/"
    (wecom,) = receiver.to("/cgi-bin/webhook/send")
    assert wecom["query"] == {"key": "wecom-key-1"}
    assert wecom["body"]["msgtype"] == "text"
    content = wecom["body"]["text"]["content"]
    for text in ("新故障事件", incident.reference, "和平区政务服务大厅", "黄浦区", "P3 · 中", link):
        assert text in content
    (ding,) = receiver.to("/robot/send")
    assert ding["query"]["access_token"] == "ding-token-1"
    assert receiver.dingtalk_signature_ok(ding["query"])
    assert incident.reference in ding["body"]["text"]["content"]
    (hook,) = receiver.to("/hooks/kioskops")
    assert hook["query"] == {"token": "abc"}
    assert hook["body"]["title"].startswith("【P") and incident.reference in hook["body"]["title"]
    assert link in hook["body"]["message"]
    assert {k: hook["body"][k] for k in ("event", "reference", "hall", "district", "url")} == {
        "event": "opened",
        "reference": incident.reference,
        "hall": "和平区政务服务大厅",
        "district": "黄浦区",
        "url": link,
    }
    assert hook["body"]["type"] == "info" and hook["body"]["version"] == "1.0"
    (email,) = mail.outbox
    assert email.to == ["duty@example.cn"] and incident.reference in email.subject and link in email.body
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert incident.timeline.filter(kind=TimelineEntry.Kind.NOTIFIED).count() == 4

    assert notify.send_due(now=later(minutes=5)) == 0
    assert len(receiver.requests) == 3 and len(mail.outbox) == 1


def test_a_failing_channel_is_retried_with_backoff_recorded_each_time_and_sent_once(make_kiosk, channels, receiver):
    NotificationChannel.objects.exclude(kind="webhook").delete()
    receiver.failures["/hooks/kioskops"] = [500, 500]
    incident = printer_fault(make_kiosk)
    row = Notification.objects.get()
    t0 = later()

    notify.send_due(now=t0)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 1, t0 + timedelta(minutes=1))
    assert "500" in row.last_error

    assert notify.send_due(now=t0 + timedelta(seconds=30)) == 0  # not due yet: nothing is tried
    assert len(receiver.requests) == 1

    notify.send_due(now=t0 + timedelta(minutes=1))
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, t0 + timedelta(minutes=3))

    assert notify.send_due(now=t0 + timedelta(minutes=3)) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 3)
    failures = list(incident.timeline.filter(kind=TimelineEntry.Kind.NOTIFY_FAILED).values_list("result", flat=True))
    assert len(failures) == 2 and all("500" in text for text in failures)
    assert incident.timeline.filter(kind=TimelineEntry.Kind.NOTIFIED).count() == 1

    notify.send_due(now=t0 + timedelta(hours=2))
    assert len(receiver.requests) == 3  # two refused, one delivered, none again


def test_a_wrong_dingtalk_secret_is_a_failure_not_a_message_lost_silently(make_kiosk, channels, receiver):
    NotificationChannel.objects.exclude(kind="dingtalk").delete()
    NotificationChannel.objects.update(secret="SECwrong")
    incident = printer_fault(make_kiosk)

    notify.send_due(now=later())

    row = Notification.objects.get()
    assert row.status == "failed" and "310000" in row.last_error
    assert incident.timeline.filter(kind=TimelineEntry.Kind.NOTIFY_FAILED).exists()


def test_a_channel_that_keeps_failing_is_given_up_on_the_record_and_can_be_sent_again(
    make_kiosk, channels, receiver, settings, manager
):
    settings.KIOSKOPS = {**settings.KIOSKOPS, "NOTIFY_MAX_ATTEMPTS": 3}
    NotificationChannel.objects.exclude(kind="wecom").delete()
    receiver.failures["/cgi-bin/webhook/send"] = [503] * 3
    incident = printer_fault(make_kiosk)

    for minutes in (0, 31, 62, 93):
        notify.send_due(now=later(minutes=minutes))

    row = Notification.objects.get()
    assert (row.status, row.attempts, row.next_attempt_at) == ("gave_up", 3, None)
    last = incident.timeline.filter(kind=TimelineEntry.Kind.NOTIFY_FAILED).order_by("-id").first()
    assert "放弃" in last.result
    assert len(receiver.requests) == 3

    notify.notification_send_again(notification=row, actor=manager)
    assert notify.send_due(now=later()) == 1
    row.refresh_from_db()
    assert row.status == "sent"
    assert incident.timeline.filter(kind=TimelineEntry.Kind.NOTIFIED).count() == 1


def test_two_senders_running_at_once_send_each_message_exactly_once(make_kiosk, channels, receiver, hall):
    NotificationChannel.objects.filter(kind__in=["dingtalk", "email"]).delete()
    make_kiosk("KS-39999")
    for n in range(6):
        beat(make_kiosk(f"KS-3100{n}"), receipt_printer="hardware_error")
    run_engine()
    assert Notification.objects.count() == 12
    receiver.delay_s = 0.05
    at = later()
    results, errors = [], []

    def sender():
        try:
            results.append(notify.send_due(now=at))
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sum(results) == 12
    assert len(receiver.requests) == 12
    bodies = [r["body"].get("text", {}).get("content") or r["body"]["title"] for r in receiver.requests]
    assert len(set(bodies)) == 12  # twelve different messages, none twice
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert TimelineEntry.objects.filter(kind=TimelineEntry.Kind.NOTIFIED).count() == 12


def test_a_kiosk_of_a_mass_outage_is_not_announced_on_its_own_only_the_hall_once(make_kiosk, channels, receiver):
    NotificationChannel.objects.exclude(kind="wecom").delete()
    kiosks = [make_kiosk(f"KS-3200{n}") for n in range(4)]
    # The first kiosk goes silent on its own: its message waits for the grouping wait.
    Kiosk.objects.filter(pk=kiosks[0].pk).update(offline_after=timezone.now() - timedelta(minutes=5))
    fleet_services.health_sweep()
    run_engine()
    first = Incident.objects.get()
    assert Notification.objects.get().next_attempt_at > timezone.now()
    # Then the rest of the hall: a mass outage, the first kiosk's incident one of its children.
    Kiosk.objects.filter(pk__in=[k.pk for k in kiosks[1:]]).update(offline_after=timezone.now() - timedelta(minutes=5))
    fleet_services.health_sweep()
    run_engine()
    parent = Incident.objects.get(is_group=True)
    first.refresh_from_db()
    assert first.parent_id == parent.pk

    notify.send_due(now=later(minutes=2))

    (message,) = receiver.requests
    assert parent.reference in message["body"]["text"]["content"]
    assert "大面积故障" in message["body"]["text"]["content"] or "4" in message["body"]["text"]["content"]
    assert Notification.objects.get(incident=first).status == "merged"
    assert Notification.objects.get(incident=parent).status == "sent"


def test_render_speaks_chinese_and_names_the_missed_deadline(make_kiosk, region):
    incident = printer_fault(make_kiosk)

    subject, body = notify.render(incident, "sla:acknowledge")

    assert subject.startswith("【P") and "SLA" in subject and incident.reference in subject
    assert "已超时" in body or "超时" in body
    assert "和平区政务服务大厅" in body and "黄浦区" in body


def test_a_notice_of_another_app_goes_once_to_each_matching_channel_and_never_to_a_security_contact(
    channels, receiver, region
):
    from core import notices
    from tests.factories import RegionFactory

    elsewhere = RegionFactory(code="xuhui", name="徐汇区")
    NotificationChannel.objects.create(name="安全联系人", kind="email", target="sec@example.cn", security=True)
    NotificationChannel.objects.create(name="徐汇区值班", kind="email", target="xh@example.cn", region=elsewhere)
    NotificationChannel.objects.create(name="只收 P1", kind="email", target="p1@example.cn", max_severity=1)
    notice = notices.Notice(
        key="parts:reorder:D-01:PN-1001:2026-11-26",
        subject="备件低于再订货点：热敏打印机芯",
        body="黄浦区备件库 热敏打印机芯 现有 1 件，再订货点 3 件。",
        region_id=region.pk,
    )

    assert notices.post([notice]) == 4
    assert notices.post([notice]) == 0  # the same key again is the same notice
    sent = notify.send_due(now=later())

    assert sent == 4
    (wecom,) = receiver.to("/cgi-bin/webhook/send")
    assert "热敏打印机芯 现有 1 件" in wecom["body"]["text"]["content"]
    (hook,) = receiver.to("/hooks/kioskops")
    assert hook["body"]["title"] == "备件低于再订货点：热敏打印机芯"
    assert hook["body"]["notice"] == "parts:reorder:D-01:PN-1001:2026-11-26"
    assert [message.to for message in mail.outbox] == [["duty@example.cn"]]
    assert not TimelineEntry.objects.exists()


def test_a_drill_notice_says_so_in_its_subject(channels, receiver):
    from core import notices

    notices.post([notices.Notice(key="drill:reminder:2026Q4", subject="本季度应急演练待安排", body="…", drill=True)])
    notify.send_due(now=later())

    assert mail.outbox[0].subject == "【演练】本季度应急演练待安排"


def test_a_notice_channel_that_keeps_failing_is_given_up_without_an_incident_to_write_on(channels, receiver, settings):
    from core import notices

    settings.KIOSKOPS = {**settings.KIOSKOPS, "NOTIFY_MAX_ATTEMPTS": 1}
    NotificationChannel.objects.exclude(kind="webhook").delete()
    receiver.failures["/hooks/kioskops"] = [500]
    notices.post([notices.Notice(key="parts:expired:L-1", subject="备件已过期", body="…")])

    assert notify.send_due(now=later()) == 0
    row = Notification.objects.get(notice_key="parts:expired:L-1")
    assert row.status == Notification.Status.GAVE_UP and row.incident_id is None
