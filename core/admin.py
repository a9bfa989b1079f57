"""The admin pieces every app's screens share: a base for records that are written elsewhere (by a service, an
import, the device API) and only looked at here, a column that names a person the way colleagues do, and one that
keeps a technical error's English out of a Chinese list.
Nothing is registered in this module."""

import re

from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import get_language, gettext

from core.people import person_name

_HAN = re.compile(r"[\u3400-\u9fff]")


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


def person_column(field: str, description, *, nobody=None):
    """An admin column (or read-only field) showing the user held in `field` by name, family name first (李强),
    instead of their login name. Assign it to a ModelAdmin attribute and list that attribute's name; the admin
    sorts it by the login name and should select the user with the row (list_select_related). `nobody` is
    shown when the field is empty (an incident's timeline: 系统, the system acted), else the admin's empty mark."""

    @admin.display(description=description, ordering=f"{field}__username")
    def column(model_admin, obj) -> str:
        user = getattr(obj, field)
        if user is not None:
            return person_name(user)
        return str(nobody) if nobody is not None else model_admin.get_empty_value_display()

    column.__name__ = f"{field}_name"
    return column


def error_column(field: str, description, *, length: int = 120):
    """An admin column of an error stored as words of its own (a file's, a run's): shown when it is in the
    reader's language; a technical one (an exception's text, in English) is said to be one, in the reader's
    language, with the stored text in the tooltip. The change page still shows it whole."""

    @admin.display(description=description)
    def column(model_admin, obj):
        text = getattr(obj, field) or ""
        if not text:
            return model_admin.get_empty_value_display()
        if _HAN.search(text) or (get_language() or "").startswith("en"):
            return Truncator(text).chars(length)
        return format_html('<span title="{}">{}</span>', text, gettext("Technical error"))

    column.__name__ = f"{field}_text"
    return column
