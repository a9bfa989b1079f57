from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def register_console() -> None:
    """fleet's part of the console: what each role may do with the fleet, and the pages it adds (core.registry)."""
    from accounts.roles import Role
    from core import registry

    # Regions are accounts' (region scoping), which grants their view permission to these same roles.
    see_fleet = ["fleet.view_site", "fleet.view_kiosk", "fleet.view_statuschange"]
    registry.grants(
        "fleet",
        {
            Role.OPERATIONS_MANAGER: [
                *see_fleet,
                "fleet.change_kiosk",
                "fleet.set_maintenance",
                "fleet.add_kiosk",
                "fleet.manage_credentials",
                "fleet.view_remotecommand",
                "fleet.add_remotecommand",
                "fleet.view_errorcode",
                # The board warns of heartbeats set aside; the people who act on it may read them.
                "fleet.view_heartbeatdeadletter",
            ],
            Role.TECHNICAL_SUPPORT: [
                *see_fleet,
                "fleet.set_maintenance",
                "fleet.manage_credentials",
                "fleet.view_remotecommand",
                "fleet.add_remotecommand",
                "fleet.view_errorcode",
                "fleet.change_errorcode",
                "fleet.view_heartbeatdeadletter",
            ],
            Role.FIELD_TECHNICIAN: [
                *see_fleet,
                "fleet.set_maintenance",
                "fleet.view_remotecommand",
                "fleet.view_errorcode",
            ],
            Role.DRILL_COORDINATOR: [*see_fleet, "fleet.view_errorcode"],
            Role.FINANCE_OFFICER: see_fleet,
            Role.FINANCE_SUPERVISOR: see_fleet,
        },
    )
    registry.add_nav(registry.NavEntry("fleet:board", _("Fleet board"), ("fleet.view_kiosk",), order=10))
    registry.add_nav(registry.NavEntry("fleet:kiosk-provision", _("Provision kiosk"), ("fleet.add_kiosk",), order=20))
    registry.add_landing(registry.LandingPage("fleet:board", "fleet.view_kiosk", order=10))


class FleetConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fleet"
    verbose_name = _("Fleet")

    def ready(self):
        from fleet import events, realtime

        events.kiosks_updated.connect(realtime.broadcast_kiosks_updated, dispatch_uid="fleet.realtime.board")
        register_console()
