"""Every state change of the fleet. Keyword-only, atomic, events sent on commit."""

import hashlib
import json
import logging
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.db.models import Case, CharField, Count, DateTimeField, F, IntegerField, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from fleet import events, ingest, sql
from fleet.health import assess, flapping_has_ended, is_flapping
from fleet.models import (
    ComponentChange,
    DeviceCredential,
    FlapEvent,
    Heartbeat,
    HeartbeatDeadLetter,
    Kiosk,
    RemoteCommand,
    Site,
    StatusChange,
)
from fleet.vocabulary import HEALTHY_STATES, Component

logger = logging.getLogger(__name__)
TOKEN_PREFIX = "kt_"
Status = Kiosk.Status
Reason = StatusChange.Reason
LIVE_STATUSES = (Status.ONLINE, Status.DEGRADED)


def _conf(name: str):
    return settings.KIOSKOPS[name]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- Provisioning and credentials -----------------------------------------------------------------------


@transaction.atomic
def kiosk_register(
    *,
    site: Site,
    serial: str,
    model: str = "",
    asset_tag: str | None = None,
    installed_on=None,
    heartbeat_interval_s: int | None = None,
    grace_s: int | None = None,
    actor=None,
) -> tuple[Kiosk, str]:
    """Register a kiosk and issue its first token. Returns the kiosk and the token, which is never shown again."""
    serial = serial.strip()
    if not serial:
        raise ValidationError({"serial": _("A serial number is required.")})
    if Kiosk.objects.filter(serial=serial).exists():
        raise ValidationError({"serial": _("A kiosk with serial %(serial)s already exists.") % {"serial": serial}})
    if asset_tag and Kiosk.objects.filter(asset_tag=asset_tag).exists():
        raise ValidationError({"asset_tag": _("Asset tag %(tag)s is already used.") % {"tag": asset_tag}})
    kiosk = Kiosk(
        site=site,
        serial=serial,
        model=model,
        asset_tag=asset_tag or None,
        installed_on=installed_on,
        heartbeat_interval_s=heartbeat_interval_s or _conf("DEFAULT_HEARTBEAT_INTERVAL_S"),
        grace_s=_conf("DEFAULT_GRACE_S") if grace_s is None else grace_s,
    )
    kiosk.full_clean(exclude=["site"])
    kiosk.save()
    token = credential_issue(kiosk=kiosk, actor=actor)
    return kiosk, token


@transaction.atomic
def credential_issue(*, kiosk: Kiosk, actor=None) -> str:
    """Issue a new token for a kiosk, revoking the one it had (rotation). Returns the token in clear, once."""
    now = timezone.now()
    _revoke_active(kiosk, now, "rotated")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    DeviceCredential.objects.create(
        kiosk=kiosk, token_hash=hash_token(token), token_prefix=token[:10], created_by=actor
    )
    return token


@transaction.atomic
def credential_revoke(*, kiosk: Kiosk, actor=None, reason: str = "revoked") -> int:
    """Revoke the kiosk's active token; it will get 401 until a new one is issued."""
    return _revoke_active(kiosk, timezone.now(), reason)


def _revoke_active(kiosk: Kiosk, now: datetime, reason: str) -> int:
    active = DeviceCredential.objects.filter(kiosk=kiosk, revoked_at__isnull=True)
    hashes = list(active.values_list("token_hash", flat=True))
    revoked = active.update(revoked_at=now, revoked_reason=reason)
    if hashes and ingest.is_buffered():
        transaction.on_commit(lambda: ingest.forget_tokens(hashes))
    return revoked


@transaction.atomic
def kiosk_set_timing(*, kiosk: Kiosk, heartbeat_interval_s: int, grace_s: int) -> Kiosk:
    """Change how often a kiosk must beat and how long it may be late. The next heartbeat answers with the new
    interval: with buffered ingestion the kiosk's cached token (which carries the interval) is dropped on commit,
    so that heartbeat reads it again from the database."""
    kiosk.heartbeat_interval_s, kiosk.grace_s = heartbeat_interval_s, grace_s
    kiosk.save(update_fields=["heartbeat_interval_s", "grace_s"])
    if ingest.is_buffered():
        hashes = list(
            DeviceCredential.objects.filter(kiosk=kiosk, revoked_at__isnull=True).values_list("token_hash", flat=True)
        )
        transaction.on_commit(lambda: ingest.uncache_tokens(hashes))
    return kiosk


def kiosk_snapshot_for_token_hash(token_hash: str):
    """The heartbeat path's view of the kiosk an active token belongs to (one fixed query), or None."""
    return sql.kiosk_snapshot_for_token_hash(token_hash)


def kiosk_for_token(token: str) -> Kiosk | None:
    """The kiosk an active token belongs to, with its site, in one query; None when unknown or revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    # token_hash is unique, so at most one row: a plain LIMIT 1, without the ORDER BY that .first() adds (its
    # compilation is a measurable part of every heartbeat; see docs/performance.md).
    credentials = list(
        DeviceCredential.objects.select_related("kiosk__site").filter(
            token_hash=hash_token(token), revoked_at__isnull=True
        )[:1]
    )
    return credentials[0].kiosk if credentials else None


# --- Heartbeats -----------------------------------------------------------------------------------------


@dataclass
class HeartbeatInput:
    sent_at: datetime | None
    software_version: str = ""
    components: dict[str, str] = field(default_factory=dict)
    error_codes: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    # A citizen's payment is in progress at the kiosk: disruptive commands wait (commands_deliver).
    payment_session_active: bool = False

    def clock_skew_s(self, received_at: datetime) -> int | None:
        """How far the kiosk's clock was from the server's, in whole seconds (recorded, never trusted)."""
        return round((self.sent_at - received_at).total_seconds()) if self.sent_at is not None else None


@dataclass
class HeartbeatOutcome:
    status: str
    interval_s: int
    commands: list[dict]  # {"id", "kind", "params", "expires_at"}, as the device protocol shows them
    clock_skew_s: int | None


def _region_id(kiosk) -> int:
    region_id = getattr(kiosk, "region_id", None)
    return region_id if region_id is not None else kiosk.site.region_id


def kiosk_record_heartbeat(*, kiosk, beat: HeartbeatInput, received_at: datetime | None = None):
    """Store a heartbeat, update the kiosk's denormalised health, flip its status if it changed, and hand out
    its open commands. The kiosk's last_seen is the server's clock: sent_at is recorded as skew, never trusted.

    `kiosk` is a Kiosk or the lighter fleet.sql.KioskSnapshot the device API authenticates with. The steady
    path sends fixed SQL (fleet/sql.py); a status change goes through the ORM like every other flip."""
    received_at = received_at or timezone.now()
    skew = beat.clock_skew_s(received_at)
    for _attempt in range(3):
        with transaction.atomic():
            outcome = _apply_heartbeat(kiosk, beat, received_at, skew)
            if outcome is not None:
                return outcome
        # Someone changed the kiosk's status between our read and our write (a sweep, maintenance):
        # re-read it and decide again from the fresh row.
        kiosk.refresh_from_db()
    raise RuntimeError(f"kiosk {kiosk.serial} changed status three times during one heartbeat")


@dataclass
class _Effect:
    """What one heartbeat does to a kiosk: the columns to write and, when its status changes, the flip."""

    old_status: str
    new_status: str
    update: dict
    visible: bool
    reason: str = ""
    detail: str = ""
    # For the change feed: (component, from_state, to_state) and error codes that were not there before.
    component_changes: list = field(default_factory=list)
    new_codes: list = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.new_status != self.old_status


def _heartbeat_effect(kiosk, beat, received_at, skew) -> _Effect:
    """Pure: decide from the kiosk's stored health (a Kiosk, KioskSnapshot or KioskState) and one heartbeat. A
    heartbeat may report some components only: the others keep their stored state."""
    components = {**kiosk.components, **beat.components}
    assessment = assess(components, beat.metrics)
    old_status = kiosk.status
    if old_status in (Status.MAINTENANCE, Status.RETIRED):
        new_status = old_status  # silenced on purpose: track health underneath, do not flip
    else:
        new_status = assessment.status
    changed = new_status != old_status
    visible = (
        changed
        or components != kiosk.components
        or beat.error_codes != kiosk.error_codes
        or bool(beat.software_version and beat.software_version != kiosk.software_version)
    )
    update = dict(
        last_seen_at=received_at,
        offline_after=received_at + timedelta(seconds=kiosk.heartbeat_interval_s + kiosk.grace_s),
        clock_skew_s=skew,
        components=components,
        error_codes=beat.error_codes,
        metrics=beat.metrics,
        health_status=assessment.status,
    )
    if beat.software_version:
        update["software_version"] = beat.software_version
    effect = _Effect(old_status, new_status, update, visible)
    effect.component_changes = [
        (name, kiosk.components.get(name, ""), state)
        for name, state in components.items()
        if state != kiosk.components.get(name, "") and (name in kiosk.components or state not in HEALTHY_STATES)
    ]
    effect.new_codes = [code for code in dict.fromkeys(beat.error_codes) if code not in kiosk.error_codes]
    if changed:
        update.update(status=new_status, status_changed_at=received_at, status_reason=_reason_text(assessment))
        if old_status == Status.PROVISIONED:
            effect.reason = Reason.FIRST_HEARTBEAT
        elif old_status == Status.OFFLINE and new_status == Status.ONLINE:
            effect.reason = Reason.HEARTBEAT_RESUMED
        else:
            effect.reason = assessment.reason
        effect.detail = assessment.detail
        if old_status == Status.OFFLINE and new_status == Status.DEGRADED:
            effect.detail = f"heartbeats resumed; {assessment.detail}"
    return effect


def _apply_heartbeat(kiosk, beat, received_at, skew) -> HeartbeatOutcome | None:
    effect = _heartbeat_effect(kiosk, beat, received_at, skew)
    # Compare-and-swap on the status we decided from: a concurrent sweep makes this a no-op and we retry.
    if not sql.kiosk_compare_and_set(kiosk.pk, effect.old_status, effect.update):
        return None
    for name, value in effect.update.items():
        setattr(kiosk, name, value)

    sql.heartbeat_insert(
        kiosk_id=kiosk.pk,
        received_at=received_at,
        sent_at=beat.sent_at,
        clock_skew_s=skew,
        software_version=beat.software_version,
        components=beat.components,
        error_codes=beat.error_codes,
        metrics=beat.metrics,
    )
    region_id = _region_id(kiosk)
    _record_component_changes([(kiosk.pk, received_at, effect)])
    if effect.changed:
        _record_flips(
            [(kiosk.pk, kiosk.serial, region_id, effect.old_status, effect.new_status)],
            effect.reason,
            effect.detail,
            received_at,
        )
    if effect.visible:
        _on_commit_kiosks_updated([(kiosk.serial, region_id)])
    return HeartbeatOutcome(
        status=effect.new_status,
        interval_s=kiosk.heartbeat_interval_s,
        commands=commands_deliver(
            kiosk_id=kiosk.pk, now=received_at, payment_session_active=beat.payment_session_active
        ).commands,
        clock_skew_s=skew,
    )


def assess_heartbeat(beat: HeartbeatInput):
    """The health one heartbeat reports on its own (what a buffered heartbeat is answered with)."""
    return assess(beat.components, beat.metrics)


def heartbeats_apply(beats) -> int:
    """Apply buffered heartbeats — (kiosk_id, received_at, HeartbeatInput) — to the database in one transaction,
    with a fixed number of statements whatever the batch size (plus a few per distinct flip).

    The same decisions as kiosk_record_heartbeat, folded in order of arrival per kiosk: every beat is kept as a
    raw heartbeat; a beat received before the kiosk's last_seen_at (a replay after a consumer crash, or one that
    arrived late) is history only and changes no status. Kiosk rows are locked until commit, so a sweep or a
    maintenance change waits for the batch or skips the row. Returns the number of heartbeats stored."""
    beats = sorted(beats, key=lambda beat: beat[1])
    if not beats:
        return 0
    with transaction.atomic():
        states = sql.kiosk_states_locked(list({kiosk_id for kiosk_id, _at, _beat in beats}))
        raw, touched, flips, updated, effects = [], {}, defaultdict(list), {}, []
        for kiosk_id, received_at, beat in beats:
            state = states.get(kiosk_id)
            if state is None:  # deleted since
                continue
            skew = beat.clock_skew_s(received_at)
            raw.append(
                (
                    kiosk_id,
                    received_at,
                    beat.sent_at,
                    skew,
                    beat.software_version,
                    beat.components,
                    beat.error_codes,
                    beat.metrics,
                )
            )
            if state.last_seen_at is not None and received_at <= state.last_seen_at:
                continue
            effect = _heartbeat_effect(state, beat, received_at, skew)
            for name, value in effect.update.items():
                setattr(state, name, value)
            touched[kiosk_id] = state
            effects.append((kiosk_id, received_at, effect))
            if effect.changed:
                flips[(effect.reason, effect.detail, received_at)].append(
                    (kiosk_id, state.serial, state.region_id, effect.old_status, effect.new_status)
                )
            if effect.visible:
                updated[state.serial] = state.region_id
        sql.heartbeats_insert_many(raw)
        sql.kiosks_write_states(list(touched.values()))
        _record_component_changes(effects)
        for (reason, detail, at), rows in flips.items():
            _record_flips(rows, reason, detail, at)
        if updated:
            _on_commit_kiosks_updated(sorted(updated.items()))
    return len(raw)


def heartbeats_drain(*, consumer: str, batch: int, block_ms: int | None = None, recover: bool = True) -> int:
    """Apply the next batch of buffered heartbeats and acknowledge it (fleet/ingest.py). Returns how many
    entries were taken; 0 when the buffer is empty.

    No entry can block the stream: an entry that cannot be decoded, or whose heartbeat the database refuses, is
    set aside as a dead letter with its error (heartbeat_dead_letters_record) and everything else is applied. A
    failing batch is split in halves until the entries that fail alone are found. When the database or Redis
    itself is unreachable nothing is set aside: the exception propagates, the batch stays pending for this
    consumer and is retried first next time."""
    entries = ingest.read_batch(consumer, count=batch, block_ms=block_ms, recover=recover)
    if not entries:
        return 0
    beats, dead = [], []
    for entry in entries:
        entry_id, kiosk_id, received_at, body = entry
        try:
            if kiosk_id is None or received_at is None:
                raise ingest.Undecodable(_("The buffer entry has no readable kiosk or arrival time."))
            beats.append((entry, ingest.decode(body)))
        except ingest.Undecodable as exc:
            dead.append((entry, str(exc)))
    beats.sort(key=lambda item: item[0][2])
    _apply_isolating(beats, dead)
    if dead:
        heartbeat_dead_letters_record(letters=[(*entry, error) for entry, error in dead])
    ingest.acknowledge([entry[0] for entry in entries])
    return len(entries)


# A lone heartbeat that fails with a database error that may be passing (a deadlock, a serialization failure) is
# tried this many times in all before it is set aside.
_LONE_ATTEMPTS = 3


def _apply_isolating(beats, dead) -> None:
    """Apply [(entry, HeartbeatInput)] in order of arrival; entries that fail on their own go to `dead`.

    One transaction when all is well. When it fails and both stores still answer, the batch is split in halves
    (applied in order, so a kiosk's beats still fold oldest first), down to single entries: about 2·log2(n)
    transactions for one bad entry among n. An exception raised after the commit (an on-commit hook) is not the
    batch's fault: it is logged and the batch counts as applied."""
    if not beats:
        return
    for attempt in range(1, _LONE_ATTEMPTS + 1):
        committed = []
        try:
            with transaction.atomic():
                transaction.on_commit(partial(committed.append, True))  # runs first of the batch's hooks
                heartbeats_apply([(entry[1], entry[2], beat) for entry, beat in beats])
            return
        except Exception as exc:
            if committed:
                logger.exception("a hook after applying %d buffered heartbeats failed; they are stored", len(beats))
                return
            if not _stores_reachable():
                raise
            if len(beats) > 1:
                break
            if attempt < _LONE_ATTEMPTS and isinstance(exc, OperationalError):
                continue
            dead.append((beats[0][0], f"{type(exc).__name__}: {exc}"))
            return
    middle = len(beats) // 2
    _apply_isolating(beats[:middle], dead)
    _apply_isolating(beats[middle:], dead)


def _stores_reachable() -> bool:
    """Whether the database and Redis both answer: if not, a failure is an outage, not the batch's content."""
    try:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return False
    return ingest.reachable()


def _printable(text: str, limit: int = 2000) -> str:
    """Text any column accepts: NUL and unpaired surrogates escaped, at most `limit` characters."""
    text = text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:limit]


def heartbeat_dead_letters_record(*, letters) -> None:
    """Set aside buffered heartbeats that could not be applied — (entry_id, kiosk_id, received_at, body, error) —
    in the database (for the admin and the board's count) and in the dead-letter stream, keeping the newest
    ingest.DEAD_LETTER_MAX of each. Recording the same entry twice (a consumer that died before acknowledging)
    keeps one row. Should the database refuse even the dead letter while it answers, the stream still has it:
    nothing a kiosk sent may stop the consumer."""
    letters = [
        (entry_id, kiosk_id, received_at, bytes(body), _printable(str(error)))
        for entry_id, kiosk_id, received_at, body, error in letters
    ]
    for entry_id, kiosk_id, _received_at, _body, error in letters:
        logger.error("setting aside buffered heartbeat %s of kiosk %s: %s", entry_id, kiosk_id, error)
    try:
        _dead_letters_store(letters)
    except Exception:
        if not _stores_reachable():
            raise
        logger.exception("%d dead letters could not be stored in the database; see the Redis stream", len(letters))
    ingest.set_aside(letters)


@transaction.atomic
def _dead_letters_store(letters) -> None:
    known = set(Kiosk.objects.filter(pk__in={k for _e, k, _r, _b, _x in letters if k}).values_list("pk", flat=True))
    HeartbeatDeadLetter.objects.bulk_create(
        [
            HeartbeatDeadLetter(
                entry_id=_printable(entry_id.decode("ascii", "backslashreplace"), 64),
                kiosk_id=kiosk_id if kiosk_id in known else None,
                received_at=received_at,
                set_aside_at=timezone.now(),
                body=body,
                error=error,
            )
            for entry_id, kiosk_id, received_at, body, error in letters
        ],
        ignore_conflicts=True,
    )
    # Bounded: only the newest DEAD_LETTER_MAX are kept (the table stays small enough to count on every board).
    oldest_kept = HeartbeatDeadLetter.objects.order_by("-id").values_list("id", flat=True)[
        ingest.DEAD_LETTER_MAX - 1 : ingest.DEAD_LETTER_MAX
    ]
    if oldest_kept:
        HeartbeatDeadLetter.objects.filter(id__lt=oldest_kept[0]).delete()


def _reason_text(assessment) -> str:
    return assessment.detail[:200]


@dataclass
class CommandDelivery:
    """What one heartbeat's answer carries, and how many open commands it held back for a payment in progress."""

    commands: list[dict]  # {"id", "kind", "params", "expires_at"}, oldest first
    held: int = 0


def commands_deliver(*, kiosk_id: int, now: datetime, payment_session_active: bool = False) -> CommandDelivery:
    """Open, unexpired commands for the kiosk, oldest first. Delivery is at-least-once: a delivered command is
    sent again with each heartbeat until the kiosk reports its result or it expires; kiosks de-duplicate by id.

    While the heartbeat reports a citizen's payment in progress, disruptive commands (RemoteCommand.
    DISRUPTIVE_KINDS) are held back: a queued one stays queued and is marked deferred (deferred_at, deferred_count),
    and goes out with the first heartbeat without a payment; expiry still applies. One SELECT, and one UPDATE when
    there are open commands, whatever their number and kinds."""
    commands = sql.open_commands(kiosk_id, now)
    if not commands:
        return CommandDelivery([])
    if payment_session_active:
        sent = [c for c in commands if c["kind"] not in RemoteCommand.DISRUPTIVE_KINDS]
        held = [c for c in commands if c["kind"] in RemoteCommand.DISRUPTIVE_KINDS]
    else:
        sent, held = commands, []
    sent_ids = [c["id"] for c in sent]
    # Only a command the kiosk has not seen yet is "waiting for the payment to end"; one it already has is simply
    # not sent again until the payment ends.
    deferred_ids = [c["id"] for c in held if c["status"] == RemoteCommand.Status.QUEUED]
    if sent_ids or deferred_ids:
        is_sent = Q(pk__in=sent_ids)

        def when_sent(sent_value, held_value, output_field):
            return Case(When(is_sent, then=sent_value), default=held_value, output_field=output_field)

        RemoteCommand.objects.filter(pk__in=sent_ids + deferred_ids).update(
            status=when_sent(Value(RemoteCommand.Status.DELIVERED), F("status"), CharField()),
            delivered_at=when_sent(Coalesce(F("delivered_at"), now), F("delivered_at"), DateTimeField()),
            delivery_count=when_sent(F("delivery_count") + 1, F("delivery_count"), IntegerField()),
            deferred_at=when_sent(F("deferred_at"), Coalesce(F("deferred_at"), now), DateTimeField()),
            deferred_count=when_sent(F("deferred_count"), F("deferred_count") + 1, IntegerField()),
        )
    return CommandDelivery([_device_command(c) for c in sent], held=len(held))


def _device_command(row: dict) -> dict:
    return {"id": row["id"], "kind": row["kind"], "params": row["params"], "expires_at": row["expires_at"]}


# --- Flips, flapping and events -------------------------------------------------------------------------


def _record_component_changes(effects) -> None:
    """The change feed's component half: one row per component that changed state and per error code that
    appeared, for (kiosk_id, received_at, _Effect) entries. Nothing is written when nothing changed."""
    rows = [
        ComponentChange(kiosk_id=kiosk_id, occurred_at=at, component=name, from_state=old, to_state=new)
        for kiosk_id, at, effect in effects
        for name, old, new in effect.component_changes
    ] + [
        ComponentChange(kiosk_id=kiosk_id, occurred_at=at, code=code[:32])
        for kiosk_id, at, effect in effects
        for code in effect.new_codes
    ]
    if rows:
        ComponentChange.objects.bulk_create(rows)


def _record_flips(rows, reason: str, detail: str, now: datetime, actor=None, *, flapping_now=None) -> None:
    """Write one StatusChange per (kiosk_id, serial, region_id, from, to) row, detect flapping, and publish the
    flips on commit. Set-based: a fixed number of queries whatever the number of rows.

    When `flapping_now` is given the caller has already written the StatusChange rows (the PostgreSQL sweep does
    it in the same statement as the update) and says which kiosks were flapping before."""
    if not rows:
        return
    kiosk_ids = [row[0] for row in rows]
    silencing = [(row[0], row[4]) for row in rows if {row[3], row[4]} & set(ingest.SILENCED_STATUSES)]
    if silencing and ingest.is_buffered():
        transaction.on_commit(lambda: ingest.statuses_changed(silencing))
    if flapping_now is None:
        flapping_now = set(Kiosk.objects.filter(pk__in=kiosk_ids, is_flapping=True).values_list("pk", flat=True))
        _insert_flips(rows, reason, detail, now, actor, flapping_now)
    _detect_flapping_and_publish(rows, reason, detail, now, flapping_now)


def _insert_flips(rows, reason, detail, now, actor, flapping_now) -> None:
    StatusChange.objects.bulk_create(
        [
            StatusChange(
                kiosk_id=kiosk_id,
                occurred_at=now,
                from_status=old,
                to_status=new,
                reason=reason,
                detail=detail[:300],
                while_flapping=kiosk_id in flapping_now,
                actor=actor,
            )
            for kiosk_id, _serial, _region, old, new in rows
        ]
    )


def _detect_flapping_and_publish(rows, reason, detail, now, flapping_now) -> None:
    kiosk_ids = [row[0] for row in rows]
    threshold, window = _conf("FLAP_THRESHOLD"), timedelta(seconds=_conf("FLAP_WINDOW_S"))
    # Only kiosks at or past the threshold come back: after a mass outage that is a handful, not the fleet.
    counts = dict(
        StatusChange.objects.filter(kiosk_id__in=kiosk_ids, occurred_at__gt=now - window)
        .values("kiosk_id")
        .annotate(n=Count("id"))
        .filter(n__gte=threshold)
        .values_list("kiosk_id", "n")
    )
    starting = [k for k in kiosk_ids if k not in flapping_now and is_flapping(counts.get(k, 0), threshold)]
    if starting:
        Kiosk.objects.filter(pk__in=starting).update(is_flapping=True)
        FlapEvent.objects.bulk_create(
            [FlapEvent(kiosk_id=k, occurred_at=now, started=True, flips_in_window=counts[k]) for k in starting]
        )
    flips = [
        events.KioskFlip(
            kiosk_id=kiosk_id,
            serial=serial,
            region_id=region_id,
            from_status=old,
            to_status=new,
            reason=reason,
            detail=detail,
            occurred_at=now,
            while_flapping=kiosk_id in flapping_now,
        )
        for kiosk_id, serial, region_id, old, new in rows
    ]
    announced = [flip for flip in flips if not flip.while_flapping and flip.kiosk_id not in starting]
    serial_of = {row[0]: (row[1], row[2]) for row in rows}

    def publish():
        if announced:
            events.kiosk_status_changed.send(sender=Kiosk, flips=announced)
        for kiosk_id in starting:
            serial, region_id = serial_of[kiosk_id]
            events.kiosk_flapping_changed.send(
                sender=Kiosk,
                kiosk_id=kiosk_id,
                serial=serial,
                region_id=region_id,
                started=True,
                flips_in_window=counts[kiosk_id],
            )

    transaction.on_commit(publish)
    _on_commit_kiosks_updated([(row[1], row[2]) for row in rows])


def _on_commit_kiosks_updated(kiosks: list[tuple[str, int]]) -> None:
    transaction.on_commit(lambda: events.kiosks_updated.send(sender=Kiosk, kiosks=kiosks))


# --- The health sweep -----------------------------------------------------------------------------------


@dataclass
class SweepResult:
    went_offline: int = 0
    maintenance_ended: int = 0
    flapping_ended: int = 0


def health_sweep(*, now: datetime | None = None) -> SweepResult:
    """One pass over the whole fleet: silent kiosks go offline, expired maintenance ends, calmed flapping ends.

    A fixed number of queries whatever the fleet size. Safe to run concurrently or twice: rows are claimed with
    SELECT … FOR UPDATE SKIP LOCKED and re-checked by their status, so each flip is recorded exactly once."""
    now = now or timezone.now()
    # With buffered ingestion a heartbeat may be received but not yet applied: nobody goes offline for a silence
    # that ends after the oldest heartbeat still waiting in the buffer (fleet/ingest.py).
    try:
        waiting = ingest.oldest_waiting_at()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        # The buffer cannot be read, so heartbeats may be waiting in it: calling their kiosks offline would turn
        # the whole fleet red for a Redis outage. Offline calls wait for Redis; maintenance and flapping still end.
        logger.error("the heartbeat buffer cannot be read (Redis unreachable): no kiosk is called offline until it can")
        waiting = None
        cutoff = None
    else:
        cutoff = min(now, waiting) if waiting is not None else now
        if (now - cutoff).total_seconds() > 60:
            logger.warning("heartbeats received since %s are not applied yet: is ingest_heartbeats running?", cutoff)
    result = SweepResult()
    with transaction.atomic():
        if cutoff is not None:
            result.went_offline = _sweep_offline(now, cutoff)
        result.maintenance_ended = _end_expired_maintenance(now)
        result.flapping_ended = _end_calmed_flapping(now)
    return result


def _sweep_offline(now: datetime, cutoff: datetime) -> int:
    """Silent live kiosks go offline in one statement (fleet/sql.py): no row travels to Python and back, so a
    fleet of 10,000 goes offline in one round trip."""
    detail = "no heartbeat within interval and grace"
    flipped = sql.sweep_offline(now, cutoff, Reason.SILENT, detail)
    if flipped:
        rows = [(pk, serial, region, old, Status.OFFLINE) for pk, serial, region, old, _was in flipped]
        flapping_now = {pk for pk, _serial, _region, _old, was in flipped if was}
        _record_flips(rows, Reason.SILENT, detail, now, flapping_now=flapping_now)
    return len(flipped)


def _end_expired_maintenance(now: datetime) -> int:
    expired = list(
        Kiosk.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=Status.MAINTENANCE, maintenance_until__lt=now)
        .values_list("pk", "serial", "site__region_id", "health_status", "offline_after")
    )
    by_target = defaultdict(list)
    for pk, serial, region, health, offline_after in expired:
        target = _status_after_maintenance(health, offline_after, now)
        by_target[target].append((pk, serial, region, Status.MAINTENANCE, target))
    for target, rows in by_target.items():
        Kiosk.objects.filter(pk__in=[r[0] for r in rows], status=Status.MAINTENANCE).update(
            status=target,
            status_changed_at=now,
            status_reason="maintenance window ended",
            maintenance_reason="",
            maintenance_until=None,
            maintenance_by=None,
        )
        _record_flips(rows, Reason.MAINTENANCE_ENDED, "maintenance window ended", now)
    return len(expired)


def _status_after_maintenance(health_status: str, offline_after: datetime | None, now: datetime) -> str:
    if health_status == Status.PROVISIONED:
        return Status.PROVISIONED
    if offline_after is None or offline_after < now:
        return Status.OFFLINE
    return health_status if health_status in LIVE_STATUSES else Status.ONLINE


def _end_calmed_flapping(now: datetime) -> int:
    threshold, window = _conf("FLAP_THRESHOLD"), timedelta(seconds=_conf("FLAP_WINDOW_S"))
    flapping = Kiosk.objects.filter(is_flapping=True).annotate(
        recent=Count("status_changes", filter=Q(status_changes__occurred_at__gt=now - window))
    )
    calmed = [
        (k.pk, k.serial, k.site.region_id, k.recent)
        for k in flapping.select_related("site")
        if flapping_has_ended(k.recent, threshold)
    ]
    if not calmed:
        return 0
    Kiosk.objects.filter(pk__in=[c[0] for c in calmed]).update(is_flapping=False)
    FlapEvent.objects.bulk_create(
        [FlapEvent(kiosk_id=pk, occurred_at=now, started=False, flips_in_window=n) for pk, _s, _r, n in calmed]
    )

    def publish():
        for pk, serial, region_id, n in calmed:
            events.kiosk_flapping_changed.send(
                sender=Kiosk, kiosk_id=pk, serial=serial, region_id=region_id, started=False, flips_in_window=n
            )

    transaction.on_commit(publish)
    _on_commit_kiosks_updated([(c[1], c[2]) for c in calmed])
    return len(calmed)


# --- Maintenance and retirement -------------------------------------------------------------------------


@transaction.atomic
def kiosk_start_maintenance(*, kiosk: Kiosk, actor, reason: str, until: datetime | None = None) -> Kiosk:
    """Silence a kiosk on purpose: no offline flips while in maintenance. Needs a reason; `until` is optional."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the kiosk goes into maintenance.")})
    now = timezone.now()
    if until is not None and until <= now:
        raise ValidationError({"until": _("The end of maintenance must be in the future.")})
    kiosk = Kiosk.objects.select_for_update(of=("self",)).select_related("site").get(pk=kiosk.pk)
    if kiosk.status == Status.RETIRED:
        raise ValidationError(_("A retired kiosk cannot go into maintenance."))
    old = kiosk.status
    kiosk.maintenance_reason = reason[:200]
    kiosk.maintenance_until = until
    kiosk.maintenance_by = actor
    fields = ["maintenance_reason", "maintenance_until", "maintenance_by"]
    if old != Status.MAINTENANCE:
        kiosk.status = Status.MAINTENANCE
        kiosk.status_changed_at = now
        kiosk.status_reason = reason[:200]
        fields += ["status", "status_changed_at", "status_reason"]
    kiosk.save(update_fields=fields)
    if old != Status.MAINTENANCE:
        _record_flips(
            [(kiosk.pk, kiosk.serial, kiosk.site.region_id, old, Status.MAINTENANCE)],
            Reason.MAINTENANCE_STARTED,
            reason,
            now,
            actor=actor,
        )
    else:
        _on_commit_kiosks_updated([(kiosk.serial, kiosk.site.region_id)])
    return kiosk


@transaction.atomic
def kiosk_end_maintenance(*, kiosk: Kiosk, actor) -> Kiosk:
    """Bring a kiosk back from maintenance to what its heartbeats say (offline if it has gone silent)."""
    now = timezone.now()
    kiosk = Kiosk.objects.select_for_update(of=("self",)).select_related("site").get(pk=kiosk.pk)
    if kiosk.status != Status.MAINTENANCE:
        raise ValidationError(_("The kiosk is not in maintenance."))
    target = _status_after_maintenance(kiosk.health_status, kiosk.offline_after, now)
    kiosk.status = target
    kiosk.status_changed_at = now
    kiosk.status_reason = "maintenance ended"
    kiosk.maintenance_reason = ""
    kiosk.maintenance_until = None
    kiosk.maintenance_by = None
    kiosk.save(
        update_fields=[
            "status",
            "status_changed_at",
            "status_reason",
            "maintenance_reason",
            "maintenance_until",
            "maintenance_by",
        ]
    )
    _record_flips(
        [(kiosk.pk, kiosk.serial, kiosk.site.region_id, Status.MAINTENANCE, target)],
        Reason.MAINTENANCE_ENDED,
        f"ended by {actor}" if actor else "",
        now,
        actor=actor,
    )
    return kiosk


@transaction.atomic
def kiosk_retire(*, kiosk: Kiosk, actor) -> Kiosk:
    """Take a kiosk out of the fleet for good: its token is revoked and its open commands cancelled."""
    now = timezone.now()
    kiosk = Kiosk.objects.select_for_update(of=("self",)).select_related("site").get(pk=kiosk.pk)
    if kiosk.status == Status.RETIRED:
        return kiosk
    old = kiosk.status
    Kiosk.objects.filter(pk=kiosk.pk).update(status=Status.RETIRED, status_changed_at=now, status_reason="")
    kiosk.status = Status.RETIRED
    credential_revoke(kiosk=kiosk, actor=actor, reason="retired")
    open_commands = RemoteCommand.objects.select_for_update().filter(
        kiosk=kiosk, status__in=RemoteCommand.OPEN_STATUSES
    )
    cancelled = list(open_commands.values_list("pk", "kind"))
    open_commands.update(status=RemoteCommand.Status.CANCELLED, completed_at=now, result_detail="kiosk retired")
    _on_commit_commands_finished(
        [
            (pk, kiosk.pk, kiosk.serial, kiosk.site.region_id, kind, RemoteCommand.Status.CANCELLED, "kiosk retired")
            for pk, kind in cancelled
        ],
        now,
    )
    _record_flips([(kiosk.pk, kiosk.serial, kiosk.site.region_id, old, Status.RETIRED)], Reason.RETIRED, "", now, actor)
    return kiosk


# --- Remote commands ------------------------------------------------------------------------------------


# A version a kiosk's updater understands: dotted numbers, optionally a pre-release or build tag
# (3.2.2, 3.3.0-rc.1, 2026.11.1+hotfix2), as kiosks report it in `software_version`.
PATCH_VERSION_RE = re.compile(r"\A\d{1,6}(\.\d{1,6}){1,3}([-+][0-9A-Za-z]+([.-][0-9A-Za-z]+)*)?\Z")
PATCH_VERSION_MAX = 64
# The out-of-service screen's text (a few sentences of Chinese) and its structured alternatives (JSON characters).
OUT_OF_SERVICE_MESSAGE_MAX = 500
OUT_OF_SERVICE_ALTERNATIVES_MAX = 4000


def _command_params(*, kiosk: Kiosk, kind: str, params: dict, confirm_serial: str) -> dict:
    """The parameters a command of this kind needs, checked: the one place for the rules, so the console, the staff
    API and the incidents app get the same answers. Raises ValidationError keyed by the parameter."""
    Kind = RemoteCommand.Kind
    if not isinstance(params, dict):
        raise ValidationError({"params": _("The parameters must be an object.")})
    params = dict(params)
    if kind == Kind.RESTART_MODULE:
        module = params.get("module")
        if not module:
            raise ValidationError({"module": _("Choose the module to restart.")})
        if module not in Component.values:
            raise ValidationError({"module": _("Unknown module %(module)s.") % {"module": module}})
    elif kind == Kind.PUSH_PATCH:
        version = params.get("version")
        if not version:
            raise ValidationError({"version": _("Give the version of the patch to install, e.g. 3.2.2.")})
        if not isinstance(version, str):
            raise ValidationError({"version": _("The patch version must be text, e.g. 3.2.2.")})
        version = params["version"] = version.strip()
        if len(version) > PATCH_VERSION_MAX or not PATCH_VERSION_RE.match(version):
            raise ValidationError(
                {
                    "version": _(
                        "“%(version)s” is not a version a kiosk can install: use dotted numbers such as 3.2.2 "
                        "or 3.3.0-rc.1."
                    )
                    % {"version": version[:PATCH_VERSION_MAX]}
                }
            )
    elif kind == Kind.OUT_OF_SERVICE_SCREEN:
        message = params.get("message", "")
        if not isinstance(message, str):
            raise ValidationError({"message": _("The out-of-service message must be text.")})
        if len(message) > OUT_OF_SERVICE_MESSAGE_MAX:
            raise ValidationError(
                {
                    "message": _("The out-of-service message is too long: at most %(max)d characters.")
                    % {"max": OUT_OF_SERVICE_MESSAGE_MAX}
                }
            )
        alternatives = params.get("alternatives")
        # Structured alternatives are optional (older kiosks show `message` only); they must stay a small object.
        if alternatives is not None and (
            not isinstance(alternatives, dict)
            or len(json.dumps(alternatives, ensure_ascii=False)) > OUT_OF_SERVICE_ALTERNATIVES_MAX
        ):
            raise ValidationError({"alternatives": _("The alternatives must be a small object.")})
    elif kind == Kind.FACTORY_RESET:
        if params.get("backup") is not True:
            raise ValidationError(
                {"backup": _("A factory reset erases the kiosk: it is only sent with its data backed up first.")}
            )
        if (confirm_serial or "").strip() != kiosk.serial:
            raise ValidationError(
                {
                    "confirm_serial": _(
                        "A factory reset erases the kiosk: confirm it by typing the kiosk's serial number %(serial)s."
                    )
                    % {"serial": kiosk.serial}
                }
            )
    return params


@transaction.atomic
def command_enqueue(
    *,
    kiosk: Kiosk,
    kind: str,
    actor=None,
    params: dict | None = None,
    ttl_s: int | None = None,
    confirm_serial: str = "",
) -> RemoteCommand:
    """Queue a command for the kiosk; it goes out with the kiosk's next heartbeat and expires after ttl_s.

    The parameters are checked for the kind: restart_module names a module, push_patch a version the kiosk can
    install, and factory_reset asks for a backup first (params {"backup": true}) and is refused unless
    `confirm_serial` repeats the kiosk's serial number (the second of its two confirmations)."""
    if kind not in RemoteCommand.Kind.values:
        raise ValidationError({"kind": _("Unknown command %(kind)s.") % {"kind": kind}})
    if kiosk.status == Status.RETIRED:
        raise ValidationError(_("A retired kiosk cannot receive commands."))
    params = _command_params(kiosk=kiosk, kind=kind, params=params or {}, confirm_serial=confirm_serial)
    ttl_s = ttl_s or _conf("COMMAND_DEFAULT_TTL_S")
    if not 30 <= ttl_s <= 7 * 24 * 3600:
        raise ValidationError({"ttl_s": _("A command must live between 30 seconds and 7 days.")})
    command = RemoteCommand.objects.create(
        kiosk=kiosk,
        kind=kind,
        params=params,
        created_by=actor,
        expires_at=timezone.now() + timedelta(seconds=ttl_s),
    )
    if ingest.is_buffered():
        transaction.on_commit(lambda: ingest.commands_queued(kiosk.pk))
    _on_commit_kiosks_updated([(kiosk.serial, kiosk.site.region_id)])
    return command


def _on_commit_commands_finished(rows, completed_at: datetime) -> None:
    """Announce finished commands — (id, kiosk_id, serial, region_id, kind, status, detail) — once committed."""
    if not rows:
        return

    def publish():
        for command_id, kiosk_id, serial, region_id, kind, status, detail in rows:
            events.command_finished.send(
                sender=RemoteCommand,
                command_id=str(command_id),
                kiosk_id=kiosk_id,
                serial=serial,
                region_id=region_id,
                kind=str(kind),
                status=str(status),
                detail=detail,
                completed_at=completed_at,
            )

    transaction.on_commit(publish)


class CommandConflict(Exception):
    """A result contradicts the one already recorded for the command."""


@transaction.atomic
def command_record_result(
    *, kiosk: Kiosk, command_id, succeeded: bool, detail: str = "", data: dict | None = None
) -> RemoteCommand:
    """Record what the kiosk reports a command did. Reporting the same result twice is harmless; a different
    result for a finished command raises CommandConflict. A result for an expired command is still recorded."""
    command = RemoteCommand.objects.select_for_update().get(pk=command_id, kiosk=kiosk)
    status = RemoteCommand.Status.SUCCEEDED if succeeded else RemoteCommand.Status.FAILED
    if command.status in (RemoteCommand.Status.SUCCEEDED, RemoteCommand.Status.FAILED):
        if command.status != status:
            raise CommandConflict(_("This command already reported %(status)s.") % {"status": command.status})
        return command
    if command.status == RemoteCommand.Status.CANCELLED:
        raise CommandConflict(_("This command was cancelled."))
    command.status = status
    command.completed_at = timezone.now()
    command.result_detail = detail[:2000]
    command.result_data = data or {}
    command.save(update_fields=["status", "completed_at", "result_detail", "result_data"])
    region_id = kiosk.site.region_id
    _on_commit_kiosks_updated([(kiosk.serial, region_id)])
    _on_commit_commands_finished(
        [(command.pk, kiosk.pk, kiosk.serial, region_id, command.kind, status, command.result_detail)],
        command.completed_at,
    )
    return command


@transaction.atomic
def command_cancel(*, command: RemoteCommand, actor) -> RemoteCommand:
    now = timezone.now()
    updated = RemoteCommand.objects.filter(pk=command.pk, status__in=RemoteCommand.OPEN_STATUSES).update(
        status=RemoteCommand.Status.CANCELLED,
        completed_at=now,
        result_detail=f"cancelled by {actor}",
    )
    if not updated:
        raise ValidationError(_("Only a queued or delivered command can be cancelled."))
    command.refresh_from_db()
    kiosk = Kiosk.objects.select_related("site").only("serial", "site__region_id").get(pk=command.kiosk_id)
    _on_commit_commands_finished(
        [
            (
                command.pk,
                kiosk.pk,
                kiosk.serial,
                kiosk.site.region_id,
                command.kind,
                command.status,
                command.result_detail,
            )
        ],
        now,
    )
    _on_commit_kiosks_updated([(kiosk.serial, kiosk.site.region_id)])
    return command


@transaction.atomic
def commands_expire(*, now: datetime | None = None) -> int:
    """Mark open commands past their deadline as expired — a command deferred for a payment until then included —
    and announce each on commit (events.command_finished). Rows another run holds are skipped: safe to run twice
    or concurrently, each command expires once."""
    now = now or timezone.now()
    due = list(
        RemoteCommand.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status__in=RemoteCommand.OPEN_STATUSES, expires_at__lte=now)
        .values_list("pk", "kiosk_id", "kiosk__serial", "kiosk__site__region_id", "kind")
    )
    if not due:
        return 0
    expired = RemoteCommand.objects.filter(
        pk__in=[row[0] for row in due], status__in=RemoteCommand.OPEN_STATUSES
    ).update(status=RemoteCommand.Status.EXPIRED, completed_at=now)
    _on_commit_commands_finished(
        [
            (pk, kiosk_id, serial, region, kind, RemoteCommand.Status.EXPIRED, "")
            for pk, kiosk_id, serial, region, kind in due
        ],
        now,
    )
    _on_commit_kiosks_updated(sorted({(row[2], row[3]) for row in due}))
    return expired


def heartbeats_purge(*, older_than: datetime, batch_size: int = 10_000) -> int:
    """Delete heartbeats received before `older_than`, in batches so no transaction grows huge."""
    total = 0
    while True:
        ids = list(Heartbeat.objects.filter(received_at__lt=older_than).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        total += Heartbeat.objects.filter(pk__in=ids).delete()[0]
