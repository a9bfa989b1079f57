"""The likely cause of an incident, and the measure most likely to work — statistics over our own records,
explained.

How the fleet's past incidents of the same kind (and component, and error code) on kiosks of the same model were
resolved says which measure fixes them: the last remote command that succeeded before the recovery, or the
technician's visit when no command came after it (told apart by what the technician wrote: 现场处理：更换打印机).
A remote measure is counted as tried (the incidents where it was sent) and as the fix (where it preceded the
recovery); a part replaced onsite against every past incident of the set, since a visit is the last resort. Each
is shown with its counts: 'restart_module fixed 31 of 40 E-PRN-001 on this model'. When the model has too few such incidents, the
whole fleet's are counted instead, and the text says so. The kiosk's current error codes (with the catalog's titles
and first checks), its failing components and its worrying metrics are the evidence beside them.

Two grouped queries for the history, one for the catalog: never one per past incident. No external service."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Case, Count, F, OuterRef, Q, Subquery, Value, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Concat
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from fleet.models import ErrorCode, RemoteCommand
from fleet.vocabulary import FAULT_STATES, FRAUD_STATES, Component, ComponentState, FaultKind, worrying_metrics
from incidents.models import Incident, IncidentCommand, State

# Fewer past incidents than this on the kiosk's model (or with its error code): count the wider set instead.
MIN_HISTORY = 5
# The measure of an incident resolved after a technician's visit with no command after it.
ONSITE = "onsite"
# A cause read off the kiosk's current state, with no history behind it, ranks like a measure that fixed about a
# quarter of the cases it was tried on: below a measure with a good record, above one that keeps failing.
STATE_ONLY_SCORE = 0.3
# The page shows this many at most.
MAX_CAUSES = 8


@dataclass
class Cause:
    """One likely cause, the measure for it, and why (evidence lines and the counts behind them)."""

    label: str
    measure: str  # a RemoteCommand kind, a checklist step's key, or ONSITE
    measure_label: str
    evidence: list[str] = field(default_factory=list)
    fixed: int = 0
    total: int = 0
    score: float = 0.0
    counts_text: str = ""


def _cause_of_measure(measure: str, component: str) -> str:
    """What a measure that fixed it says the cause was."""
    module = str(Component(component).label) if component in Component.values else _("the module")
    labels = {
        RemoteCommand.Kind.RESTART_MODULE: _("%(module)s hung; restarting the module clears it") % {"module": module},
        RemoteCommand.Kind.RESTART: _("The kiosk's software hung; a restart clears it"),
        RemoteCommand.Kind.SELF_TEST: _("A passing fault that the self-test clears"),
        RemoteCommand.Kind.PUSH_PATCH: _("A software defect that a patch fixes"),
        RemoteCommand.Kind.CHECK_CONFIG: _("A wrong configuration"),
        RemoteCommand.Kind.FACTORY_RESET: _("Damaged system software (fixed by a factory reset after a backup)"),
        ONSITE: _("A failed part of %(module)s, replaced onsite") % {"module": module}
        if component
        else _("A failed part, replaced onsite"),
    }
    return str(labels.get(measure, _("Fixed by: %(measure)s") % {"measure": measure}))


def measure_label(measure: str) -> str:
    if measure == ONSITE:
        return _("Replace the part onsite")
    if measure in RemoteCommand.Kind.values:
        return str(RemoteCommand.Kind(measure).label)
    return measure


def _code_of(incident: Incident) -> str:
    facts = (incident.evidence or {}).get("facts") or {}
    code = facts.get("code") if isinstance(facts, dict) else None
    return code if isinstance(code, str) else ""


def _current_codes(incident: Incident) -> list[str]:
    """The incident's own code first, then the kiosk's current codes, each once."""
    codes = [_code_of(incident)]
    if incident.kiosk_id:
        codes += [code for code in (incident.kiosk.error_codes or []) if isinstance(code, str)]
    return list(dict.fromkeys(code for code in codes if code))


def catalog_checks(incident: Incident) -> list[dict]:
    """The error catalog's title and first checks (排查步骤) for the incident's code and the kiosk's current codes,
    in the reader's language: shown beside the checklist. One query."""
    codes = _current_codes(incident)
    if not codes:
        return []
    language = get_language() or "zh-hans"
    catalog = {entry.code: entry for entry in ErrorCode.objects.filter(code__in=codes)}
    return [
        {"code": code, "title": catalog[code].title(language), "checks": catalog[code].first_checks(language)}
        for code in codes
        if code in catalog
    ]


# --- The history --------------------------------------------------------------------------------------------


def _past(incident: Incident):
    """Resolved or closed incidents of the same kind (and component) on any kiosk, this one left out."""
    past = Incident.objects.filter(
        is_group=False,
        state__in=[State.RESOLVED, State.CLOSED],
        resolved_at__isnull=False,
        fault_kind=incident.fault_kind,
    ).exclude(pk=incident.pk)
    if incident.component:
        past = past.filter(component=incident.component)
    return past


def _code_path(evidence: str) -> KeyTextTransform:
    """evidence -> facts ->> code, the error code that opened an incident (KT() cannot cross a relation)."""
    return KeyTextTransform("code", KeyTransform("facts", evidence))


def _history(incident: Incident) -> tuple[dict, dict]:
    """(fixed, tried): per (model, code, measure), how many past incidents that measure fixed and was tried on;
    tried[(model, code, "")] is how many past incidents there are. A technician's fix is the measure
    "onsite:<resolution>" (what they wrote they did, e.g. 现场处理：更换打印机), so each part replaced counts apart.
    Two grouped queries."""
    last_success = RemoteCommand.objects.filter(
        incident_link__incident=OuterRef("pk"),
        status=RemoteCommand.Status.SUCCEEDED,
        completed_at__lte=OuterRef("resolved_at"),
    ).order_by("-completed_at")
    past = _past(incident).annotate(
        last_kind=Subquery(last_success.values("kind")[:1]),
        last_at=Subquery(last_success.values("completed_at")[:1]),
    )
    onsite_last = Q(onsite_at__isnull=False) & (Q(last_at__isnull=True) | Q(last_at__lt=F("onsite_at")))
    outcome_rows = past.values(
        "last_kind",
        model=F("kiosk__model"),
        code=_code_path("evidence"),
        onsite_fix=Case(When(onsite_last, then=Concat(Value(ONSITE + ":"), "resolution")), default=Value("")),
    ).annotate(n=Count("id"))
    fixed: dict[tuple, int] = defaultdict(int)
    tried: dict[tuple, int] = defaultdict(int)
    for row in outcome_rows:
        key = (row["model"] or "", row["code"] or "")
        measure = row["onsite_fix"] or row["last_kind"]
        if measure:
            fixed[(*key, measure)] += row["n"]
        tried[(*key, "")] += row["n"]
    command_rows = (
        IncidentCommand.objects.filter(incident__in=_past(incident))
        .exclude(command__kind__in=[RemoteCommand.Kind.OUT_OF_SERVICE_SCREEN, RemoteCommand.Kind.IN_SERVICE_SCREEN])
        .values("command__kind", model=F("incident__kiosk__model"), code=_code_path("incident__evidence"))
        .annotate(n=Count("incident", distinct=True))
    )
    for row in command_rows:
        tried[(row["model"] or "", row["code"] or "", row["command__kind"])] += row["n"]
    return fixed, tried


def _narrowest(fixed: dict, tried: dict, model: str, code: str) -> tuple[dict, dict, str, bool]:
    """The narrowest set of past incidents with enough of them: this model and code, this model, the fleet and
        this code, the fleet. Returns (fixed per measure, tried per measure, the code counted or "", same model). The
    size of the set is tried[""]."""
    choices = []
    if code:
        choices.append(((model, code), True))
    choices.append(((model, None), True))
    if code:
        choices.append(((None, code), False))
    choices.append(((None, None), False))

    def select(counts, want_model, want_code):
        out: dict[str, int] = defaultdict(int)
        for (m, c, measure), n in counts.items():
            if (want_model is None or m == want_model) and (want_code is None or c == want_code):
                out[measure] += n
        return out

    for (want_model, want_code), same_model in choices:
        chosen_tried = select(tried, want_model, want_code)
        if chosen_tried.get("", 0) >= MIN_HISTORY or (want_model, want_code) == (None, None):
            return select(fixed, want_model, want_code), chosen_tried, want_code or "", same_model
    raise AssertionError("unreachable")


def _counts_text(shown: str, fixed: int, total: int, what: str, model: str, same_model: bool) -> str:
    values = {"measure": shown, "fixed": fixed, "total": total, "what": what, "model": model}
    if same_model:
        return _("%(measure)s fixed %(fixed)d of %(total)d %(what)s on this model (%(model)s)") % values
    return _("%(measure)s fixed %(fixed)d of %(total)d %(what)s across the fleet (too few on this model)") % values


# --- The kiosk now ------------------------------------------------------------------------------------------


@dataclass
class _Now:
    """The kiosk's state as evidence: failing modules (beside a module's measure), worrying metrics (beside the
    kiosk's), and the catalog's reading of its codes."""

    modules: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    def beside(self, measure: str) -> list[str]:
        return list(self.modules if measure in MODULE_MEASURES else self.metrics)

    @property
    def all(self) -> list[str]:
        return [*self.codes, *self.modules, *self.metrics]


# Measures that act on the failing module (the rest act on the kiosk as a whole).
MODULE_MEASURES = {RemoteCommand.Kind.RESTART_MODULE, ONSITE}


def _state_evidence(incident: Incident, catalog: list[dict]) -> _Now:
    now = _Now(codes=[_("The kiosk reports %(code)s: %(title)s") % entry for entry in catalog])
    if not incident.kiosk_id:
        return now
    kiosk = incident.kiosk
    for name, state in sorted((kiosk.components or {}).items()):
        if state in FAULT_STATES or state in FRAUD_STATES or state == ComponentState.USER_ERROR:
            if name in Component.values and state in ComponentState.values:
                now.modules.append(
                    _("%(component)s is %(state)s")
                    % {"component": Component(name).label, "state": ComponentState(state).label}
                )
    for metric in worrying_metrics(kiosk.metrics or {}):
        now.metrics.append(
            _("Metric %(name)s is past its threshold: %(value)s") % {"name": metric, "value": kiosk.metrics[metric]}
        )
    return now


def likely_causes(incident: Incident) -> list[Cause]:
    """The likely causes of the incident, most likely first, each with the measure most likely to work, the evidence
    and the counts behind it."""
    catalog = catalog_checks(incident)
    evidence_now = _state_evidence(incident, catalog)
    causes: list[Cause] = []
    if incident.kiosk_id:
        fixed, tried = _history(incident)
        code = _code_of(incident)
        model = incident.kiosk.model or ""
        fixed_by, tried_by, what_code, same_model = _narrowest(fixed, tried, model, code)
        what = what_code or str(FaultKind(incident.fault_kind).label)
        tried_here = set(
            incident.commands.filter(command__status=RemoteCommand.Status.SUCCEEDED).values_list(
                "command__kind", flat=True
            )
        )
        for key, n_fixed in fixed_by.items():
            if not key:
                continue
            measure, _sep, part = key.partition(":")
            if measure == ONSITE:
                # A technician's visit is the last resort: counted against every past incident of the set, so a
                # part that had to be replaced in 8 of 40 ranks below a restart that fixed 31 of the 40.
                total, shown = tried_by.get("", 0), part.strip() or measure_label(ONSITE)
            else:
                total, shown = max(tried_by.get(measure, 0), n_fixed), measure_label(measure)
            counts = _counts_text(shown, n_fixed, total, what, model, same_model)
            evidence = evidence_now.beside(measure)
            score = (n_fixed + 1) / (total + 2)
            if measure in tried_here:
                evidence.append(_("Already done for this incident without recovery"))
                score /= 2
            causes.append(
                Cause(
                    label=_cause_of_measure(measure, incident.component),
                    measure=measure,
                    measure_label=shown,
                    evidence=evidence,
                    fixed=n_fixed,
                    total=total,
                    score=round(score, 3),
                    counts_text=counts,
                )
            )
    # The catalog's reading of each current code, with its first check as the measure.
    for entry in catalog:
        first = entry["checks"][0] if entry["checks"] else ""
        causes.append(
            Cause(
                label=entry["title"],
                measure=first,
                measure_label=first,
                evidence=[_("The kiosk reports %(code)s: %(title)s") % entry, *evidence_now.modules],
                score=STATE_ONLY_SCORE,
            )
        )
    if not causes and incident.checklist.exists():
        step = incident.checklist.filter(outcome="").order_by("position").first()
        if step:
            causes.append(
                Cause(
                    label=_("No past incident of this kind to learn from yet"),
                    measure=step.key,
                    measure_label=step.text,
                    evidence=evidence_now.all or [_("Start with the playbook's next step")],
                    score=STATE_ONLY_SCORE / 2,
                )
            )
    causes.sort(key=lambda cause: (-cause.score, -cause.total, cause.label))
    return causes[:MAX_CAUSES]
