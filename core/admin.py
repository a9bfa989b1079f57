"""The admin base every app's read-only screens share: records that are written elsewhere (by a service, an import,
the device API) and only looked at here. Nothing is registered in this module."""

from django.contrib import admin


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
