from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from accounts.models import OperatorProfile

User = get_user_model()


class OperatorProfileInline(admin.StackedInline):
    """The regions a console user is responsible for, edited on the user's own page."""

    model = OperatorProfile
    can_delete = False
    filter_horizontal = ["regions"]
    fields = ["all_regions", "regions", "phone"]


admin.site.unregister(User)


@admin.register(User)
class OperatorUserAdmin(UserAdmin):
    inlines = [OperatorProfileInline]
