"""The console's navigation, read from what the apps registered (core.registry), in the reader's language."""

from django import template
from django.urls import reverse

from core import registry

register = template.Library()


@register.simple_tag(takes_context=True)
def console_nav(context) -> list[dict]:
    """The entries the user may follow, in order: each with its URL, label and whether it is the page shown."""
    request = context.get("request")
    user = context.get("user") or getattr(request, "user", None)
    if user is None:
        return []
    match = getattr(request, "resolver_match", None)
    view_name = match.view_name if match else None
    return [
        {"url": reverse(entry.url_name), "label": entry.label, "current": entry.is_current(view_name)}
        for entry in registry.nav_entries_for(user)
    ]
