from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """Platform pieces every app uses: the input policy, API parsing, errors and paging, sending to channel groups,
    the Redis client, charts, form and permission helpers, the read-only admin, the registry of role grants and
    navigation. No models; imports no app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = _("Core")
