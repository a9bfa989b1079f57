"""The incident console: the live queue, the incident page with its actions, and the report of a fault a person
saw. Thin views over incidents.selectors (reads) and incidents.services (writes).

Every incident is looked up through the user's region scope, so one of another region is a 404 everywhere. The
permission comes first: a role that may only read gets 403 from every action. A refused change answers 409 (the
incident's state does not allow it: someone else acted first) or 400 (the input), says why in the reader's
words at the top of the page, and changes nothing (the services are atomic). The live pages re-render the same
partials the page was built from; the browser only decides when to fetch.
"""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext, pgettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import registry
from core.validation import add_service_errors
from fleet import selectors as fleet_selectors
from incidents import selectors, services
from incidents.forms import (
    AssignForm,
    CancelForm,
    ChecklistForm,
    CloseForm,
    CommandForm,
    MoveForm,
    NoteForm,
    QueueFilterForm,
    ReportForm,
    ResolveForm,
    SeverityForm,
)
from incidents.models import ACTIVE_STATES, Attachment
from incidents.templatetags.incidents_console import as_text, command_kind_label, state_label

log = logging.getLogger(__name__)

view_incidents = permission_required("incidents.view_incident", raise_exception=True)
work_incidents = permission_required("incidents.work_incident", raise_exception=True)


def incident_action(view):
    """An action on an incident: a POST by someone logged in who may see and work incidents."""
    return login_required(view_incidents(work_incidents(require_POST(view))))


# The incident page's action forms, by the name the template knows them by.
ACTION_FORMS = {
    "move_form": MoveForm,
    "resolve_form": ResolveForm,
    "close_form": CloseForm,
    "cancel_form": CancelForm,
    "note_form": NoteForm,
    "severity_form": SeverityForm,
    "command_form": CommandForm,
}


def _query_without(request, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


# --- The queue ------------------------------------------------------------------------------------------


def _queue_context(request) -> dict:
    form = QueueFilterForm(request.GET or None, user=request.user)
    filters = form.filters()
    page = selectors.queue_page(request.user, filters, request.GET.get("page"))
    # What apps above incidents say of these rows (core.registry.register_incident_marker): a work order, say.
    markers = registry.incident_markers([incident.pk for incident in page.object_list])
    for incident in page.object_list:
        incident.markers = markers.get(incident.pk, [])
    return {
        "form": form,
        "filters": filters,
        "page": page,
        "counts": selectors.queue_counts(request.user, filters),
        "query_without_page": _query_without(request, "page"),
        "query_without_state": _query_without(request, "state", "page"),
        "may_work": request.user.has_perm(services.WORK),
        "now": timezone.now(),
    }


@login_required
@view_incidents
@require_GET
def queue(request):
    return render(request, "incidents/queue.html", _queue_context(request))


@login_required
@view_incidents
@require_GET
def queue_live(request):
    """The queue's counts and list as out-of-band fragments, for the live page to swap in."""
    return render(request, "incidents/_queue_update.html", _queue_context(request) | {"oob": True})


@incident_action
def bulk_acknowledge(request):
    raw = request.POST.getlist("incidents")
    ids = [int(value) for value in raw if value.isdigit() and len(value) < 19]
    back = reverse("incidents:queue") + (f"?{request.POST['query']}" if request.POST.get("query") else "")
    if not ids:
        messages.error(request, pgettext("incident", "Tick the incidents to acknowledge first."))
        return redirect(back)
    # Only incidents the user may see: one of another region is as unknown here as on its page.
    visible = list(selectors.incidents_for_user(request.user).filter(pk__in=ids).values_list("pk", flat=True))
    done, problems = services.incidents_acknowledge_bulk(incident_ids=visible, actor=request.user)
    if done:
        messages.success(request, pgettext("incident", "%(n)d incidents acknowledged.") % {"n": done})
    hidden = len(set(ids)) - len(visible)
    if problems or hidden:
        messages.warning(
            request,
            pgettext("incident", "%(n)d could not be acknowledged: they have moved on or are not yours to see.")
            % {"n": len(problems) + hidden},
        )
    return redirect(back)


# --- The incident page ----------------------------------------------------------------------------------


def _likely_causes(incident) -> list[dict]:
    """The diagnosis module's likely causes, when the module is there; nothing when it is not or it fails. Each as
    the words shown: the cause, the measure to try (its code kept for the tooltip), the evidence and the counts."""
    try:
        from incidents import diagnosis
    except ImportError:
        return []
    likely_causes = getattr(diagnosis, "likely_causes", None)
    if likely_causes is None:
        return []
    try:
        # In a savepoint: a query of the diagnosis that fails must not abort the page's own transaction.
        with transaction.atomic():
            causes = list(likely_causes(incident) or [])[:5]
    except Exception:  # noqa: BLE001 — a broken diagnosis must not take the incident page down
        log.exception("likely causes of incident %s failed", incident.pk)
        return []
    return [
        {
            "label": as_text(getattr(cause, "label", "")),
            "measure": str(getattr(cause, "measure", "") or ""),
            "measure_label": as_text(getattr(cause, "measure_label", ""))
            or command_kind_label(str(getattr(cause, "measure", "") or "")),
            "evidence": as_text(getattr(cause, "evidence", "")),
            "counts": as_text(getattr(cause, "counts_text", "") or getattr(cause, "counts", "")),
        }
        for cause in causes
    ]


def _live_context(request, incident) -> dict:
    page = selectors.incident_page(incident)
    kiosk = incident.kiosk
    may_work = services.can_work(request.user, incident)
    return {
        "incident": incident,
        "view": page,
        "kiosk": kiosk,
        "may_work": may_work,
        "may_command": may_work and request.user.has_perm("fleet.add_remotecommand") and kiosk is not None,
        "is_active": incident.state in ACTIVE_STATES,
        "checklist_form": ChecklistForm(),
        "command_form": CommandForm(),
        "now": timezone.now(),
        # What apps above incidents show of it (core.registry.register_incident_panel): the work order, say.
        "panels": registry.incident_panels(incident, request.user),
    }


def _render_incident(request, incident, *, status: int = 200, conflict: str = "", bound: dict | None = None):
    bound = bound or {}
    context = _live_context(request, incident)
    kiosk = incident.kiosk
    context.update(
        history=fleet_selectors.kiosk_history(kiosk) if kiosk is not None else None,
        causes=_likely_causes(incident),
        language=get_language(),
        conflict=conflict,
        assign_form=bound.get("assign_form")
        or AssignForm(incident=incident, initial={"assignee": incident.assignee_id}),
        checklist_error=bound.get("checklist_error"),
        **{name: bound.get(name) or form_class() for name, form_class in ACTION_FORMS.items()},
    )
    if "severity_form" not in bound:
        context["severity_form"] = SeverityForm(initial={"severity": incident.severity})
    return render(request, "incidents/detail.html", context, status=status)


@login_required
@view_incidents
@require_GET
def detail(request, pk: int):
    return _render_incident(request, selectors.incident_for_user(request.user, pk))


@login_required
@view_incidents
@require_GET
def detail_live(request, pk: int):
    """Out-of-band fragments of the incident page that change as it is worked: its head, timeline, checklist,
    commands and the kiosk's state."""
    incident = selectors.incident_for_user(request.user, pk)
    return render(request, "incidents/_detail_update.html", _live_context(request, incident) | {"oob": True})


def _conflict_text(incident, error: ValidationError, action: str) -> str:
    """Why the change was refused, in the reader's words: the state the incident is in now (someone may have acted
    first), and the service's own reason when it reads in the reader's language."""
    incident.refresh_from_db(fields=["state"])
    text = pgettext("incident", "This incident is now “%(state)s”: it cannot %(action)s.") % {
        "state": state_label(incident.state),
        "action": action,
    }
    reasons = [gettext(m) for m in error.messages]
    if getattr(error, "code", None) != "illegal_transition" and reasons:
        text = f"{text} {'；'.join(reasons)}"
    return text


def _is_conflict(error: ValidationError) -> bool:
    """The incident (or its kiosk) refuses the change as it stands now — the services raise those without a field
    (code "illegal_transition" for a state that does not allow it) — as opposed to a field of the input."""
    return not hasattr(error, "error_dict")


def _act(request, pk: int, *, action: str, form_name: str | None, make_form, do, done: str):
    """Validate a form, call a service, and either go back to the incident with a message, or show the page again
    with the reason: 409 when the incident's state refuses the change, 400 for the input. A refused change
    changes nothing (the services are atomic)."""
    incident = selectors.incident_for_user(request.user, pk)
    form = make_form(incident)
    bound = {form_name: form} if form_name else {}
    if form.is_valid():
        try:
            do(incident, form.cleaned_data, form)
        except ValidationError as error:
            if _is_conflict(error):
                return _render_incident(
                    request, incident, status=409, conflict=_conflict_text(incident, error, action), bound=bound
                )
            add_service_errors(form, error, getattr(form, "SERVICE_FIELDS", None))
        else:
            messages.success(request, done)
            return redirect("incidents:detail", pk=incident.pk)
    return _render_incident(request, incident, status=400, bound=bound)


class _NoInput:
    """The form of an action that takes no input."""

    cleaned_data: dict = {}

    def is_valid(self) -> bool:
        return True


def _no_input(_incident):
    return _NoInput()


@incident_action
def acknowledge(request, pk: int):
    return _act(
        request,
        pk,
        action=pgettext("incident", "be acknowledged"),
        form_name=None,
        make_form=_no_input,
        do=lambda incident, data, form: services.incident_acknowledge(incident=incident, actor=request.user),
        done=pgettext("incident", "Acknowledged: triage has started."),
    )


@incident_action
def move(request, pk: int):
    return _act(
        request,
        pk,
        action=pgettext("incident", "change to that state"),
        form_name="move_form",
        make_form=lambda incident: MoveForm(request.POST),
        do=lambda incident, data, form: services.incident_move(
            incident=incident, actor=request.user, to=data["to"], note=data["note"]
        ),
        done=pgettext("incident", "State changed."),
    )


@incident_action
def resolve(request, pk: int):
    return _act(
        request,
        pk,
        action=pgettext("incident", "be marked as recovered"),
        form_name="resolve_form",
        make_form=lambda incident: ResolveForm(request.POST),
        do=lambda incident, data, form: services.incident_resolve(
            incident=incident, actor=request.user, resolution=data["resolution"]
        ),
        done=pgettext("incident", "Marked as recovered; it waits for verification."),
    )


@incident_action
def close(request, pk: int):
    return _act(
        request,
        pk,
        action=pgettext("incident", "be closed"),
        form_name="close_form",
        make_form=lambda incident: CloseForm(request.POST),
        do=lambda incident, data, form: services.incident_close(
            incident=incident, actor=request.user, note=data["note"]
        ),
        done=pgettext("incident", "Verified and closed."),
    )


@incident_action
def cancel(request, pk: int):
    return _act(
        request,
        pk,
        action=pgettext("incident", "be cancelled as a false alarm"),
        form_name="cancel_form",
        make_form=lambda incident: CancelForm(request.POST),
        do=lambda incident, data, form: services.incident_cancel(
            incident=incident, actor=request.user, reason=data["reason"]
        ),
        done=pgettext("incident", "Cancelled as a false alarm."),
    )


@incident_action
def assign(request, pk: int):
    return _act(
        request,
        pk,
        action=pgettext("incident", "be assigned"),
        form_name="assign_form",
        make_form=lambda incident: AssignForm(request.POST, incident=incident),
        do=lambda incident, data, form: services.incident_assign(
            incident=incident, actor=request.user, assignee=data["assignee"]
        ),
        done=pgettext("incident", "Assignment saved."),
    )


@incident_action
def severity(request, pk: int):
    return _act(
        request,
        pk,
        action=pgettext("incident", "change its severity"),
        form_name="severity_form",
        make_form=lambda incident: SeverityForm(request.POST),
        do=lambda incident, data, form: services.incident_set_severity(
            incident=incident, actor=request.user, severity=data["severity"], reason=data["reason"]
        ),
        done=pgettext("incident", "Severity changed."),
    )


@incident_action
def note(request, pk: int):
    return _act(
        request,
        pk,
        action=pgettext("incident", "take a note"),
        form_name="note_form",
        make_form=lambda incident: NoteForm(request.POST),
        do=lambda incident, data, form: services.incident_note(
            incident=incident, actor=request.user, text=data["text"]
        ),
        done=pgettext("incident", "Note added."),
    )


@incident_action
def checklist(request, pk: int, item_id: int):
    item = selectors.checklist_item_for_user(request.user, pk, item_id)
    incident = item.incident
    form = ChecklistForm(request.POST)
    if form.is_valid():
        try:
            services.checklist_record(
                item=item, actor=request.user, outcome=form.cleaned_data["outcome"], note=form.cleaned_data["note"]
            )
        except ValidationError as error:
            if _is_conflict(error):
                return _render_incident(
                    request,
                    incident,
                    status=409,
                    conflict=_conflict_text(incident, error, pgettext("incident", "record triage steps")),
                )
            return _render_incident(
                request, incident, status=400, bound={"checklist_error": (item.pk, "；".join(error.messages))}
            )
        return redirect(f"{reverse('incidents:detail', args=[incident.pk])}#checklist-{item.pk}")
    message = pgettext("incident", "Choose the step's result.")
    return _render_incident(request, incident, status=400, bound={"checklist_error": (item.pk, message)})


@login_required
@view_incidents
@work_incidents
@permission_required("fleet.add_remotecommand", raise_exception=True)
@require_POST
def command(request, pk: int):
    def send(incident, data, form):
        services.incident_send_command(
            incident=incident,
            actor=request.user,
            kind=data["kind"],
            params=form.params,
            confirm_serial=data.get("confirm_serial") or "",
        )

    return _act(
        request,
        pk,
        action=pgettext("incident", "receive commands"),
        form_name="command_form",
        make_form=lambda incident: CommandForm(request.POST),
        do=send,
        done=pgettext("incident", "Command queued; it goes out with the kiosk's next heartbeat."),
    )


@login_required
@view_incidents
@require_GET
def photo(request, pk: int, attachment_id: int):
    """A photo of the incident, to those who may see the incident (the files are not public)."""
    incident = selectors.incident_for_user(request.user, pk)
    attachment = get_object_or_404(Attachment.objects.filter(incident=incident), pk=attachment_id)
    try:
        handle = attachment.file.open("rb")
    except OSError as error:
        raise Http404 from error
    response = FileResponse(handle, filename=attachment.file.name.rsplit("/", 1)[-1])
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- A fault reported by a person -----------------------------------------------------------------------


@login_required
@permission_required("incidents.report_incident", raise_exception=True)
@require_http_methods(["GET", "POST"])
def report(request):
    if request.method == "POST":
        form = ReportForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                incident, created = services.incident_report(
                    report=services.ManualReport(
                        kiosk=data["kiosk"],
                        fault_kind=data["fault_kind"],
                        symptom=data["symptom"],
                        observed_at=data["observed_at"],
                        reporter_name=data["reporter_name"],
                        reporter_contact=data["reporter_contact"],
                    ),
                    actor=request.user,
                    photos=data["photos"],
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                if created:
                    messages.success(
                        request,
                        pgettext("incident", "Report recorded: incident %(ref)s opened.") % {"ref": incident.reference},
                    )
                else:
                    messages.info(
                        request,
                        pgettext("incident", "The kiosk already has this incident open: the report was added to it."),
                    )
                return redirect("incidents:detail", pk=incident.pk)
        return render(request, "incidents/report.html", {"form": form}, status=400)
    initial = {}
    if serial := request.GET.get("kiosk"):
        initial["kiosk"] = serial[:64]
    return render(request, "incidents/report.html", {"form": ReportForm(initial=initial, user=request.user)})
