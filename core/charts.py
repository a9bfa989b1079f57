"""The console's chart look, shared by every server-rendered pygal chart (kiosk metrics, match rate)."""

import re

from django.utils.safestring import mark_safe
from pygal.style import Style

CHART_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#4b5563",
    foreground_strong="#111827",
    foreground_subtle="#e5e7eb",
    guide_stroke_color="#eceff3",
    guide_stroke_dasharray="1, 0",
    major_guide_stroke_color="#e2e6ec",
    major_guide_stroke_dasharray="1, 0",
    opacity=".9",
    colors=("#2563eb", "#dc2626"),
    font_family="system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    value_font_size=10,
    tooltip_font_size=11,
    no_data_font_size=14,  # pygal's default (64) fills an empty chart with its words
)

# The options every console chart shares: our style, no tooltip script (js=[]), tight margins, no legend.
CHART_OPTIONS = {"style": CHART_STYLE, "js": [], "margin": 6, "spacing": 6, "show_legend": False}

# pygal still writes a small inline config script for its tooltips; without the tooltip code it does nothing.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)


def render_svg(chart) -> str:
    """The chart as inline SVG markup with no script in it."""
    return mark_safe(_SCRIPT.sub("", chart.render(is_unicode=True)))  # noqa: S308 — pygal escapes labels itself
