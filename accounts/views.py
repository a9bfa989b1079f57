"""Where a person lands after logging in: the screen their role works in."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from core import registry


@login_required
def landing(request):
    """The landing page the apps registered for the user's role, else the first registered page they may open."""
    page = registry.landing_page_for(request.user, request.user.groups.values_list("name", flat=True))
    if page is None:
        raise PermissionDenied("This account has no role yet; ask an administrator to assign one.")
    return redirect(page)


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
