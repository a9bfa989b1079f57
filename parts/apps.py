from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def register_grants() -> None:
    """Who may see and move spare parts (core.registry): technical support keeps the catalog, operations managers
    and field technicians see the stock (technicians move their van's)."""
    from accounts.roles import Role
    from core import registry

    see = ["parts.view_part", "parts.view_depot", "parts.view_lot", "parts.view_movement", "parts.view_balance"]
    registry.grants(
        "parts",
        {
            Role.TECHNICAL_SUPPORT: [*see, "parts.add_part", "parts.change_part", "parts.move_stock"],
            Role.OPERATIONS_MANAGER: [*see, "parts.move_stock"],
            Role.FIELD_TECHNICIAN: [*see, "parts.move_stock"],
        },
    )


class PartsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "parts"
    verbose_name = _("Spare parts")

    def ready(self):
        register_grants()
