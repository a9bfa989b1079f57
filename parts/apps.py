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


def register_console() -> None:
    """The console's part of spare parts (core.registry): 备件 in the navigation for the roles that handle parts."""
    from core import registry

    registry.add_nav(
        registry.NavEntry(
            "parts:stock",
            _("Spare parts"),
            ("parts.view_balance",),
            order=8,
            current=(
                "parts:stock",
                "parts:catalog",
                "parts:part",
                "parts:ledger",
                "parts:alerts",
                "parts:depot",
                "parts:count",
            ),
        )
    )


class PartsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "parts"
    verbose_name = _("Spare parts")

    def ready(self):
        register_grants()
        register_console()
