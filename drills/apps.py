from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def register_grants() -> None:
    """Drill coordinators plan, run, abort and score drills; managers and technical support read them."""
    from accounts.roles import Role
    from core import registry

    see = ["drills.view_drills", "drills.view_trainingrecord"]
    registry.grants(
        "drills",
        {
            Role.DRILL_COORDINATOR: [*see, "drills.run_drill"],
            Role.OPERATIONS_MANAGER: see,
            Role.TECHNICAL_SUPPORT: see,
        },
    )


def register_console() -> None:
    from accounts.roles import Role
    from core import registry

    registry.add_nav(
        registry.NavEntry(
            "drills:list",
            _("Drills"),
            ("drills.view_drills",),
            order=28,
            current=("drills:list", "drills:plan", "drills:detail", "drills:training", "drills:actions"),
        )
    )
    registry.add_landing(
        registry.LandingPage("drills:list", "drills.run_drill", order=5, roles=(Role.DRILL_COORDINATOR,))
    )


class DrillsConfig(AppConfig):
    """Quarterly drills (应急演练) on stand-in kiosks through the real pipeline, their scores and training records."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "drills"
    verbose_name = _("Drills")

    def ready(self):
        register_grants()
        register_console()
