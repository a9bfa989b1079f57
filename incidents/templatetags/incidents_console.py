"""How incidents read on screen: every stored code (state, severity, source, timeline kind, a step's result, a
command's status, a device's result text) in the reader's words, the raw value kept for a tooltip.

The incident words carry the context "incident" so that they never borrow another screen's translation of the
same English word (reconciliation's "Resolved" is 已解决, an incident's is 已恢复)."""

import re
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, pgettext, pgettext_lazy

from fleet.models import RemoteCommand
from fleet.vocabulary import Component, FaultCategory, FaultKind
from incidents.models import ACTIVE_STATES, ChecklistItem, Severity, Source, State, TimelineKind

register = template.Library()

STATE_LABELS = {
    State.NEW: pgettext_lazy("incident", "New"),
    State.ACKNOWLEDGED: pgettext_lazy("incident", "Acknowledged"),
    State.REMOTE_FIX: pgettext_lazy("incident", "Remote fix in progress"),
    State.ONSITE: pgettext_lazy("incident", "Onsite"),
    State.RESOLVED: pgettext_lazy("incident", "Recovered"),
    State.CLOSED: pgettext_lazy("incident", "Closed"),
    State.CANCELLED: pgettext_lazy("incident", "False alarm"),
}
SEVERITY_LABELS = {
    Severity.P1: pgettext_lazy("incident", "P1 · critical"),
    Severity.P2: pgettext_lazy("incident", "P2 · high"),
    Severity.P3: pgettext_lazy("incident", "P3 · medium"),
    Severity.P4: pgettext_lazy("incident", "P4 · low"),
}
SOURCE_LABELS = {
    Source.HEALTH: pgettext_lazy("incident", "Fleet health monitoring"),
    Source.SECURITY: pgettext_lazy("incident", "Security alarm"),
    Source.MANUAL: pgettext_lazy("incident", "Reported by a person"),
    Source.CITIZEN: pgettext_lazy("incident", "Reported by a citizen"),
    Source.RECONCILIATION: pgettext_lazy("incident", "Reconciliation"),
    Source.GROUPING: pgettext_lazy("incident", "Mass outage"),
    Source.INSPECTION: pgettext_lazy("incident", "Preventive inspection"),
}
TIMELINE_LABELS = {
    TimelineKind.DETECTED: pgettext_lazy("incident", "Detected"),
    TimelineKind.OCCURRED_AGAIN: pgettext_lazy("incident", "Occurred again"),
    TimelineKind.REPORTED: pgettext_lazy("incident", "Reported"),
    TimelineKind.GROUPED: pgettext_lazy("incident", "Grouped"),
    TimelineKind.ACKNOWLEDGED: pgettext_lazy("incident", "Acknowledged"),
    TimelineKind.STATE_CHANGED: pgettext_lazy("incident", "State changed"),
    TimelineKind.CHECKLIST: pgettext_lazy("incident", "Triage step"),
    TimelineKind.COMMAND_SENT: pgettext_lazy("incident", "Command sent"),
    TimelineKind.COMMAND_RESULT: pgettext_lazy("incident", "Command result"),
    TimelineKind.NOTE: pgettext_lazy("incident", "Note"),
    TimelineKind.ASSIGNED: pgettext_lazy("incident", "Assigned"),
    TimelineKind.SEVERITY_CHANGED: pgettext_lazy("incident", "Severity changed"),
    TimelineKind.SLA_BREACHED: pgettext_lazy("incident", "Deadline missed"),
    TimelineKind.ESCALATED: pgettext_lazy("incident", "Escalated"),
    TimelineKind.NOTIFIED: pgettext_lazy("incident", "Notified"),
    TimelineKind.NOTIFY_FAILED: pgettext_lazy("incident", "Notification failed"),
    TimelineKind.ONSITE_PROPOSED: pgettext_lazy("incident", "Onsite proposed"),
    TimelineKind.OUT_OF_SERVICE: pgettext_lazy("incident", "Out of service"),
    TimelineKind.WORK_ORDER: pgettext_lazy("incident", "Work order"),
    TimelineKind.CITIZENS_GUIDED: pgettext_lazy("incident", "Citizens guided"),
    TimelineKind.EVIDENCE_FROZEN: pgettext_lazy("incident", "Evidence frozen"),
    TimelineKind.RECOVERED: pgettext_lazy("incident", "Recovered by itself"),
    TimelineKind.RESOLVED: pgettext_lazy("incident", "Recovered"),
    TimelineKind.REOPENED: pgettext_lazy("incident", "Reopened"),
    TimelineKind.VERIFIED: pgettext_lazy("incident", "Verified"),
    TimelineKind.CLOSED: pgettext_lazy("incident", "Closed"),
    TimelineKind.CANCELLED: pgettext_lazy("incident", "False alarm"),
}
OUTCOME_LABELS = {
    ChecklistItem.Outcome.PENDING: pgettext_lazy("incident", "Not done"),
    ChecklistItem.Outcome.OK: pgettext_lazy("incident", "Fine"),
    ChecklistItem.Outcome.PROBLEM: pgettext_lazy("incident", "Problem found"),
    ChecklistItem.Outcome.NOT_APPLICABLE: pgettext_lazy("incident", "Not applicable"),
}
DUE_LABELS = {
    "acknowledge": pgettext_lazy("incident", "Acknowledge by"),
    "remote": pgettext_lazy("incident", "First remote attempt by"),
    "onsite": pgettext_lazy("incident", "On site by"),
    "resolve": pgettext_lazy("incident", "Recover by"),
}


def _label(table: dict, value) -> str:
    label = table.get(value)
    return str(label) if label is not None else str(value)


@register.filter
def state_label(state: str) -> str:
    return _label(STATE_LABELS, state)


@register.filter
def severity_label(severity) -> str:
    try:
        return _label(SEVERITY_LABELS, int(severity))
    except (TypeError, ValueError):
        return str(severity)


@register.filter
def severity_code(severity) -> str:
    return f"P{severity}"


@register.filter
def source_label(source: str) -> str:
    return _label(SOURCE_LABELS, source)


@register.filter
def timeline_label(kind: str) -> str:
    return _label(TIMELINE_LABELS, kind)


@register.filter
def outcome_label(outcome: str) -> str:
    return _label(OUTCOME_LABELS, outcome or "")


@register.filter
def due_label(kind: str) -> str:
    return _label(DUE_LABELS, kind)


@register.filter
def fault_kind_label(kind: str) -> str:
    return str(FaultKind(kind).label) if kind in FaultKind.values else str(kind)


@register.filter
def category_label(category: str) -> str:
    return str(FaultCategory(category).label) if category in FaultCategory.values else str(category)


@register.filter
def component_name(name: str) -> str:
    return str(Component(name).label) if name in Component.values else str(name)


@register.filter
def command_kind_label(kind: str) -> str:
    return str(RemoteCommand.Kind(kind).label) if kind in RemoteCommand.Kind.values else str(kind)


@register.filter
def command_status_label(status: str) -> str:
    return str(RemoteCommand.Status(status).label) if status in RemoteCommand.Status.values else str(status)


@register.filter
def is_active_state(state: str) -> bool:
    return state in ACTIVE_STATES


@register.filter
def stored_text(text: str) -> str:
    """A measure or result written by a service in the language of its moment: shown in the reader's language
    when it is one of the console's own sentences (each " · " part on its own), else as it was written."""
    if not text:
        return ""
    return " · ".join(gettext(part) for part in str(text).split(" · "))


# A device's own words (ASCII, in English) quoted after " · " inside a sentence of ours: "重启（已成功 · Reboot OK）".
_DEVICE_WORDS = re.compile(r" · [\x20-\x7e]+?(?=）|$)")
_HAN = re.compile(r"[\u3400-\u9fff]")


@register.filter
def without_device_words(text: str) -> str:
    """A sentence in the reader's language with the device's English words taken out (they stay in the tooltip)."""
    text = stored_text(text)
    return _DEVICE_WORDS.sub("", text) if _HAN.search(text) else text


@register.filter
def as_text(value) -> str:
    """A value of another module's (a likely cause's evidence) as words: a list reads as its items."""
    if isinstance(value, (list, tuple)):
        return "；".join(str(item) for item in value if item)
    return "" if value is None else str(value)


@register.filter
def overdue(moment: datetime | None) -> bool:
    return moment is not None and moment < timezone.now()


@register.simple_tag
def entry_text(entry) -> dict:
    """What a timeline entry says, from its stored data where it has some (so states and results read in the
    reader's language), else its stored measure and result. Returns {"measure", "result", "raw"}: raw is what was
    stored, for the tooltip, when the words shown differ from it."""
    data = entry.data or {}
    kind = entry.kind
    measure, result = stored_text(entry.measure), stored_text(entry.result)
    raw = ""
    if kind == TimelineKind.STATE_CHANGED and "from" in data and "to" in data:
        measure = f"{state_label(data['from'])} → {state_label(data['to'])}"
    elif kind == TimelineKind.SEVERITY_CHANGED and "from" in data and "to" in data:
        measure = f"{severity_label(data['from'])} → {severity_label(data['to'])}"
    elif kind == TimelineKind.CHECKLIST and data.get("outcome"):
        # The step's text is the playbook's own; the result is the outcome, then the person's note.
        label = outcome_label(data["outcome"])
        parts = str(entry.result).split(" · ", 1)
        result = f"{label} · {parts[1]}" if len(parts) == 2 else str(label)
    elif kind == TimelineKind.COMMAND_SENT and data.get("kind"):
        measure = command_kind_label(data["kind"])
        params = data.get("params") or {}
        if params.get("module"):
            measure = f"{measure} · {component_name(params['module'])}"
        if params.get("version"):
            measure = f"{measure} · {params['version']}"
    elif kind in (TimelineKind.RECOVERED, TimelineKind.RESOLVED):
        measure = ""  # the kind says it
        result = without_device_words(entry.result)
    elif kind == TimelineKind.COMMAND_RESULT and data.get("status"):
        # The device's own words (in English, as the kiosk sent them) stay in the tooltip.
        result = command_status_label(data["status"])
        raw = entry.result
    if not raw and (measure != entry.measure or result != entry.result):
        raw = " · ".join(filter(None, [entry.measure, entry.result]))
    return {"measure": measure, "result": result, "raw": raw}


@register.simple_tag
def clock_words() -> dict:
    """The words static/console/incidents.js counts down and ages with, in the reader's language, and the
    server's clock (so a wrong clock on the reader's computer does not shift every deadline)."""
    return {
        "left": pgettext("incident", "{t} left"),
        "over": pgettext("incident", "{t} over"),
        "ago": pgettext("incident", "{t} ago"),
        "now": pgettext("incident", "just now"),
        "d": pgettext("incident", "{n} d"),
        "h": pgettext("incident", "{n} h"),
        "m": pgettext("incident", "{n} min"),
        "s": pgettext("incident", "{n} s"),
        "server_now": int(timezone.now().timestamp() * 1000),
    }


@register.filter
def get_count(counts: dict, key) -> int:
    return counts.get(key, 0) if counts else 0


def _time_element(moment: datetime | None, attribute: str, css: str = "") -> str:
    if moment is None:
        return mark_safe('<span class="muted">—</span>')
    local = timezone.localtime(moment)
    return format_html(
        '<time class="{}" {} datetime="{}" title="{}">{}</time>',
        css,
        attribute,
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M"),
        local.strftime("%m-%d %H:%M"),
    )


@register.simple_tag
def due_time(moment: datetime | None) -> str:
    """A deadline that counts down in the browser (static/console/incidents.js); red once it has passed."""
    css = "due due--over" if moment is not None and moment < timezone.now() else "due"
    return _time_element(moment, "data-due", css)


@register.simple_tag
def age_time(moment: datetime | None) -> str:
    """A moment whose age grows in the browser ("3 分钟前"); the exact time in the tooltip."""
    return _time_element(moment, "data-age")


@register.simple_tag
def incident_evidence(incident) -> dict:
    """What decided the incident's kind, in words: the rule, the facts it read (codes, a module's state, latency,
    a mass outage's count) and, for one reconciliation reported, the payments it names (linked by public id)."""
    from django.urls import NoReverseMatch, reverse

    from fleet.models import ErrorCode
    from incidents.rules import RULE_LABELS

    evidence = incident.evidence or {}
    rule = evidence.get("rule", "")
    facts = evidence.get("facts") if isinstance(evidence.get("facts"), dict) else {}
    lines = []
    code = facts.get("code")
    if code:
        entry = ErrorCode.objects.filter(code=code).first()
        lines.append(
            format_html('{} <span class="mono" title="{}">{}</span>', entry.title_zh if entry else "", code, code)
        )
    component, to = facts.get("component"), facts.get("to")
    if component and to:
        lines.append(format_html('{} → <span title="{}">{}</span>', _component_word(component), to, _state_word(to)))
    for name, state in (facts.get("components") or {}).items():
        lines.append(format_html('{}：<span title="{}">{}</span>', _component_word(name), state, _state_word(state)))
    if "kiosks_down" in facts:
        lines.append(
            gettext("%(down)s of the hall's %(all)s kiosks down within %(min)s minutes")
            % {
                "down": facts["kiosks_down"],
                "all": facts.get("kiosks_in_hall", "?"),
                "min": facts.get("window_min", "?"),
            }
        )
    counts = facts.get("counts") if isinstance(facts.get("counts"), dict) else {}
    if counts:
        lines.append(
            gettext("%(failed)s failed but settled, %(missing)s journal lines missing on %(day)s")
            % {
                "failed": counts.get("failed_but_settled", 0),
                "missing": counts.get("missing_lines", 0),
                "day": facts.get("business_date", ""),
            }
        )
    items = []
    for uid in (facts.get("item_uids") or [])[:50]:
        try:
            items.append((str(uid)[:8], reverse("reconciliation:item", args=[uid])))
        except NoReverseMatch:
            continue
    label = RULE_LABELS.get(rule)
    return {"rule": rule, "label": str(label) if label else "", "lines": lines, "items": items}


def _component_word(name: str) -> str:
    return str(Component(name).label) if name in Component.values else name


def _state_word(state: str) -> str:
    from fleet.vocabulary import ComponentState

    return str(ComponentState(state).label) if state in ComponentState.values else state
