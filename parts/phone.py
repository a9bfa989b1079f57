"""The field technician's stock count on the phone: their van and their region's store, each with its count due
date, and a count lot by lot with a big number field per lot. Plain forms posted to the server, with the same services as
the console, so each counted quantity is recorded under the counter's name and the posted variances name them.
Without a signal the counted quantities are kept on the phone and sent through the API when it returns
(static/parts/phone-count.js); posting the count needs a signal."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from parts import selectors, services
from parts.models import Depot, StockCount
from parts.views import _count_for_user, _record

MOVE = "parts.move_stock"


@login_required
@permission_required(MOVE, raise_exception=True)
@require_GET
def depots(request):
    """My van first, then the stores of my regions (a technician counts them too)."""
    user = request.user
    today = timezone.localdate()
    mine = [
        depot
        for depot in selectors.depots_for_user(user).select_related("count_schedule").order_by("-kind", "code")
        if services.can_count(user, depot) and (depot.kind == Depot.Kind.STORE or depot.holder_id == user.pk)
    ]
    mine.sort(key=lambda depot: (depot.holder_id != user.pk, depot.code))
    open_counts = {
        count.depot_id: count
        for count in StockCount.objects.filter(depot__in=[d.pk for d in mine], status=StockCount.Status.OPEN)
    }
    rows = []
    for depot in mine:
        schedule = getattr(depot, "count_schedule", None)
        rows.append(
            {
                "depot": depot,
                "schedule": schedule,
                "overdue": schedule is not None and schedule.due_on < today,
                "open_count": open_counts.get(depot.pk),
                "lines": len(selectors.depot_lots(depot)),
            }
        )
    return render(request, "parts/phone/depots.html", {"rows": rows})


@login_required
@permission_required(MOVE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def count(request, pk: int):
    count = _count_for_user(request.user, pk)
    if not services.can_count(request.user, count.depot):
        raise PermissionDenied
    errors, status = [], 200
    if request.method == "POST":
        try:
            errors = _record(request, count)
            if not errors and request.POST.get("action") == "post":
                movements = services.stock_count_post(count=count, actor=request.user)
                messages.success(
                    request, _("Count posted: %(n)d variance(s) written to the ledger.") % {"n": len(movements)}
                )
                return redirect("parts:phone")
            if not errors:
                messages.success(request, _("Counted quantities saved."))
                return redirect("parts:phone-count", pk=count.pk)
            status = 400
        except ValidationError as error:
            errors, status = (
                error.messages,
                409 if getattr(error, "code", "") in ("conflict", "illegal_transition") else 400,
            )
        count.refresh_from_db()
    lines = selectors.count_lines(count)
    context = {
        "count": count,
        "lines": lines,
        "errors": errors,
        "uncounted": sum(1 for line in lines if line.counted is None),
        "variances": [line for line in lines if line.variance],
        "offline_strings": {
            "kept": _("No signal: the counted quantities are kept on this phone and sent when the signal returns."),
            "pending": _("Counted quantities kept on this phone are not sent yet."),
            "sending": _("Sending the counted quantities kept on this phone…"),
            "post_needs_signal": _("Posting the count needs a signal. The counted quantities are kept on this phone."),
            "refused": _("A counted quantity was refused:"),
        },
    }
    return render(request, "parts/phone/count.html", context, status=status)
