"""Admin for users, their roles (groups) and regions. People are listed by name (李强) next to their login, and
roles by their Chinese name: a group's name is the role's code (finance_officer), which nobody should have to
read."""

from axes.utils import reset as axes_reset
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import OperatorProfile, Region
from accounts.roles import Role
from core.people import person_name

User = get_user_model()


def role_label(group) -> str:
    """财务人员 for the group finance_officer; a group that is no role keeps its own name."""
    return str(Role(group.name).label) if group.name in Role.values else group.name


class RoleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return role_label(obj)


class RoleListFilter(admin.SimpleListFilter):
    """Users by role, the roles named in words (the groups' own filter would list their codes)."""

    title = _("role")
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return Role.choices

    def queryset(self, request, queryset):
        if self.value() in Role.values:
            return queryset.filter(groups__name=self.value())
        return queryset


class OperatorProfileInline(admin.StackedInline):
    """The regions a console user is responsible for, edited on the user's own page."""

    model = OperatorProfile
    can_delete = False
    filter_horizontal = ["regions"]
    fields = ["all_regions", "regions", "phone"]


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Group)
class RoleGroupAdmin(GroupAdmin):
    list_display = ["role", "name"]

    @admin.display(description=_("role"), ordering="name")
    def role(self, obj):
        return role_label(obj)


@admin.register(User)
class OperatorUserAdmin(UserAdmin):
    inlines = [OperatorProfileInline]
    actions = ["unlock_login"]
    list_display = ["full_name", "username", "email", "roles", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_superuser", "is_active", RoleListFilter]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["form_class"] = RoleChoiceField
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=_("full name"), ordering="last_name")
    def full_name(self, obj):
        return person_name(obj) if (obj.first_name or obj.last_name) else self.get_empty_value_display()

    @admin.display(description=_("roles"))
    def roles(self, obj):
        groups = sorted(obj.groups.all(), key=lambda g: g.name)
        if not groups:
            return self.get_empty_value_display()
        return format_html(
            '<span title="{}">{}</span>',
            ", ".join(g.name for g in groups),
            "、".join(role_label(g) for g in groups),
        )

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
