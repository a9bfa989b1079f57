"""Template helpers of the console: how states, components, roles and metric charts read on screen."""

import re
from datetime import UTC, datetime

import pygal
from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from core.charts import CHART_OPTIONS, render_svg
from fleet.vocabulary import Component, ComponentState, state_class

register = template.Library()

# Fraud first, then faults, then warnings: the order a tile lists its unhealthy components in.
_CLASS_RANK = {"fraud": 0, "fault": 1, "warning": 2, "ok": 3}


@register.filter
def component_state_class(state: str) -> str:
    return state_class(state)


@register.filter
def component_label(name: str) -> str:
    return Component(name).label if name in Component.values else name


@register.filter
def component_state_label(state: str) -> str:
    return ComponentState(state).label if state in ComponentState.values else state


@register.filter
def component_rows(components: dict) -> list[dict]:
    """All reported components, worst first, each with its label, state label and visual class."""
    rows = [
        {
            "name": name,
            "label": component_label(name),
            "state": state,
            "state_label": component_state_label(state),
            "css": state_class(state),
        }
        for name, state in (components or {}).items()
    ]
    rows.sort(key=lambda r: (_CLASS_RANK[r["css"]], str(r["label"])))
    return rows


@register.filter
def unhealthy_component_rows(components: dict) -> list[dict]:
    return [row for row in component_rows(components) if row["css"] != "ok"]


@register.filter
def has_fraud(components: dict) -> bool:
    return any(state_class(state) == "fraud" for state in (components or {}).values())


@register.filter
def skew_is_large(skew_s) -> bool:
    return skew_s is not None and abs(skew_s) > settings.KIOSKOPS["CLOCK_SKEW_TOLERANCE_S"]


@register.filter
def error_title(error_code, language: str) -> str:
    return error_code.title(language)


@register.filter
def error_first_checks(error_code, language: str) -> list[str]:
    return error_code.first_checks(language)


# Enough points to see a day's shape; more only makes the SVG heavy.
_MAX_POINTS = 288


def _local_hh_mm(moment: datetime) -> str:
    # pygal hands back naive UTC datetimes (utcfromtimestamp); show them in the console's time zone.
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return timezone.localtime(moment).strftime("%H:%M")


@register.simple_tag
def metric_chart(series) -> str:
    """An inline SVG line chart of one metric over time, with its degraded threshold dashed. Rendered here, on
    the server; pygal's own tooltip script is left out (js=[]) so the page loads no third-party code."""
    points = series.points
    if len(points) > _MAX_POINTS:
        step = -(-len(points) // _MAX_POINTS)
        points = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
    chart = pygal.DateTimeLine(
        **CHART_OPTIONS,
        width=560,
        height=190,
        show_dots=len(points) < 2,
        dots_size=2,
        stroke_style={"width": 1.6},
        x_value_formatter=_local_hh_mm,
        x_labels_major_count=6,
        show_minor_x_labels=False,
        truncate_label=-1,
        no_data_text=_("No data"),
        disable_xml_declaration=True,
    )
    chart.add(series.label, points)
    if series.threshold is not None and points:
        chart.add(
            _("Threshold"),
            [(points[0][0], series.threshold), (points[-1][0], series.threshold)],
            stroke_style={"width": 1, "dasharray": "4, 3"},
            show_dots=False,
        )
    return render_svg(chart)


# A dead letter's error as the consumer stored it: "DataError: …" when the database refused the heartbeat.
_DATABASE_REFUSAL = re.compile(r"^\w*(Error|Exception): ")


@register.filter
def dead_letter_reason(error: str) -> str:
    """Why a heartbeat was set aside, in the reader's language; the stored text stays available as the detail."""
    error = error or ""
    if _DATABASE_REFUSAL.match(error):
        return _("The database refused to store it.")
    translated = _(error) if error else ""
    return translated if translated != error else _("It could not be read as a heartbeat.")
