"""Keeping the summary tables: one period's rows deleted and computed again from the source tables, set-based, in
one transaction. Running it twice, or after a crash half-way, leaves the same rows as one clean run.

What it reads, and why it stays cheap as history grows:
- status flips (fleet.StatusChange) through the index on (kiosk, occurred_at): each kiosk's flips in the period
  and the last one before it — never a scan of the whole flip table, so a day costs the same after a year;
- the halls' opening hours (core/hours.py), with the statutory holidays of the Chinese calendar closed;
- incidents opened that day, journal lines of that business day (their counts per kiosk), work orders of the
  incidents refreshed.

Availability counts opening hours only: a kiosk is down while offline or in maintenance, degraded while a module
fails; before its first flip (provisioned, never heard from) and once retired it is not counted at all. A kiosk has
a row for every day it was in service, its hall open or not, so a failure at night or on a holiday counts.

The payments lost to downtime are estimated from the kiosk's usual rate in the 28 days up to that day (payments ÷
open time it was up), or, for a day with no journal in the 28 days before it, from the kiosk's latest 28 days with
journals: rate × down time.

Drills never reach these tables: their kiosks and incidents are left out here (``REAL_KIOSK`` / ``REAL_INCIDENT``).
"""

import logging
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from analytics.models import IncidentFact, InspectionDay, KioskDay, RefreshState, SiteDay
from core import hours
from fleet.models import Kiosk, Site, StatusChange
from incidents.models import Incident
from reconciliation.models import JournalLine
from workorders.models import PartUsed, WorkOrder

logger = logging.getLogger(__name__)

DAY = timedelta(days=1)
RATE_WINDOW_DAYS = 28
DOWN = ("offline", "maintenance")
NOT_IN_SERVICE = ("provisioned", "retired")
# A kiosk or incident that belongs to a drill is not a real one (drills/ marks them).
REAL_KIOSK = "k.drill_of_id IS NULL"
REAL_INCIDENT = "NOT i.is_drill"


def _holidays():
    try:
        import chinese_calendar
    except ImportError:  # the calendar is optional here: without it, weekly hours only
        return None
    return chinese_calendar


def open_windows(sites, first: date, last: date) -> tuple[list, list, list, list, list]:
    """(site ids, days, starts, ends, open): for every hall and day the whole day (open false: the kiosk-day exists
    when the kiosk is in service, so a failure at night is counted) and every opening interval (open true). A hall
    with no hours is open all day; a statutory holiday on a weekday is closed; a make-up working day (调休) on a
    weekend keeps Monday's hours when the hall has none for that day."""
    calendar = _holidays()
    site_ids, days, starts, ends, is_open = [], [], [], [], []
    day = first
    while day <= last:
        holiday = workday = False
        if calendar is not None:
            try:
                holiday = day.weekday() < 5 and calendar.is_holiday(day)
                workday = day.weekday() >= 5 and calendar.is_workday(day)
            except NotImplementedError:  # a year the calendar does not know yet
                pass
        zone_start = datetime.combine(day, datetime.min.time(), timezone.get_current_timezone())
        for site_id, opening in sites:
            site_ids.append(site_id)
            days.append(day)
            starts.append(zone_start)
            ends.append(zone_start + DAY)
            is_open.append(False)
            if holiday:
                continue
            if not hours.has_hours(opening):
                spans = [(zone_start, zone_start + DAY)]
            else:
                spans = hours.intervals_on(opening, day)
                if not spans and workday:
                    spans = hours.intervals_on(opening, day - timedelta(days=day.weekday()))
            for start, end in spans:
                site_ids.append(site_id)
                days.append(day)
                starts.append(start)
                ends.append(end)
                is_open.append(True)
        day += DAY
    return site_ids, days, starts, ends, is_open


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), timezone.get_current_timezone())


@transaction.atomic
def refresh_days(first: date, last: date) -> int:
    """Compute KioskDay and SiteDay for every day from first to last (inclusive). Returns the kiosk-days written."""
    if last < first:
        return 0
    sites = list(Site.objects.values_list("id", "opening_hours"))
    site_ids, days, starts, ends, is_open = open_windows(sites, first, last)
    start_ts, end_ts = _local_midnight(first), _local_midnight(last + DAY)
    params = {
        "first": first,
        "last": last,
        "start_ts": start_ts,
        "end_ts": end_ts,
        "w_site": site_ids,
        "w_day": days,
        "w_lo": starts,
        "w_hi": ends,
        "w_open": is_open,
        "down": list(DOWN),
        "not_in_service": list(NOT_IN_SERVICE),
        "rate_days": RATE_WINDOW_DAYS,
    }
    kiosk, site, flip = Kiosk._meta.db_table, Site._meta.db_table, StatusChange._meta.db_table
    incident, journal = Incident._meta.db_table, JournalLine._meta.db_table
    kiosk_day, site_day = KioskDay._meta.db_table, SiteDay._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {kiosk_day} WHERE day BETWEEN %(first)s AND %(last)s", params)
        cursor.execute(
            f"""
            WITH w AS (
                SELECT * FROM unnest(%(w_site)s::bigint[], %(w_day)s::date[], %(w_lo)s::timestamptz[],
                                     %(w_hi)s::timestamptz[], %(w_open)s::boolean[]) AS w(site_id, day, lo, hi, open)
            ),
            k AS (
                SELECT k.id, k.site_id, s.region_id, k.model FROM {kiosk} k JOIN {site} s ON s.id = k.site_id
                WHERE {REAL_KIOSK}
            ),
            -- Each kiosk's status intervals that overlap the period: its flips in it and the last one before.
            f AS (
                SELECT c.kiosk_id, c.to_status, c.occurred_at AS s,
                       lead(c.occurred_at, 1, 'infinity') OVER (PARTITION BY c.kiosk_id ORDER BY c.occurred_at, c.id)
                           AS e
                FROM k CROSS JOIN LATERAL (
                    (SELECT x.kiosk_id, x.to_status, x.occurred_at, x.id FROM {flip} x
                     WHERE x.kiosk_id = k.id AND x.occurred_at < %(start_ts)s
                     ORDER BY x.occurred_at DESC LIMIT 1)
                    UNION ALL
                    SELECT x.kiosk_id, x.to_status, x.occurred_at, x.id FROM {flip} x
                    WHERE x.kiosk_id = k.id AND x.occurred_at >= %(start_ts)s AND x.occurred_at < %(end_ts)s
                ) c
            ),
            spans AS (
                SELECT k.id AS kiosk_id, k.site_id, k.region_id, k.model, w.day, w.open, f.to_status,
                       extract(epoch FROM least(f.e, w.hi) - greatest(f.s, w.lo)) AS secs
                FROM k JOIN w ON w.site_id = k.site_id
                JOIN f ON f.kiosk_id = k.id AND f.s < w.hi AND f.e > w.lo
            ),
            failures AS (
                SELECT i.kiosk_id, (i.opened_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS n
                FROM {incident} i JOIN {kiosk} k ON k.id = i.kiosk_id
                WHERE i.opened_at >= %(start_ts)s AND i.opened_at < %(end_ts)s AND {REAL_INCIDENT} AND {REAL_KIOSK}
                  AND i.state <> 'cancelled'
                GROUP BY 1, 2
            ),
            payments AS (
                SELECT j.kiosk_id, j.business_date AS day, count(*) AS n FROM {journal} j
                WHERE j.business_date BETWEEN %(first)s AND %(last)s
                GROUP BY 1, 2
            )
            INSERT INTO {kiosk_day}
                (day, kiosk_id, site_id, region_id, model, open_s, down_s, degraded_s, failures, payments,
                 payments_lost)
            SELECT t.day, t.kiosk_id, t.site_id, t.region_id, t.model, t.open_s, least(t.down_s, t.open_s),
                   least(t.degraded_s, t.open_s), coalesce(fl.n, 0), coalesce(p.n, 0), 0
            FROM (
                SELECT kiosk_id, site_id, region_id, model, day,
                       round(coalesce(sum(secs) FILTER (WHERE open AND to_status <> ALL(%(not_in_service)s)), 0))::int
                           AS open_s,
                       round(coalesce(sum(secs) FILTER (WHERE open AND to_status = ANY(%(down)s)), 0))::int AS down_s,
                       round(coalesce(sum(secs) FILTER (WHERE open AND to_status = 'degraded'), 0))::int AS degraded_s
                FROM spans GROUP BY kiosk_id, site_id, region_id, model, day
                -- The kiosk was in service at some moment of the day (its hall open or not).
                HAVING bool_or(NOT open AND to_status <> ALL(%(not_in_service)s))
            ) t
            LEFT JOIN failures fl ON fl.kiosk_id = t.kiosk_id AND fl.day = t.day
            LEFT JOIN payments p ON p.kiosk_id = t.kiosk_id AND p.day = t.day
            """,
            {**params, "tz": str(timezone.get_current_timezone())},
        )
        written = cursor.rowcount
        # The estimate: the rate of the 28 days up to the day, else the kiosk's latest 28 days with journals.
        cursor.execute(
            f"""
            WITH target AS (
                SELECT id, kiosk_id, day, down_s FROM {kiosk_day}
                WHERE day BETWEEN %(first)s AND %(last)s AND down_s > 0
            ),
            usual AS (
                SELECT t.id, sum(d.payments) AS paid, sum(d.open_s - d.down_s) AS up_s
                FROM target t JOIN {kiosk_day} d
                  ON d.kiosk_id = t.kiosk_id AND d.day BETWEEN t.day - (%(rate_days)s - 1) AND t.day
                GROUP BY t.id
            ),
            latest AS (
                SELECT r.kiosk_id, sum(r.payments)::float / nullif(sum(r.open_s - r.down_s), 0) AS rate
                FROM (
                    SELECT d.kiosk_id, d.payments, d.open_s, d.down_s,
                           row_number() OVER (PARTITION BY d.kiosk_id ORDER BY d.day DESC) AS n
                    FROM {kiosk_day} d
                    WHERE d.payments > 0 AND d.day > %(last)s - 400
                      AND d.kiosk_id IN (SELECT kiosk_id FROM target)
                ) r
                WHERE r.n <= %(rate_days)s
                GROUP BY r.kiosk_id
            )
            UPDATE {kiosk_day} d
            SET payments_lost = round(t.down_s * coalesce(
                    CASE WHEN tr.paid > 0 AND tr.up_s > 0 THEN tr.paid::float / tr.up_s END, l.rate, 0))::int
            FROM target t JOIN usual tr ON tr.id = t.id LEFT JOIN latest l ON l.kiosk_id = t.kiosk_id
            WHERE d.id = t.id
            """,
            params,
        )
        cursor.execute(f"DELETE FROM {site_day} WHERE day BETWEEN %(first)s AND %(last)s", params)
        cursor.execute(
            f"""
            INSERT INTO {site_day}
                (day, site_id, region_id, model, kiosks, open_s, down_s, degraded_s, failures, payments,
                 payments_lost)
            SELECT day, site_id, region_id, model, count(*), sum(open_s), sum(down_s), sum(degraded_s),
                   sum(failures), sum(payments), sum(payments_lost)
            FROM {kiosk_day} WHERE day BETWEEN %(first)s AND %(last)s
            GROUP BY day, site_id, region_id, model
            """,
            params,
        )
        cursor.execute(f"DELETE FROM {RefreshState._meta.db_table} WHERE day BETWEEN %(first)s AND %(last)s", params)
        cursor.execute(
            f"""
            INSERT INTO {RefreshState._meta.db_table} (day, refreshed_at, kiosks)
            SELECT g.day::date, %(now)s, (SELECT count(*) FROM {kiosk_day} d WHERE d.day = g.day::date)
            FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS g(day)
            """,
            {**params, "now": timezone.now()},
        )
    return written


@transaction.atomic
def refresh_incidents(first: date, last: date) -> int:
    """Rewrite the facts of every real incident opened, resolved or closed from first to last (local days)."""
    start_ts, end_ts = _local_midnight(first), _local_midnight(last + DAY)
    incident, kiosk = Incident._meta.db_table, Kiosk._meta.db_table
    order, part = WorkOrder._meta.db_table, PartUsed._meta.db_table
    fact = IncidentFact._meta.db_table
    params = {"start_ts": start_ts, "end_ts": end_ts, "tz": str(timezone.get_current_timezone()), "now": timezone.now()}
    touched = f"""
        SELECT i.id FROM {incident} i
        WHERE (i.opened_at >= %(start_ts)s AND i.opened_at < %(end_ts)s)
           OR (i.resolved_at >= %(start_ts)s AND i.resolved_at < %(end_ts)s)
           OR (i.closed_at >= %(start_ts)s AND i.closed_at < %(end_ts)s)
    """

    def met(done: str, due: str) -> str:
        return (
            f"CASE WHEN i.{due} IS NULL THEN NULL WHEN i.{done} IS NOT NULL THEN i.{done} <= i.{due} "
            f"WHEN i.{due} < %(now)s THEN false END"
        )

    def secs(at: str) -> str:
        # GREATEST ignores a NULL: a step not reached stays empty, not zero.
        return f"CASE WHEN i.{at} IS NOT NULL THEN greatest(0, extract(epoch FROM i.{at} - i.opened_at))::int END"

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {fact} WHERE incident_id IN ({touched})", params)
        cursor.execute(
            f"""
            WITH visits AS (
                SELECT o.incident_id, count(*) FILTER (WHERE o.checked_in_at IS NOT NULL) AS n
                FROM {order} o WHERE o.incident_id IN ({touched}) GROUP BY o.incident_id
            ),
            parts AS (
                SELECT o.incident_id, sum(p.quantity) AS n FROM {part} p JOIN {order} o ON o.id = p.order_id
                WHERE o.incident_id IN ({touched}) GROUP BY o.incident_id
            )
            INSERT INTO {fact}
                (incident_id, opened_at, day, kiosk_id, site_id, region_id, model, fault_kind, category, component,
                 source, severity, cancelled, acknowledge_s, remote_s, arrival_s, resolve_s, acknowledge_met,
                 remote_met, onsite_met, resolve_met, visits, first_time_fix, parts_used, reopened, resolution)
            SELECT i.id, i.opened_at, (i.opened_at AT TIME ZONE %(tz)s)::date, i.kiosk_id, i.site_id, i.region_id,
                   coalesce(k.model, ''), i.fault_kind, i.category, i.component, i.source, i.severity,
                   i.state = 'cancelled', {secs("acknowledged_at")}, {secs("first_remote_at")}, {secs("onsite_at")},
                   {secs("resolved_at")}, {met("acknowledged_at", "acknowledge_due_at")},
                   {met("first_remote_at", "remote_due_at")}, {met("onsite_at", "onsite_due_at")},
                   {met("resolved_at", "resolve_due_at")}, coalesce(v.n, 0),
                   CASE WHEN coalesce(v.n, 0) = 0 THEN NULL
                        ELSE v.n = 1 AND i.resolved_at IS NOT NULL AND i.reopened_count = 0 END,
                   coalesce(p.n, 0), i.reopened_count, i.resolution
            FROM {incident} i
            LEFT JOIN {kiosk} k ON k.id = i.kiosk_id
            LEFT JOIN visits v ON v.incident_id = i.id
            LEFT JOIN parts p ON p.incident_id = i.id
            WHERE i.id IN ({touched}) AND NOT i.is_group AND {REAL_INCIDENT}
              AND (k.id IS NULL OR {REAL_KIOSK})
            """,
            params,
        )
        return cursor.rowcount


@transaction.atomic
def refresh_inspections(first: date, last: date) -> int:
    """Rewrite the inspection days whose period started from first to last: finished on time, late, or missed."""
    from inspections.models import Inspection

    table, source = InspectionDay._meta.db_table, Inspection._meta.db_table
    params = {"first": first, "last": last}
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE day BETWEEN %(first)s AND %(last)s", params)
        cursor.execute(
            f"""
            INSERT INTO {table} (day, site_id, region_id, assignee_id, on_time, late, missed)
            SELECT i.period_start, i.site_id, i.region_id, i.assignee_id,
                   count(*) FILTER (WHERE i.status = 'done' AND i.completed_at <= i.due_at),
                   count(*) FILTER (WHERE i.status = 'done' AND i.completed_at > i.due_at),
                   count(*) FILTER (WHERE i.status = 'missed')
            FROM {source} i JOIN {Kiosk._meta.db_table} k ON k.id = i.kiosk_id
            WHERE i.period_start BETWEEN %(first)s AND %(last)s AND i.status IN ('done', 'missed') AND {REAL_KIOSK}
            GROUP BY i.period_start, i.site_id, i.region_id, i.assignee_id
            """,
            params,
        )
        return cursor.rowcount


INSPECTION_WINDOW_DAYS = 35  # a monthly inspection's period ends (done or missed) up to a month after it starts


def refresh(first: date, last: date) -> dict:
    """Every summary for a period (the command and the task call this)."""
    return {
        "kiosk_days": refresh_days(first, last),
        "incidents": refresh_incidents(first, last),
        "inspections": refresh_inspections(first, last),
    }
