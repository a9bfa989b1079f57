import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


def _command_answered(command_id=None, kind=None, **kwargs) -> None:
    """A kiosk answered a command: if it was an inspection's self-test or network test, judge it now rather than
    at the next tick (only a shortcut — the tick reads the same rows, so a lost wake-up loses nothing)."""
    if kind not in ("self_test", "network_test") or not command_id:
        return
    from inspections import tasks

    try:
        tasks.record_remote_results.delay()
    except Exception:  # the broker may be down; beat's tick judges it anyway
        logger.warning("could not wake the inspection judge", exc_info=True)


def register_grants() -> None:
    """Who may do what with inspections (core.registry): technical support manages templates and schedules, field
    technicians do inspections, operations managers see compliance."""
    from accounts.roles import Role
    from core import registry

    see = ["inspections.view_inspection"]
    registry.grants(
        "inspections",
        {
            Role.OPERATIONS_MANAGER: [*see, "inspections.view_compliance", "inspections.view_inspectiontemplate"],
            Role.TECHNICAL_SUPPORT: [
                *see,
                "inspections.view_compliance",
                "inspections.manage_inspectiontemplate",
                "inspections.view_inspectiontemplate",
                "inspections.add_inspectiontemplate",
                "inspections.change_inspectiontemplate",
                "inspections.view_schedule",
                "inspections.add_schedule",
                "inspections.change_schedule",
                "inspections.delete_schedule",
                "inspections.view_approvedversion",
                "inspections.add_approvedversion",
                "inspections.change_approvedversion",
            ],
            Role.FIELD_TECHNICIAN: [*see, "inspections.do_inspection"],
        },
    )


def register_console() -> None:
    """The console's entry (巡检) for those who oversee inspections, and the technician's phone list."""
    from core import registry

    registry.add_nav(
        registry.NavEntry(
            "inspections:list",
            _("Inspections"),
            ("inspections.view_compliance", "inspections.manage_inspectiontemplate"),
            order=7,
            current=(
                "inspections:list",
                "inspections:detail",
                "inspections:compliance",
                "inspections:laggards",
                "inspections:plan",
            ),
        )
    )
    registry.add_nav(
        registry.NavEntry(
            "inspections:phone-list",
            _("My inspections"),
            ("inspections.do_inspection",),
            order=5,
            current=("inspections:phone-list", "inspections:phone-detail"),
        )
    )


class InspectionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inspections"
    verbose_name = _("Inspections")

    def ready(self):
        from fleet import events as fleet_events

        register_grants()
        register_console()
        fleet_events.command_finished.connect(_command_answered, dispatch_uid="inspections.command_answered")
