"""Sending incident notifications: the outbox (incidents.Notification) drained by Celery, never by a request.

One round is claim → commit → send → record:

1. Claim, in a short transaction: the due rows (waiting, failed and due again, or `sending` past a dead sender's
   lease) are locked with SELECT … FOR UPDATE SKIP LOCKED, a few at a time. A mass outage's child is marked
   `merged` and not sent (its hall's parent incident announces the outage: one message per hall). The others are
   rendered — subject and body in Chinese, stored, so a retry sends the same words — and marked `sending` with a
   lease, attempts + 1. The transaction commits: a concurrent sender skipped the locked rows and no longer sees
   them as due.
2. Send, outside any transaction, each through its channel.
3. Record each result with a compare-and-swap on the claim (still `sending`, same attempt count) and its timeline
   entry in the same transaction: sent; or failed, due again after an exponential backoff (1, 2, 4 … minutes,
   at most 30); or given up after the last attempt. Every failure is on the incident's timeline.

A sender that dies between sending and recording leaves its row `sending`; after the lease it is sent again — the
one way a message can arrive twice, which no at-least-once delivery avoids. Nothing else sends a row twice.

Channels (docs/notifications.md):
- e-mail through Django's e-mail backend (the EMAIL_* settings; tests use the in-memory one);
- webhook through Apprise's JSON notifier (json:// or jsons://): {"version", "title", "message", "type",
  "attachments"} plus the incident's fields, documented in docs/notifications.md;
- WeCom and DingTalk group robots are posted here with httpx, following their documented APIs, not through
  Apprise: its plugins (2.3) post to fixed hosts that neither a test nor an outbound proxy can redirect, and they
  count any HTTP 200 as sent, while both robots answer a wrong key or a bad signature with 200 and an errcode —
  a message lost silently. KIOSKOPS["NOTIFY_ENDPOINTS"] = {"wecom": base URL, "dingtalk": base URL} overrides
  the hosts (tests point them at a local receiver).
"""

import base64
import hashlib
import hmac
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from core.people import person_name
from fleet.vocabulary import FaultKind
from incidents import services
from incidents.models import Incident, Notification, NotificationChannel, Severity, State, TimelineEntry

logger = logging.getLogger(__name__)

Status = Notification.Status
Kind = NotificationChannel.Kind

BATCH = 20  # rows claimed per transaction: a slow channel holds no more than this many back
LEASE = timedelta(minutes=5)  # a claim older than this belongs to a dead sender and is taken again
BACKOFF_CAP_MIN = 30
TIMEOUT_S = 10.0
ENDPOINTS = {"wecom": "https://qyapi.weixin.qq.com", "dingtalk": "https://oapi.dingtalk.com"}
# The milestones of the SLA, in the order they fall due: (name, deadline field, field set when it is met).
MILESTONES = (
    ("acknowledge", "acknowledge_due_at", "acknowledged_at"),
    ("remote", "remote_due_at", "first_remote_at"),
    ("onsite", "onsite_due_at", "onsite_at"),
    ("resolve", "resolve_due_at", "resolved_at"),
)


def max_attempts() -> int:
    return int(settings.KIOSKOPS.get("NOTIFY_MAX_ATTEMPTS", 8))


def backoff(attempts: int) -> timedelta:
    """The wait after the attempts-th failure: 1, 2, 4, 8, 16, then 30 minutes."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), BACKOFF_CAP_MIN))


def _endpoint(kind: str) -> str:
    return ((settings.KIOSKOPS.get("NOTIFY_ENDPOINTS") or {}).get(kind) or ENDPOINTS[kind]).rstrip("/")


def incident_url(incident: Incident) -> str:
    return f"{settings.KIOSKOPS['PUBLIC_BASE_URL'].rstrip('/')}/incidents/{incident.pk}/"


# --- Queueing ---------------------------------------------------------------------------------------------------


def queue_to_channels(*, incident_ids: list[int], event: str, now: datetime, role: str = "") -> int:
    """Queue `event` of these incidents to every active channel of their region (or of every region) that takes
    their severity: the general channels (role empty), or those of one role (an escalation step). Mass outages'
    children are left out: their hall's parent speaks for them. One statement; a repeat is a no-op."""
    if not incident_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Notification._meta.db_table}
                (incident_id, channel_id, event, subject, body, status, attempts, last_error, created_at,
                 next_attempt_at)
            SELECT i.id, c.id, %(event)s, '', '', 'pending', 0, '', %(now)s, %(now)s
            FROM {Incident._meta.db_table} i
            JOIN {NotificationChannel._meta.db_table} c
              ON c.active AND NOT c.security AND c.role = %(role)s
             AND (c.region_id IS NULL OR c.region_id = i.region_id) AND i.severity <= c.max_severity
            WHERE i.id = ANY(%(ids)s) AND i.parent_id IS NULL
            ON CONFLICT ON CONSTRAINT notification_once_per_event DO NOTHING
            """,
            {"ids": list(incident_ids), "event": event, "now": now, "role": role},
        )
        return cursor.rowcount


def queue_to_people(*, incident_id: int, user_ids: list[int], event: str, now: datetime) -> int:
    """Queue `event` of one incident to these people, by e-mail (their account's address). A repeat is a no-op."""
    if not user_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Notification._meta.db_table}
                (incident_id, recipient_id, event, subject, body, status, attempts, last_error, created_at,
                 next_attempt_at)
            SELECT %(incident)s, u.id, %(event)s, '', '', 'pending', 0, '', %(now)s, %(now)s
            FROM unnest(%(users)s::int[]) AS u(id)
            ON CONFLICT ON CONSTRAINT notification_once_per_person_event DO NOTHING
            """,
            {"incident": incident_id, "users": list(user_ids), "event": event, "now": now},
        )
        return cursor.rowcount


def queue_notices(notices) -> int:
    """The sink of core/notices.py: each notice to every active channel of its region (or of every region) kept for
    its role that takes its severity — never a security contact's — and to the people it names. Subject and body
    come written. One statement per notice; a key already queued is a no-op."""
    queued = 0
    with connection.cursor() as cursor:
        for notice in notices:
            params = {
                "key": notice.key,
                "subject": notice.title,
                "body": notice.body,
                "event": "notice",
                "region": notice.region_id,
                "role": notice.role,
                "severity": notice.severity,
                "users": [int(pk) for pk in notice.user_ids],
                "now": timezone.now(),
            }
            cursor.execute(
                f"""
                INSERT INTO {Notification._meta.db_table}
                    (notice_key, channel_id, event, subject, body, status, attempts, last_error, created_at,
                     next_attempt_at)
                SELECT %(key)s, c.id, %(event)s, %(subject)s, %(body)s, 'pending', 0, '', %(now)s, %(now)s
                FROM {NotificationChannel._meta.db_table} c
                WHERE c.active AND NOT c.security AND c.role = %(role)s AND %(severity)s <= c.max_severity
                  AND (c.region_id IS NULL OR %(region)s::bigint IS NULL OR c.region_id = %(region)s::bigint)
                ON CONFLICT (notice_key, channel_id) WHERE notice_key <> '' DO NOTHING
                """,
                params,
            )
            queued += cursor.rowcount
            if params["users"]:
                cursor.execute(
                    f"""
                    INSERT INTO {Notification._meta.db_table}
                        (notice_key, recipient_id, event, subject, body, status, attempts, last_error, created_at,
                         next_attempt_at)
                    SELECT %(key)s, u.id, %(event)s, %(subject)s, %(body)s, 'pending', 0, '', %(now)s, %(now)s
                    FROM unnest(%(users)s::int[]) AS u(id)
                    ON CONFLICT (notice_key, recipient_id) WHERE notice_key <> '' DO NOTHING
                    """,
                    params,
                )
                queued += cursor.rowcount
    if queued:
        transaction.on_commit(_wake)
    return queued


# --- Rendering ----------------------------------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return date_format(timezone.localtime(value), "Y-m-d H:i") if value else ""


def milestone_label(name: str) -> str:
    return {
        "acknowledge": _("acknowledgement"),
        "remote": _("first remote attempt"),
        "onsite": _("onsite arrival"),
        "resolve": _("resolution"),
    }.get(name, name)


def event_headline(event: str) -> str:
    """What the message announces, in words: 新故障事件, SLA 超时：确认, 第 2 级升级 …"""
    parts = event.split(":")
    if parts[0] == "opened":
        return _("New incident")
    if parts[0] == "security":
        return _("Security incident: kiosk taken out of service, protect the scene")
    if parts[0] == "sla" and len(parts) == 2:
        return _("SLA breached: %(milestone)s overdue") % {"milestone": milestone_label(parts[1])}
    if parts[0] == "escalation" and len(parts) >= 2 and parts[1].isdigit():
        if len(parts) == 3 and parts[2].isdigit():
            return _("Escalation step %(n)s, reminder %(round)s: still not acknowledged") % {
                "n": parts[1],
                "round": parts[2],
            }
        return _("Escalation step %(n)s: still not acknowledged") % {"n": parts[1]}
    if parts[0] == "resolved":
        return _("Incident resolved")
    if parts[0] == "reopened":
        return _("Incident reopened: the fault came back within 24 hours of its recovery")
    if parts[0] == "notice":
        return _("Notice")
    return event


def _what_happened(incident: Incident) -> str:
    if incident.is_group:
        facts = (incident.evidence or {}).get("facts") or {}
        return _("%(down)s of the hall's %(total)s kiosks are down") % {
            "down": facts.get("kiosks_down", incident.occurrences),
            "total": facts.get("kiosks_in_hall", "?"),
        }
    text = str(FaultKind(incident.fault_kind).label) if incident.fault_kind in FaultKind.values else incident.fault_kind
    if incident.symptom:
        text = f"{text}：{incident.symptom[:200]}"
    if incident.occurrences > 1:
        text += _(" (seen %(n)s times)") % {"n": incident.occurrences}
    return text


def _deadline(incident: Incident, event: str) -> str:
    """The breached deadline for an SLA message, else the next deadline not yet met."""
    parts = event.split(":")
    for name, due_field, met_field in MILESTONES:
        due = getattr(incident, due_field)
        if due is None:
            continue
        if parts[0] == "sla":
            if parts[1:] == [name]:
                return _("%(milestone)s due %(at)s (missed)") % {"milestone": milestone_label(name), "at": _when(due)}
        elif getattr(incident, met_field) is None:
            return _("%(milestone)s due %(at)s") % {"milestone": milestone_label(name), "at": _when(due)}
    return ""


def render(incident: Incident, event: str) -> tuple[str, str]:
    """Subject and body of the message for this event of the incident, in Chinese."""
    with translation.override("zh-hans"):
        severity = str(Severity(incident.severity).label)
        headline = event_headline(event)
        drill = "【演练】" if incident.is_drill else ""
        subject = f"{drill}【{severity}】{headline} · {incident.reference} {incident.title}"[:200]
        rows = [
            (_("Incident"), f"{incident.reference} {incident.title}"),
            (_("Hall"), incident.site.name),
            (_("District"), incident.region.name),
            (_("Severity"), severity),
            (_("State"), str(State(incident.state).label)),
            (_("What happened"), _what_happened(incident)),
            (_("Why this severity"), incident.severity_reason),
            (_("Opened at"), _when(incident.opened_at)),
            (_("SLA"), _deadline(incident, event)),
            (_("Details"), incident_url(incident)),
        ]
        body = "\n".join([headline, *(f"{label}：{value}" for label, value in rows if value)])
    return subject, body


# --- Claiming -----------------------------------------------------------------------------------------------------


@dataclass
class Claim:
    """What the sender needs of one claimed row, read before the claim's transaction commits."""

    pk: int
    incident_id: int | None
    event: str
    attempts: int
    kind: str
    target: str
    secret: str = ""
    to_label: str = ""
    subject: str = ""
    body: str = ""
    fields: dict = field(default_factory=dict)


def _claim(now: datetime) -> tuple[list[Claim], int]:
    """Take up to BATCH due rows. Returns the claims to send and how many rows were looked at."""
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(status__in=[Status.PENDING, Status.FAILED, Status.SENDING], next_attempt_at__lte=now)
            .select_related("incident__site", "incident__region", "channel", "recipient")
            .order_by("next_attempt_at", "id")[:BATCH]
        )
        merged = [row.pk for row in rows if row.incident_id and row.incident.parent_id is not None]
        if merged:
            Notification.objects.filter(pk__in=merged).update(status=Status.MERGED, next_attempt_at=None)
        claims, off = [], []
        for row in rows:
            if row.pk in merged:
                continue
            if row.channel_id is not None and not row.channel.active:
                off.append(row)
                continue
            if not row.subject:
                row.subject, row.body = render(row.incident, row.event)
            row.status, row.attempts, row.next_attempt_at = Status.SENDING, row.attempts + 1, now + LEASE
            claims.append(_claim_of(row))
        Notification.objects.bulk_update(
            [row for row in rows if row.status == Status.SENDING],
            ["status", "attempts", "next_attempt_at", "subject", "body"],
        )
        for row in off:
            _give_up_switched_off(row, now)
    return claims, len(rows)


def _claim_of(row: Notification) -> Claim:
    incident = row.incident  # None for a notice: its subject and body were written by the app that posted it
    if row.channel_id is not None:
        kind, target, secret, to_label = row.channel.kind, row.channel.target, row.channel.secret, row.channel.name
    else:
        kind, target, secret, to_label = Kind.EMAIL, row.recipient.email, "", person_name(row.recipient)
    return Claim(
        pk=row.pk,
        incident_id=row.incident_id,
        event=row.event,
        attempts=row.attempts,
        kind=kind,
        target=target.strip(),
        secret=secret.strip(),
        to_label=to_label,
        subject=row.subject,
        body=row.body,
        fields=(
            {
                "event": row.event,
                "reference": incident.reference,
                "severity": f"P{incident.severity}",
                "state": incident.state,
                "hall": incident.site.name,
                "district": incident.region.name,
                "url": incident_url(incident),
            }
            if incident is not None
            else {"event": row.event, "notice": row.notice_key}
        ),
    )


def _give_up_switched_off(row: Notification, now: datetime) -> None:
    with translation.override("zh-hans"):
        Notification.objects.filter(pk=row.pk).update(
            status=Status.GAVE_UP, next_attempt_at=None, last_error=_("The channel is switched off.")
        )
        if row.incident_id is None:
            return
        services.entry_once(
            row.incident_id,
            TimelineEntry.Kind.NOTIFY_FAILED,
            f"notify:{row.pk}:off",
            at=now,
            measure=_("Not sent to %(to)s") % {"to": row.channel.name},
            result=_("The channel is switched off."),
            data={"notification_id": row.pk, "channel_id": row.channel_id, "event": row.event},
        )


# --- Sending ------------------------------------------------------------------------------------------------------


class SendError(Exception):
    """A channel refused the message or could not be reached; the text says how (kept as last_error)."""


def deliver(claim: Claim) -> None:
    """Send one claimed message; raises SendError (or any exception) when it did not go out."""
    with translation.override("zh-hans"):  # the error texts end up on the timeline
        _deliver(claim)


def _deliver(claim: Claim) -> None:
    if not claim.target:
        raise SendError(_("No address to send to."))
    senders = {
        Kind.EMAIL: _send_email,
        Kind.WECOM: _send_wecom,
        Kind.DINGTALK: _send_dingtalk,
        Kind.WEBHOOK: _send_webhook,
    }
    senders[claim.kind](claim)


def _send_email(claim: Claim) -> None:
    # A timeout of our own: Django's SMTP backend waits forever without EMAIL_TIMEOUT, holding the claim's lease.
    connection = get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT or TIMEOUT_S)
    EmailMessage(subject=claim.subject, body=claim.body, to=[claim.target], connection=connection).send()


def _robot_text(claim: Claim, limit_bytes: int) -> str:
    text = f"{claim.subject}\n{claim.body.split(chr(10), 1)[-1]}"
    data = text.encode("utf-8")[:limit_bytes]
    return data.decode("utf-8", errors="ignore")


def _query_value(target: str, name: str) -> str:
    """The robot's key or token: the target itself, or read from the whole webhook address pasted in."""
    if target.startswith(("http://", "https://")):
        values = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get(name)
        return values[0] if values else ""
    return target


def _post_robot(url: str, params: dict, payload: dict, name: str) -> None:
    try:
        response = httpx.post(url, params=params, json=payload, timeout=TIMEOUT_S)
    except httpx.HTTPError as error:
        raise SendError(_("%(name)s could not be reached: %(error)s") % {"name": name, "error": error}) from error
    if response.status_code != 200:
        raise SendError(_("%(name)s answered HTTP %(status)s") % {"name": name, "status": response.status_code})
    try:
        answer = response.json()
    except ValueError as error:
        raise SendError(_("%(name)s answered something that is not JSON") % {"name": name}) from error
    if answer.get("errcode", 0) != 0:
        raise SendError(
            _("%(name)s refused the message: %(code)s %(message)s")
            % {"name": name, "code": answer.get("errcode"), "message": answer.get("errmsg", "")}
        )


def _send_wecom(claim: Claim) -> None:
    """WeCom group robot (企业微信群机器人): POST /cgi-bin/webhook/send?key=KEY, a text message of at most 2048
    bytes; it answers {"errcode": 0, "errmsg": "ok"}."""
    key = _query_value(claim.target, "key")
    _post_robot(
        f"{_endpoint('wecom')}/cgi-bin/webhook/send",
        {"key": key},
        {"msgtype": "text", "text": {"content": _robot_text(claim, 2048)}},
        _("WeCom"),
    )


def dingtalk_signature(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signing (加签): base64 of HMAC-SHA256 over "timestamp\\nsecret" keyed with the secret. Sent
    URL-encoded as `sign`, beside `timestamp` (milliseconds; DingTalk refuses one older than an hour)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _send_dingtalk(claim: Claim) -> None:
    """DingTalk custom robot (钉钉自定义机器人): POST /robot/send?access_token=TOKEN[&timestamp=…&sign=…], a text
    message; it answers {"errcode": 0, "errmsg": "ok"}."""
    params = {"access_token": _query_value(claim.target, "access_token")}
    if claim.secret:
        timestamp = int(time.time() * 1000)
        params.update(timestamp=str(timestamp), sign=dingtalk_signature(claim.secret, timestamp))
    _post_robot(
        f"{_endpoint('dingtalk')}/robot/send",
        params,
        {"msgtype": "text", "text": {"content": _robot_text(claim, 18000)}},
        _("DingTalk"),
    )


def _webhook_type(claim: Claim) -> str:
    if claim.event.startswith("resolved"):
        return "success"
    if claim.event.startswith("security") or claim.fields.get("severity") == "P1":
        return "failure"
    if claim.event.startswith(("sla:", "escalation:")):
        return "warning"
    return "info"


def apprise_json_url(target: str) -> str:
    """http(s)://host/path?a=1 → json(s)://host/path?-a=1: Apprise's JSON notifier passes `-` parameters on as the
    query string, so a webhook address with a token in it keeps it."""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SendError(_("The webhook address must start with http:// or https://."))
    query = urllib.parse.urlencode(
        [(f"-{k}", v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    )
    scheme = "jsons" if parts.scheme == "https" else "json"
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path or "/", query, ""))


def _send_webhook(claim: Claim) -> None:
    """A generic webhook: Apprise's JSON notifier POSTs the documented body (docs/notifications.md)."""
    import apprise
    from apprise.plugins.custom_json import NotifyJSON

    options = NotifyJSON.parse_url(apprise_json_url(claim.target))
    if not options:
        raise SendError(_("The webhook address cannot be used."))
    options["payload"] = {**options.get("payload", {}), **claim.fields}
    options["retry"] = 0  # retries are the outbox's, with backoff and a timeline entry each
    plugin = NotifyJSON(**options)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as log:
        sent = plugin.notify(body=claim.body, title=claim.subject, notify_type=_webhook_type(claim))
    if not sent:
        detail = " ".join(log.getvalue().split())[:300]
        raise SendError(_("The webhook refused the message: %(detail)s") % {"detail": detail or "?"})


# --- Recording ----------------------------------------------------------------------------------------------------


def _record(claim: Claim, error: str | None, now: datetime) -> bool:
    """Write the outcome of one claim, once: only if the row is still ours (still `sending` at our attempt)."""
    mine = Notification.objects.filter(pk=claim.pk, status=Status.SENDING, attempts=claim.attempts)
    with transaction.atomic(), translation.override("zh-hans"):
        data = {"notification_id": claim.pk, "event": claim.event, "attempt": claim.attempts, "kind": claim.kind}
        if error is None:
            if not mine.update(status=Status.SENT, sent_at=now, next_attempt_at=None, last_error=""):
                return False
            if claim.incident_id is None:
                return True
            services.entry_once(
                claim.incident_id,
                TimelineEntry.Kind.NOTIFIED,
                f"notify:{claim.pk}",
                at=now,
                measure=_("%(what)s sent to %(to)s") % {"what": event_headline(claim.event), "to": claim.to_label},
                result=_("Attempt %(n)s") % {"n": claim.attempts} if claim.attempts > 1 else "",
                data=data,
            )
            return True
        give_up = claim.attempts >= max_attempts()
        next_at = None if give_up else now + backoff(claim.attempts)
        updated = mine.update(
            status=Status.GAVE_UP if give_up else Status.FAILED, next_attempt_at=next_at, last_error=error[:500]
        )
        if not updated or claim.incident_id is None:
            return False
        then = (
            _("gave up after %(n)s attempts") % {"n": claim.attempts}
            if give_up
            else _("next attempt at %(at)s") % {"at": _when(next_at)}
        )
        services.entry_once(
            claim.incident_id,
            TimelineEntry.Kind.NOTIFY_FAILED,
            f"notify:{claim.pk}:failed:{claim.attempts}:{int(now.timestamp())}",
            at=now,
            measure=_("%(what)s not sent to %(to)s (attempt %(n)s)")
            % {"what": event_headline(claim.event), "to": claim.to_label, "n": claim.attempts},
            result=f"{error[:300]} · {then}",
            data={**data, "error": error[:500], "gave_up": give_up},
        )
        return False


def send_due(now: datetime | None = None) -> int:
    """Send every notification that is due; returns how many went out. Safe to run concurrently."""
    sent = 0
    for _round in range(100):  # a bound per run: the next run carries on
        at = now or timezone.now()
        claims, looked_at = _claim(at)
        for claim in claims:
            try:
                deliver(claim)
                error = None
            except Exception as exc:  # a channel's failure of any kind is recorded and retried, never raised
                logger.warning("notification %s (%s) not sent: %s", claim.pk, claim.kind, exc)
                error = str(exc) or exc.__class__.__name__
            sent += _record(claim, error, now or timezone.now())
        if looked_at < BATCH:
            break
    return sent


# --- Sending again ------------------------------------------------------------------------------------------------


@transaction.atomic
def notification_send_again(*, notification: Notification, actor) -> Notification:
    """A notification that was given up is sent again from the start (the admin's "send again"): attempts from
    zero, due now, recorded on the incident's timeline."""
    row = Notification.objects.select_for_update().get(pk=notification.pk)
    if row.status != Status.GAVE_UP:
        raise ValidationError(_("Only a notification that was given up is sent again."))
    now = timezone.now()
    Notification.objects.filter(pk=row.pk).update(status=Status.PENDING, attempts=0, next_attempt_at=now, sent_at=None)
    transaction.on_commit(_wake)
    row.refresh_from_db()
    if row.incident_id is None:
        return row
    services.entry(
        row.incident_id,
        TimelineEntry.Kind.NOTE,
        actor=actor,
        at=now,
        measure=_("Notification sent again"),
        result=event_headline(row.event),
        data={"notification_id": row.pk},
    )
    return row


def _wake() -> None:
    from incidents import tasks

    try:
        tasks.send_notifications.delay()
    except Exception:  # the periodic sender picks it up
        logger.warning("could not wake the notification sender", exc_info=True)
