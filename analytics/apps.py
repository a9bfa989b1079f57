from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def register_grants() -> None:
    """Who sees the figures and who owns the review (core.registry): operations managers own the six-monthly review
    and its actions; technical support, drill coordinators and finance read the figures."""
    from accounts.roles import Role
    from core import registry

    see = ["analytics.view_analytics"]
    registry.grants(
        "analytics",
        {
            Role.OPERATIONS_MANAGER: [*see, "analytics.own_review"],
            Role.TECHNICAL_SUPPORT: see,
            Role.DRILL_COORDINATOR: see,
        },
    )


def register_console() -> None:
    from core import registry

    registry.add_nav(
        registry.NavEntry(
            "analytics:figures",
            _("Analytics"),
            ("analytics.view_analytics",),
            order=70,
            current=("analytics:figures", "analytics:reviews", "analytics:review"),
        )
    )


class AnalyticsConfig(AppConfig):
    """Summary tables, the fleet's figures and the six-monthly review. It reads every app; no app imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self):
        register_grants()
        register_console()
