"""The drills console: the list with scores over quarters, planning, a drill's page (live while it runs: what the
stand-ins are doing and what the people on duty did; the score and the report once finished), its PDF, and
training records. Every change goes through drills/services.py."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Region
from accounts.scoping import scope_kiosks, scope_regions
from core import printing
from core.validation import add_service_errors
from drills import scenarios, selectors, services
from drills.forms import AbortForm, ActionForm, DoneForm, PlanForm, ReviewForm
from drills.models import Drill, DrillAction
from fleet.models import Kiosk

VIEW = "drills.view_drills"
RUN = "drills.run_drill"


def _people():
    return get_user_model().objects.filter(is_active=True).order_by("last_name", "first_name", "username")


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def drill_list(request):
    drills = selectors.drills_visible(request.user)
    return render(
        request,
        "drills/list.html",
        {
            "drills": drills[:100],
            "chart": {"scores": selectors.scores_by_quarter(request.user)},
            "can_run": request.user.has_perm(RUN),
            "scenarios": scenarios.SCENARIOS,
        },
    )


def _plan_form(request, data=None) -> PlanForm:
    regions = scope_regions(Region.objects.all(), request.user)
    kiosks = scope_kiosks(Kiosk.objects.filter(drill_of__isnull=True).exclude(status="retired"), request.user)
    return PlanForm(
        data, regions=regions, kiosks=kiosks.select_related("site").order_by("site__name", "serial"), people=_people()
    )


@login_required
@permission_required(RUN, raise_exception=True)
def drill_plan(request):
    if request.method == "POST":
        form = _plan_form(request, request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                drill = services.drill_plan(
                    actor=request.user,
                    title=data["title"],
                    scenario=data["scenario"],
                    region=data["region"],
                    kiosks=list(data["kiosks"]),
                    window_start=data["window_start"],
                    window_end=data["window_end"],
                    targets={step: data[f"target_{step}"] for step in scenarios.STEPS if data.get(f"target_{step}")},
                    participants=list(data["participants"]),
                    allow_real_out_of_service=data["allow_real_out_of_service"],
                )
                messages.success(request, _("Drill planned."))
                return redirect("drills:detail", uid=drill.uid)
            except ValidationError as error:
                add_service_errors(form, error)
            except PermissionDenied as error:
                form.add_error(None, str(error))
        return render(request, "drills/plan.html", {"form": form, "scenarios": scenarios.SCENARIOS}, status=400)
    return render(request, "drills/plan.html", {"form": _plan_form(request), "scenarios": scenarios.SCENARIOS})


def _detail_context(request, drill: Drill, **forms) -> dict:
    plan = scenarios.scenario(drill.scenario)
    score = drill.score or {}
    return {
        "drill": drill,
        "plan": plan,
        "targets": selectors.live_targets(drill),
        "events": drill.events.select_related("actor"),
        "score": score,
        "score_steps": [{**row, "label": scenarios.STEP_LABELS[row["step"]]} for row in score.get("steps", [])],
        "actions": drill.actions.select_related("owner"),
        "can_run": request.user.has_perm(RUN),
        "abort_form": forms.get("abort_form") or AbortForm(),
        "review_form": forms.get("review_form")
        or ReviewForm(initial={"went_well": drill.went_well, "lessons": drill.lessons}),
        "action_form": forms.get("action_form") or ActionForm(people=_people()),
        "done_form": DoneForm(),
        "participants": drill.participants.all(),
    }


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def drill_detail(request, uid):
    drill = selectors.drill_for(request.user, uid)
    return render(request, "drills/detail.html", _detail_context(request, drill))


def _act(request, uid, do, done: str):
    drill = selectors.drill_for(request.user, uid)
    try:
        do(drill)
        messages.success(request, done)
    except ValidationError as error:
        messages.error(request, "；".join(error.messages))
    except PermissionDenied as error:
        messages.error(request, str(error))
    return redirect("drills:detail", uid=drill.uid)


@require_POST
@login_required
@permission_required(RUN, raise_exception=True)
def drill_start(request, uid):
    return _act(request, uid, lambda d: services.drill_start(drill=d, actor=request.user), _("Drill started."))


@require_POST
@login_required
@permission_required(RUN, raise_exception=True)
def drill_finish(request, uid):
    return _act(
        request, uid, lambda d: services.drill_finish(drill=d, actor=request.user), _("Drill finished and scored.")
    )


@require_POST
@login_required
@permission_required(RUN, raise_exception=True)
def drill_abort(request, uid):
    form = AbortForm(request.POST)
    if not form.is_valid():
        drill = selectors.drill_for(request.user, uid)
        return render(request, "drills/detail.html", _detail_context(request, drill, abort_form=form), status=400)
    reason = form.cleaned_data["reason"]
    return _act(
        request,
        uid,
        lambda d: services.drill_abort(drill=d, actor=request.user, reason=reason),
        _("Drill aborted: everything it injected has been ended."),
    )


@require_POST
@login_required
@permission_required(RUN, raise_exception=True)
def drill_review(request, uid):
    drill = selectors.drill_for(request.user, uid)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            services.drill_review_save(drill=drill, actor=request.user, **form.cleaned_data)
            messages.success(request, _("Saved."))
            return redirect("drills:detail", uid=drill.uid)
        except ValidationError as error:
            add_service_errors(form, error)
    return render(request, "drills/detail.html", _detail_context(request, drill, review_form=form), status=400)


@require_POST
@login_required
@permission_required(RUN, raise_exception=True)
def drill_action_add(request, uid):
    drill = selectors.drill_for(request.user, uid)
    form = ActionForm(request.POST, people=_people())
    if form.is_valid():
        try:
            services.drill_action_add(drill=drill, actor=request.user, **form.cleaned_data)
            messages.success(request, _("Action added."))
            return redirect("drills:detail", uid=drill.uid)
        except ValidationError as error:
            add_service_errors(form, error)
    return render(request, "drills/detail.html", _detail_context(request, drill, action_form=form), status=400)


@require_POST
@login_required
def drill_action_done(request, pk: int):
    action = get_object_or_404(DrillAction.objects.select_related("drill"), pk=pk)
    selectors.drill_for(request.user, action.drill.uid)  # in the reader's districts
    form = DoneForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say how the action was done."))
    else:
        try:
            services.drill_action_done(action=action, actor=request.user, note=form.cleaned_data["note"])
            messages.success(request, _("Action done."))
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, "；".join(getattr(error, "messages", [str(error)])))
    return redirect("drills:detail", uid=action.drill.uid)


def report_html(request, drill: Drill) -> str:
    with translation.override("zh-hans"):
        context = _detail_context(request, drill)
        context["printed_at"] = timezone.localtime()
        return render_to_string("drills/report_print.html", context)


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def drill_pdf(request, uid):
    drill = selectors.drill_for(request.user, uid)
    return printing.pdf_response(report_html(request, drill), f"kioskops-drill-{drill.quarter}.pdf")


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def actions(request):
    """The lessons' actions of every drill in the reader's districts, open ones first: who owns each, when it is due,
    whether it is overdue, how it was done."""
    return render(
        request,
        "drills/actions.html",
        {"actions": selectors.actions_visible(request.user)[:500], "today": timezone.localdate()},
    )


@require_GET
@login_required
@permission_required("drills.view_trainingrecord", raise_exception=True)
def training(request):
    return render(request, "drills/training.html", {"records": selectors.training_visible(request.user)[:500]})
