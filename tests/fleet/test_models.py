def test_a_hall_open_until_midnight_is_shown_open_and_does_not_break_the_board(site):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    site.opening_hours = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    site.save()

    assert site.is_open_at(datetime(2026, 11, 26, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai")))
    site.opening_hours = {"mon": [["09:00", "oops"]]}
    assert not site.is_open_at(datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
