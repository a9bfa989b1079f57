"""Where a person lands after logging in: the screen their role works in."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from accounts.roles import Role

ROLE_LANDING = {
    Role.FINANCE_OFFICER: "reconciliation:queue",
    Role.FINANCE_SUPERVISOR: "reconciliation:queue",
    Role.COUNTER_STAFF: "reconciliation:lookup",
}
# For everyone else, the first page they may open, in this order.
LANDING_PAGES = [
    ("fleet.view_kiosk", "fleet:board"),
    ("reconciliation.view_reconitem", "reconciliation:queue"),
    ("reconciliation.lookup_payment", "reconciliation:lookup"),
]


@login_required
def landing(request):
    for group in request.user.groups.values_list("name", flat=True):
        if group in ROLE_LANDING:
            return redirect(ROLE_LANDING[group])
    for perm, page in LANDING_PAGES:
        if request.user.has_perm(perm):
            return redirect(page)
    raise PermissionDenied("This account has no role yet; ask an administrator to assign one.")


def login_locked_out(request, original_response=None, credentials=None):
    """What django-axes answers a locked-out login with: the login page again, saying why and what to do (429)."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    context = {
        "form": form,
        "locked_out": True,
        "cooloff_hours": settings.AXES_COOLOFF_TIME,
        "next": request.POST.get("next") or request.GET.get("next", ""),
    }
    return render(request, "registration/login.html", context, status=429)
