"""Template helpers of the reconciliation console: how outcomes, actions, money and the match-rate chart read."""

import math
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

import pygal
from django import template
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.charts import CHART_OPTIONS, render_svg
from reconciliation import causes
from reconciliation.lookup import describe_cause
from reconciliation.models import Channel, Outcome, ReconAction, ReconItem
from reconciliation.privacy import display_payer_ref

register = template.Library()

# What the citizen lookup may say besides an Outcome (reconciliation.lookup._view).
_LOOKUP_OUTCOMES = {
    "cash": gettext_lazy("Cash payment"),
    "not_charged": gettext_lazy("Not charged"),
    "not_reconciled_yet": gettext_lazy("Not reconciled yet"),
}
_TONES = {
    "matched": "ok",
    "pending_settlement": "wait",
    "awaiting_journal": "wait",
    "not_reconciled_yet": "wait",
    "cash": "neutral",
    "not_charged": "neutral",
    "proposed_match": "review",
}
_RESOLUTIONS = {
    "manual_match": gettext_lazy("Matched by hand"),
    "refund_requested": gettext_lazy("Refund requested"),
    "refunded": gettext_lazy("Refunded"),
    "written_off": gettext_lazy("Written off"),
}
# Notes the run writes itself, in English in the database; shown in the reader's language.
_SYSTEM_NOTES = {
    "a late record matched": gettext_lazy("A late record matched."),
    "the kiosk's journal line arrived": gettext_lazy("The kiosk's journal line arrived."),
}
_MATCHED_BY_HAND_TO = re.compile(r"^matched by hand to item \d+$")


@register.filter
def money(value) -> str:
    """2,345.00 — amounts in yuan with two decimals and thousands grouped."""
    if value is None or value == "":
        return "—"
    try:
        return f"{Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)


@register.filter
def percent(rate) -> str:
    return "—" if rate is None else f"{rate * 100:.2f}%"


@register.filter
def outcome_label(outcome: str) -> str:
    if outcome in Outcome.values:
        return Outcome(outcome).label
    return str(_LOOKUP_OUTCOMES.get(outcome, outcome))


@register.filter
def cause_text(cause: dict) -> str:
    """A stored cause in a sentence of the reader's language (never its code)."""
    return describe_cause(cause)


@register.filter
def cause_confidence(cause: dict) -> str:
    """How sure the cause is: 把握：高."""
    return causes.confidence_label(cause)


@register.filter
def cause_confidence_level(cause: dict) -> str:
    """high, medium or low: for the page's styling and tests, never shown."""
    return cause.get("confidence") or causes.confidence_of(int(cause.get("score") or 0))


@register.filter
def journal_due(item):
    """When the kiosk's journal is due, for an item awaiting it; else None."""
    if item.outcome != Outcome.AWAITING_JOURNAL:
        return None
    due = next((c["detail"].get("due") for c in item.causes or [] if c.get("cause") == "journal_not_uploaded"), "")
    return datetime.fromisoformat(due) if due else None


@register.filter
def outcome_tone(outcome: str) -> str:
    return _TONES.get(outcome, "problem")


@register.filter
def channel_label(channel: str) -> str:
    return Channel(channel).label if channel in Channel.values else channel


@register.filter
def state_label(state: str) -> str:
    return ReconItem.State(state).label if state in ReconItem.State.values else state


@register.filter
def action_label(action: str) -> str:
    return str(ReconAction.Kind(action).label) if action in ReconAction.Kind.values else action


# What started a reconcile run (ReconciliationRun.trigger): a word, or "console:<username>" / "api:<username>".
_TRIGGERS = {
    "new_file": gettext_lazy("New file"),
    "schedule": gettext_lazy("Daily schedule"),
    "demo": gettext_lazy("Demo data"),
    "command": gettext_lazy("Command line"),
    "manual": gettext_lazy("By hand"),
    "lease_expired": gettext_lazy("Re-run after a worker died"),
    "journal_due": gettext_lazy("Journal upload deadline passed"),
}


@register.filter
def run_trigger(trigger: str) -> str:
    """A run's trigger in the reader's words: 新文件 for new_file, 控制台 · 李娜 for console:fin."""
    source, _sep, username = (trigger or "").partition(":")
    if username and source in ("console", "api"):
        where = _("Console") if source == "console" else _("API")
        return f"{where} · {_named(username)}"
    return str(_TRIGGERS.get(trigger, trigger or "—"))


@register.filter
def service_name(names: dict, code: str) -> str:
    """The fee's name for a service code, with the code itself only when no tariff names it."""
    if not code:
        return "—"
    return names.get(code) or code


@register.filter
def resolution_label(resolution: str) -> str:
    return str(_RESOLUTIONS.get(resolution, resolution))


@register.filter
def action_note(note: str) -> str:
    if note in _SYSTEM_NOTES:
        return str(_SYSTEM_NOTES[note])
    if _MATCHED_BY_HAND_TO.match(note or ""):
        return _("Answered by a match made by hand on the kiosk's payment.")
    return note


def _named(username: str) -> str:
    """An audit entry keeps the username; people read the person's name (李强), as written today."""
    from django.contrib.auth import get_user_model

    from core.people import person_name

    user = get_user_model().objects.filter(username=username).first() if username else None
    return person_name(user) if user is not None else username


@register.filter
def action_detail(action) -> str:
    """The structured part of an audit entry in words: who it went to, what changed, which order number."""
    data = action.data or {}
    if action.action == "outcome_changed" and "from" in data:
        return f"{outcome_label(data['from'])} → {outcome_label(data.get('to', ''))}"
    if action.action == "assigned":
        return _("to %(user)s") % {"user": _named(data["to"])} if data.get("to") else _("unassigned")
    if action.action == "written_off" and data.get("requested_by"):
        return _("requested by %(requester)s, approved by %(user)s") % {
            "requester": _named(data["requested_by"]),
            "user": _named(data.get("approver", "")),
        }
    if action.action == "written_off" and data.get("approver"):
        return _("approved by %(user)s") % {"user": _named(data["approver"])}
    if action.action == "writeoff_rejected" and data.get("requested_by"):
        return _("requested by %(user)s") % {"user": _named(data["requested_by"])}
    if action.action == "manual_match" and data.get("channel_ref"):
        return _("order %(ref)s") % {"ref": data["channel_ref"]}
    return ""


@register.filter
def payer(stored: str) -> str:
    return display_payer_ref(stored or "") or "—"


@register.simple_tag
def match_rate_chart(rates, selected=None) -> str:
    """An inline SVG line of the match rate per business day (days without a run are left blank), rendered on
    the server like the kiosk page's charts; pygal's tooltip script is left out (js=[])."""
    chart = pygal.Line(
        **CHART_OPTIONS,
        width=900,
        height=220,
        allow_interruptions=True,
        dots_size=2.5,
        stroke_style={"width": 1.8},
        x_label_rotation=0,
        x_labels_major_every=5,
        show_minor_x_labels=False,
        truncate_label=-1,
        value_formatter=lambda v: f"{v:.2f}%",
        no_data_text=_("No runs in these days"),
        disable_xml_declaration=True,
    )
    chart.x_labels = [day.strftime("%m-%d") for day, _rate in rates]
    values = [None if rate is None else round(rate * 100, 2) for _day, rate in rates]
    known = [v for v in values if v is not None]
    if known:
        # From 90 % up, or lower when a day fell lower: a fall of a point stays visible, yet not dramatised.
        chart.range = (min(90, math.floor(min(known)) - 2), 100)
    if any(v is not None for v in values):
        chart.add(_("Match rate"), values)
        if selected is not None:
            chart.add(
                _("Selected day"),
                [v if day == selected else None for (day, _rate), v in zip(rates, values, strict=True)],
                stroke=False,
                dots_size=5,
            )
    return render_svg(chart)
