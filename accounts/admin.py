from axes.utils import reset as axes_reset
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import OperatorProfile, Region

User = get_user_model()


class OperatorProfileInline(admin.StackedInline):
    """The regions a console user is responsible for, edited on the user's own page."""

    model = OperatorProfile
    can_delete = False
    filter_horizontal = ["regions"]
    fields = ["all_regions", "regions", "phone"]


admin.site.unregister(User)


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(User)
class OperatorUserAdmin(UserAdmin):
    inlines = [OperatorProfileInline]
    actions = ["unlock_login"]

    @admin.action(description=_("Unlock login (clear failed login attempts)"), permissions=["change"])
    def unlock_login(self, request, queryset):
        """Lift a django-axes lockout: the users' failed attempts, from every address, are forgotten."""
        users = list(queryset)
        for user in users:
            axes_reset(username=user.get_username())
        self.message_user(
            request,
            ngettext("Login unlocked for %(count)d user.", "Login unlocked for %(count)d users.", len(users))
            % {"count": len(users)},
            messages.SUCCESS,
        )
