"""The board's map of the halls (fleet/hallmap.py): placed by coordinates inside the box, worst drawn on top, no
tile server; pure, so no database."""

from decimal import Decimal

from fleet import hallmap
from fleet.hallmap import HallPoint


def point(code, lat, lon, health="online", kiosks=10, title=None):
    return HallPoint(
        code=code, latitude=lat, longitude=lon, health=health, kiosks=kiosks, title=title or code, href=f"?site={code}"
    )


def test_halls_are_placed_inside_the_box_north_up_and_west_left():
    placed = {
        h.point.code: h
        for h in hallmap.place([point("nw", 31.4, 121.2), point("se", 31.0, 121.8), point("mid", 31.2, 121.5)])
    }

    for hall in placed.values():
        assert hallmap.MARGIN <= hall.x <= hallmap.WIDTH - hallmap.MARGIN
        assert hallmap.MARGIN <= hall.y <= hallmap.HEIGHT - hallmap.MARGIN
    assert placed["nw"].x < placed["mid"].x < placed["se"].x
    assert placed["nw"].y < placed["mid"].y < placed["se"].y


def test_a_single_hall_is_drawn_in_the_middle():
    (hall,) = hallmap.place([point("only", Decimal("31.230000"), Decimal("121.470000"))])

    assert (hall.x, hall.y) == (hallmap.WIDTH / 2, hallmap.HEIGHT / 2)


def test_halls_without_coordinates_are_left_out_and_the_worst_is_drawn_last():
    placed = hallmap.place(
        [
            point("fraud", 31.1, 121.1, health="fraud"),
            point("fine", 31.2, 121.2, health="online"),
            point("nowhere", None, None, health="offline"),
            point("down", 31.3, 121.3, health="offline"),
        ]
    )

    assert [h.point.code for h in placed] == ["fine", "down", "fraud"]


def test_the_svg_escapes_names_and_needs_nothing_from_elsewhere():
    svg = hallmap.render([point("a", 31.2, 121.4, title='<b>"黄浦"</b> & co')], label="地图")

    assert svg.startswith('<svg class="hallmap__svg" viewBox="0 0 640 400" role="img" aria-label="地图"')
    assert "<title>&lt;b&gt;&quot;黄浦&quot;&lt;/b&gt; &amp; co</title>" in svg
    assert "<image" not in svg and "<script" not in svg
    assert hallmap.render([point("x", None, None)], label="地图") == ""


def test_a_bigger_hall_gets_a_bigger_circle_within_limits():
    small, big, huge = (hallmap.place([point("h", 31, 121, kiosks=n)])[0].r for n in (1, 40, 10_000))

    assert small < big <= huge <= 11
