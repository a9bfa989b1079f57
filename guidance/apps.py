from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

VIEW = "guidance.view_hallguidance"


def register_console() -> None:
    """guidance's part of the console: who may print notices and stickers, and its page (core.registry)."""
    from accounts.roles import Role
    from core import registry

    registry.grants(
        "guidance",
        {
            Role.OPERATIONS_MANAGER: [VIEW, "guidance.view_regionguidance", "guidance.view_citizenreport"],
            Role.TECHNICAL_SUPPORT: [VIEW, "guidance.view_citizenreport"],
            Role.COUNTER_STAFF: [VIEW],
        },
    )
    registry.add_nav(registry.NavEntry("guidance:index", _("Citizen guidance"), (VIEW,), order=25))


class GuidanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "guidance"
    verbose_name = _("Citizen guidance")

    def ready(self):
        from core import registry
        from guidance import alternatives

        register_console()
        registry.register_out_of_service_text(alternatives.out_of_service_params)
