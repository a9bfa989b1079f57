"""The board's map of the service halls: an inline SVG drawn on the server from the halls' coordinates.

No tile server and no script: each hall is a circle placed by its latitude and longitude, projected linearly into
the box of all the halls (longitudes shrunk by the cosine of the middle latitude, so a district keeps its shape),
coloured by its worst kiosk, with a <title> the browser shows as a tooltip, and a link that filters the board to it.
Pure: it takes plain values and returns markup, so it is tested without a database.
"""

import math
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
HEIGHT = 400
MARGIN = 18


@dataclass(frozen=True)
class HallPoint:
    """One hall as the map needs it. ``health`` names its colour (the worst status of its kiosks, or "fraud")."""

    code: str
    latitude: Decimal | float | None
    longitude: Decimal | float | None
    health: str
    kiosks: int
    title: str  # the tooltip: the hall's name and its counts, in the reader's language
    href: str


@dataclass(frozen=True)
class PlacedHall:
    point: HallPoint
    x: float
    y: float
    r: float


# Drawn last, so on top: a fraud alarm is never hidden under a healthy neighbour.
_DRAW_ORDER = {"fraud": 6, "offline": 5, "degraded": 4, "flapping": 3, "maintenance": 2, "online": 1}


def _radius(kiosks: int) -> float:
    # Grows with the square root (the area follows the number of kiosks), within limits that stay legible.
    return round(4 + min(7.0, math.sqrt(max(kiosks, 0)) * 0.9), 1)


def place(
    points: list[HallPoint], *, width: int = WIDTH, height: int = HEIGHT, margin: int = MARGIN
) -> list[PlacedHall]:
    """The halls that have coordinates, placed in the box, the worst drawn last."""
    located = [p for p in points if p.latitude is not None and p.longitude is not None]
    if not located:
        return []
    lats = [float(p.latitude) for p in located]
    lons = [float(p.longitude) for p in located]
    shrink = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = (max(lons) - min(lons)) * shrink
    span_y = max(lats) - min(lats)
    inner_w, inner_h = width - 2 * margin, height - 2 * margin
    # One hall, or halls in a line, still land in the box: a zero span takes no room and is centred.
    scale = min(inner_w / span_x if span_x else math.inf, inner_h / span_y if span_y else math.inf)
    if scale == math.inf:
        scale = 0.0
    left = margin + (inner_w - span_x * scale) / 2
    top = margin + (inner_h - span_y * scale) / 2
    placed = [
        PlacedHall(
            point=p,
            x=round(left + (float(p.longitude) - min(lons)) * shrink * scale, 1),
            y=round(top + (max(lats) - float(p.latitude)) * scale, 1),
            r=_radius(p.kiosks),
        )
        for p in located
    ]
    placed.sort(key=lambda h: (_DRAW_ORDER.get(h.point.health, 0), h.point.code))
    return placed


def render(points: list[HallPoint], *, label: str, width: int = WIDTH, height: int = HEIGHT) -> SafeString:
    """The map as inline SVG markup; ``label`` names it for screen readers. Empty when no hall has coordinates."""
    placed = place(points, width=width, height=height)
    if not placed:
        return mark_safe("")
    circles = format_html_join(
        "",
        '<a href="{}" class="hallmap__hall" data-hall="{}" data-health="{}"><title>{}</title>'
        '<circle cx="{}" cy="{}" r="{}" class="hallmap__dot hallmap__dot--{}"/></a>',
        (
            (
                h.point.href,
                h.point.code,
                h.point.health or "empty",
                h.point.title,
                h.x,
                h.y,
                h.r,
                h.point.health or "empty",
            )
            for h in placed
        ),
    )
    return format_html(
        '<svg class="hallmap__svg" viewBox="0 0 {} {}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">'
        '<rect class="hallmap__bg" x="0" y="0" width="{}" height="{}" rx="6"/>{}</svg>',
        width,
        height,
        label,
        width,
        height,
        circles,
    )
