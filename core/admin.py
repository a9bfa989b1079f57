"""The admin pieces every app's screens share: a base for records that are written elsewhere (by a service, an
import, the device API) and only looked at here, and a column that names a person the way colleagues do.
Nothing is registered in this module."""

from django.contrib import admin

from core.people import person_name


class ReadOnlyAdmin(admin.ModelAdmin):
    """No adding, changing or deleting in the admin; `deletable = True` lets staff delete rows they have looked into
    (they still need the delete permission)."""

    deletable = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)


def person_column(field: str, description):
    """An admin column (or read-only field) showing the user held in `field` by name, family name first (李强),
    instead of their login name. Assign it to a ModelAdmin attribute and list that attribute's name; the admin
    sorts it by the login name and should select the user with the row (list_select_related)."""

    @admin.display(description=description, ordering=f"{field}__username")
    def column(model_admin, obj) -> str:
        user = getattr(obj, field)
        return person_name(user) if user is not None else model_admin.get_empty_value_display()

    column.__name__ = f"{field}_name"
    return column
