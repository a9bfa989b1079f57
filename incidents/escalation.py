"""SLA breaches and escalation steps, run by the beat's `escalate` task every 30 seconds. Safe to run twice or
concurrently: every breach and every step is recorded once (timeline once-keys, notification unique keys), and an
incident's step is taken under its row lock.

SLA breaches. The deadlines were set when the incident opened (engine.deadlines: the hall's opening hours unless
the policy says wall clock, so a deadline already skips the night). A working incident past a deadline whose
milestone is not met — acknowledged, first remote attempt, onsite arrival, resolved — gets one SLA_BREACHED entry
per milestone, dated at the deadline, and one message per milestone (event "sla:<milestone>") to the general
channels of its region and severity. One INSERT … SELECT per milestone, whatever the number of incidents. A
mass outage's children record their breaches but send nothing: the hall's parent speaks for them.

Escalation. The incident carries a snapshot of its chain (engine: the severity's chain for its region, else the
one for every region), so editing a chain never rewrites an open incident's. While nobody has acknowledged it,
each due step notifies its target and sets the next one `wait_min` later:
- a role: the channels configured for that role (NotificationChannel.role) in the incident's region or in every
  region; where there is none, each active person of that role who sees the region and has an e-mail address,
  by e-mail — a step never goes nowhere;
- a person: by e-mail to their account's address (a person without one is recorded on the timeline, not skipped
  silently).
After the last step the last step repeats every `wait_min` until someone acknowledges ("notify the next,
repeat"): events escalation:1, escalation:2 … escalation:<last>, then escalation:<last>:2, :3 … (the reminder's
round). `escalation_step` counts the steps taken, reminders included. Acknowledging clears next_escalation_at
(services), which ends the chain. A kiosk-down incident waits NOTIFY_GROUP_WAIT_S before its first step, as its
first message does, so a hall's outage is escalated once, by its parent.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.roles import Role
from core.people import person_name
from incidents import events, notify, rules, services
from incidents.models import ACTIVE_STATES, Incident, NotificationChannel, TimelineEntry

logger = logging.getLogger(__name__)

BATCH = 200  # incidents stepped per transaction
# Written out, so the planner sees the open-incident index's predicate (state IN the open states) covers it.
ACTIVE_SQL = "(" + ", ".join(f"'{state.value}'" for state in ACTIVE_STATES) + ")"


def tick(now: datetime | None = None) -> int:
    """Record the SLA breaches and take the escalation steps that are due. Returns how many of both."""
    now = now or timezone.now()
    with translation.override(settings.LANGUAGE_CODE):
        breaches = record_breaches(now)
        steps = escalate_due(now)
    if breaches or steps:
        notify_soon()
    return breaches + steps


def notify_soon() -> None:
    """Wake the sender after commit (the beat runs it every 10 s anyway)."""
    transaction.on_commit(notify._wake)


# --- SLA breaches ---------------------------------------------------------------------------------------------


def _breach_texts(name: str) -> tuple[str, str]:
    return (
        _("SLA breached: %(milestone)s overdue") % {"milestone": notify.milestone_label(name)},
        _("Deadline %(at)s (target %(minutes)s min)"),
    )


def record_breaches(now: datetime) -> int:
    """One SLA_BREACHED entry per incident and missed milestone, and its message; returns how many were new."""
    total = 0
    table, timeline = Incident._meta.db_table, TimelineEntry._meta.db_table
    for name, due_field, met_field in notify.MILESTONES:
        measure, result = _breach_texts(name)
        key = f"sla:{name}"
        with transaction.atomic(), connection.cursor() as cursor:
            # The result is written per row: the deadline in the console's time zone and the target in minutes.
            cursor.execute(
                f"""
                INSERT INTO {timeline} (incident_id, at, kind, actor_id, measure, result, data, once_key)
                SELECT i.id, i.{due_field}, %(kind)s, NULL, %(measure)s,
                       replace(replace(%(result)s, '%%(at)s',
                               to_char(i.{due_field} AT TIME ZONE %(tz)s, 'YYYY-MM-DD HH24:MI')),
                               '%%(minutes)s', coalesce(i.sla->>%(target)s, '?')),
                       jsonb_build_object('sla', %(name)s, 'due_at', i.{due_field},
                                          'target_min', i.sla->%(target)s, 'clock', i.sla->'clock'),
                       %(key)s
                FROM {table} i
                WHERE i.state IN {ACTIVE_SQL} AND i.{due_field} <= %(now)s AND i.{met_field} IS NULL
                  AND NOT EXISTS (SELECT 1 FROM {timeline} t WHERE t.incident_id = i.id AND t.once_key = %(key)s)
                ON CONFLICT ON CONSTRAINT timeline_once_per_incident DO NOTHING
                RETURNING incident_id
                """,
                {
                    "kind": TimelineEntry.Kind.SLA_BREACHED,
                    "measure": measure[:300],
                    "result": result,
                    "tz": settings.TIME_ZONE,
                    "target": f"{name}_min",
                    "name": name,
                    "key": key,
                    "now": now,
                },
            )
            ids = [row[0] for row in cursor.fetchall()]
            if ids:
                notify.queue_to_channels(incident_ids=ids, event=key, now=now)
                events.changed_on_commit(ids)
        total += len(ids)
    return total


# --- Escalation -----------------------------------------------------------------------------------------------


def _due(now: datetime):
    """Incidents whose next step is due: not acknowledged, not part of a mass outage, being worked; kiosk-down
    ones only after the grouping wait."""
    wait = timedelta(seconds=settings.KIOSKOPS["NOTIFY_GROUP_WAIT_S"])
    return (
        Incident.objects.filter(
            next_escalation_at__lte=now, acknowledged_at__isnull=True, parent__isnull=True, state__in=ACTIVE_STATES
        )
        .exclude(Q(is_group=False, fault_kind__in=rules.KIOSK_DOWN_KINDS, opened_at__gt=now - wait))
        .order_by("next_escalation_at", "id")
    )


def escalate_due(now: datetime) -> int:
    """Take every due escalation step; returns how many were taken."""
    taken = 0
    for _round in range(50):
        with transaction.atomic():
            batch = list(_due(now).select_for_update(of=("self",), skip_locked=True).select_related("region")[:BATCH])
            for incident in batch:
                taken += _step(incident, now)
        if len(batch) < BATCH:
            break
    return taken


def step_for(chain: list[dict], taken: int) -> tuple[dict, str] | None:
    """The step after `taken` steps of this chain, and its event: escalation:<n>, then reminders of the last
    step, escalation:<last>:<round>."""
    if not chain:
        return None
    steps = sorted(chain, key=lambda s: s.get("position", 0))
    n = taken + 1
    if n <= len(steps):
        return steps[n - 1], f"escalation:{n}"
    return steps[-1], f"escalation:{len(steps)}:{n - len(steps) + 1}"


def _step(incident: Incident, now: datetime) -> int:
    found = step_for(incident.escalation or [], incident.escalation_step)
    if found is None:
        Incident.objects.filter(pk=incident.pk).update(next_escalation_at=None)
        return 0
    step, event = found
    role, user_id = step.get("role") or "", step.get("user_id")
    channels = people = 0
    missing = ""
    if role:
        channels = _role_channels(incident, role)
        if channels:
            channels = notify.queue_to_channels(incident_ids=[incident.pk], event=event, now=now, role=role)
        else:
            user_ids = _role_people(incident, role)
            people = notify.queue_to_people(incident_id=incident.pk, user_ids=user_ids, event=event, now=now)
            if not user_ids:
                missing = _("No channel for this role, and nobody of it with an e-mail address sees this region.")
        whom = str(Role(role).label) if role in Role.values else role
    else:
        user = get_user_model().objects.filter(pk=user_id).first()
        whom = person_name(user) if user else _("a person no longer in the system")
        if user is not None and user.is_active and user.email:
            people = notify.queue_to_people(incident_id=incident.pk, user_ids=[user.pk], event=event, now=now)
        else:
            missing = _("This person has no e-mail address.")
    # At least a minute: a step of 0 minutes would otherwise run the rest of the chain, and its reminders, at once.
    wait = max(int(step.get("wait_min") if step.get("wait_min") is not None else 15), 1)
    Incident.objects.filter(pk=incident.pk).update(
        escalation_step=incident.escalation_step + 1, next_escalation_at=now + timedelta(minutes=wait)
    )
    services.entry_once(
        incident,
        TimelineEntry.Kind.ESCALATED,
        event,
        at=now,
        measure=_notified(event, whom),
        result=missing or _("Next step in %(n)s min unless acknowledged") % {"n": wait},
        data={"event": event, "role": role, "user_id": user_id, "channels": channels, "people": people},
    )
    return 1


def _notified(event: str, whom: str) -> str:
    """第 2 级升级：已通知运营管理岗 / 第 2 级升级（第 3 次提醒）：已通知运营管理岗"""
    parts = event.split(":")
    if len(parts) == 3:
        return _("Escalation step %(n)s, reminder %(round)s: %(whom)s notified") % {
            "n": parts[1],
            "round": parts[2],
            "whom": whom,
        }
    return _("Escalation step %(n)s: %(whom)s notified") % {"n": parts[1], "whom": whom}


def _role_channels(incident: Incident, role: str) -> int:
    return (
        NotificationChannel.objects.filter(active=True, security=False, role=role, max_severity__gte=incident.severity)
        .filter(Q(region__isnull=True) | Q(region_id=incident.region_id))
        .count()
    )


def _role_people(incident: Incident, role: str) -> list[int]:
    """Active people of the role with an e-mail address who see the incident's region."""
    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=role)
        .exclude(email="")
        .filter(
            Q(is_superuser=True)
            | Q(operator_profile__all_regions=True)
            | Q(operator_profile__regions=incident.region_id)
        )
        .distinct()
        .values_list("pk", flat=True)
    )
