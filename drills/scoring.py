"""A drill's score from the times the pipeline recorded (pure: no ORM). Each step scores 100 within its target,
falling in a straight line to 0 at twice the target, 0 when it never happened; a role's score is the mean of its
steps; the total is the mean of the steps, the checklist adherence, the right part and escalation."""

from dataclasses import dataclass
from datetime import datetime

from drills.scenarios import STEP_ROLES, STEPS


def step_score(minutes: float | None, target: float) -> float:
    if minutes is None:
        return 0.0
    if minutes <= target:
        return 100.0
    if minutes >= 2 * target:
        return 0.0
    return round(100.0 * (2 * target - minutes) / target, 1)


@dataclass(frozen=True)
class Timings:
    opened_at: datetime | None
    acknowledged_at: datetime | None = None
    first_remote_at: datetime | None = None
    dispatched_at: datetime | None = None
    arrived_at: datetime | None = None
    resolved_at: datetime | None = None
    checklist_done: int = 0
    checklist_total: int = 0
    parts: tuple = ()
    escalation_due: bool = False  # acknowledgement came after the first escalation step's time
    escalation_fired: bool = False


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds() / 60)


def score(timings: list[Timings], targets: dict, expected_part: str = "") -> dict:
    """The drill's score over its targets (one Timings per stand-in kiosk)."""
    steps = {name: [] for name in STEPS}
    checklist_done = checklist_total = 0
    right_part, escalation = [], []
    for t in timings:
        measured = {
            "acknowledge": _minutes(t.opened_at, t.acknowledged_at),
            "remote": _minutes(t.opened_at, t.first_remote_at),
            "dispatch": _minutes(t.opened_at, t.dispatched_at),
            "arrival": _minutes(t.opened_at, t.arrived_at),
            "resolve": _minutes(t.opened_at, t.resolved_at),
        }
        for name in STEPS:
            steps[name].append((measured[name], step_score(measured[name], float(targets[name]))))
        checklist_done += t.checklist_done
        checklist_total += t.checklist_total
        if expected_part:
            right_part.append(expected_part in t.parts)
        if t.escalation_due:
            escalation.append(t.escalation_fired)
    step_rows = []
    for name in STEPS:
        values = steps[name]
        measured = [m for m, _s in values if m is not None]
        step_rows.append(
            {
                "step": name,
                "role": STEP_ROLES[name],
                "target_min": targets[name],
                "minutes": round(sum(measured) / len(measured), 1) if measured else None,
                "score": round(sum(s for _m, s in values) / len(values), 1) if values else 0.0,
            }
        )
    roles: dict[str, list[float]] = {}
    for row in step_rows:
        roles.setdefault(row["role"], []).append(row["score"])
    checklist = round(100.0 * checklist_done / checklist_total, 1) if checklist_total else None
    part = round(100.0 * sum(right_part) / len(right_part), 1) if right_part else None
    escalated = round(100.0 * sum(escalation) / len(escalation), 1) if escalation else None
    parts = [row["score"] for row in step_rows] + [v for v in (checklist, part, escalated) if v is not None]
    return {
        "steps": step_rows,
        "roles": {role: round(sum(v) / len(v), 1) for role, v in roles.items()},
        "checklist": checklist,
        "right_part": part,
        "escalation": escalated,
        "total": round(sum(parts) / len(parts), 1) if parts else 0.0,
    }
