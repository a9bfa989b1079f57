"""Scores computed from known timings: full marks within the target, a straight line to zero at twice the target,
zero for a step that never happened; the right part and escalation counted."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from drills.scoring import Timings, score, step_score

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TARGETS = {"acknowledge": 10, "remote": 20, "dispatch": 30, "arrival": 120, "resolve": 240}


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def test_a_step_scores_full_within_target_half_at_one_and_a_half_times_and_zero_at_twice():
    assert step_score(10, 10) == 100.0
    assert step_score(15, 10) == 50.0
    assert step_score(20, 10) == 0.0
    assert step_score(None, 10) == 0.0


def test_a_drill_score_per_step_per_role_and_in_total():
    timings = Timings(
        opened_at=T0,
        acknowledged_at=at(5),  # 100
        first_remote_at=at(30),  # 20 → 50
        dispatched_at=at(30),  # 100
        arrived_at=at(150),  # 120 → 75
        resolved_at=None,  # never: 0
        checklist_done=3,
        checklist_total=4,
        parts=("PRN-80T",),
        escalation_due=True,
        escalation_fired=False,
    )

    result = score([timings], TARGETS, expected_part="PRN-80T")

    assert [row["score"] for row in result["steps"]] == [100.0, 50.0, 100.0, 75.0, 0.0]
    assert result["roles"] == {"technical_support": 75.0, "operations_manager": 100.0, "field_technician": 37.5}
    assert (result["checklist"], result["right_part"], result["escalation"]) == (75.0, 100.0, 0.0)
    assert result["total"] == round((100 + 50 + 100 + 75 + 0 + 75 + 100 + 0) / 8, 1)


def test_the_wrong_part_and_no_incident_at_all_score_nothing():
    result = score([Timings(opened_at=None)], TARGETS, expected_part="PRN-80T")

    assert result["total"] == 0.0 and result["right_part"] == 0.0
