"""How the figures read: durations as 2 小时 5 分, rates as 98.7%, changes with their sign."""

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def duration(seconds) -> str:
    if seconds is None:
        return "—"
    minutes = round(float(seconds) / 60)
    if minutes < 60:
        return _("%(m)d min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes} if minutes else _("%(h)d h") % {"h": hours}
    return _("%(d).1f days") % {"d": hours / 24}


@register.filter
def hours(seconds) -> str:
    if seconds is None:
        return "—"
    return _("%(h)s h") % {"h": f"{float(seconds) / 3600:,.0f}"}


@register.filter
def pct(ratio, digits: int = 1) -> str:
    if ratio is None:
        return "—"
    return f"{float(ratio) * 100:.{int(digits)}f}%"


@register.filter
def figure(value, unit: str) -> str:
    """A headline value in its unit (report.HEADLINE)."""
    if unit == "pct":
        return pct(value, 2 if value is not None and value > 0.99 else 1)
    if unit == "duration":
        return duration(value)
    if unit == "hours":
        return hours(value)
    return "—" if value is None else f"{value:,}"


@register.filter
def change(row: dict) -> str:
    """The change against the period before, signed, in the row's unit."""
    value, unit = row.get("change"), row.get("unit")
    if value is None:
        return "—"
    if value == 0:
        return _("no change")
    sign = "+" if value > 0 else "−"
    magnitude = abs(value)
    if unit == "pct" and round(magnitude * 100, 1) == 0:
        return _("no change")
    if unit == "pct":
        return _("%(sign)s%(n).1f points") % {"sign": sign, "n": magnitude * 100}
    if unit == "duration":
        return f"{sign}{duration(magnitude)}"
    if unit == "hours":
        return f"{sign}{hours(magnitude)}"
    return f"{sign}{magnitude:,}"
