import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


def _self_test_answered(command_id=None, kind=None, **kwargs) -> None:
    """A kiosk answered a command: if it was a work order's self-test, record it now rather than at the next tick
    (only a shortcut — the tick reads the same rows, so a lost wake-up loses nothing)."""
    if kind != "self_test" or not command_id:
        return
    from workorders import tasks

    try:
        tasks.record_self_tests.delay([str(command_id)])
    except Exception:  # the broker may be down; beat's tick records it anyway
        logger.warning("could not wake the self-test recorder", exc_info=True)


def register_grants() -> None:
    """Who may do what with work orders (core.registry): operations managers dispatch, technical support guide the
    technician, field technicians work their own orders."""
    from accounts.roles import Role
    from core import registry

    see = ["workorders.view_workorder"]
    registry.grants(
        "workorders",
        {
            Role.OPERATIONS_MANAGER: [*see, "workorders.dispatch_workorder", "workorders.view_technicianprofile"],
            Role.TECHNICAL_SUPPORT: [*see, "workorders.guide_workorder"],
            Role.FIELD_TECHNICIAN: [*see, "workorders.work_workorder"],
        },
    )


def register_console() -> None:
    """The console's part of work orders (core.registry): the list in the navigation (工单), and the work-order
    card on the incident page (the order's status, technician and arrival time, or the dispatch button) and its
    line in the incident queue, and the live pages' socket told which orders changed."""
    from core import registry
    from workorders import panels

    registry.add_nav(
        registry.NavEntry(
            "workorders:list",
            _("Work orders"),
            ("workorders.dispatch_workorder", "workorders.guide_workorder"),
            order=6,
            current=("workorders:list", "workorders:detail", "workorders:dispatch"),
        )
    )
    registry.register_incident_panel(panels.incident_panel)
    registry.register_incident_marker(panels.incident_markers)

    from workorders import events, realtime

    events.work_orders_changed.connect(realtime.broadcast_work_orders_changed, dispatch_uid="workorders.realtime")


def register_phone() -> None:
    """Field technicians land on their orders (the phone pages, workorders/phone.py)."""
    from accounts.roles import Role
    from core import registry

    registry.add_landing(
        registry.LandingPage(
            "workorders:phone-orders", "workorders.work_workorder", order=4, roles=(Role.FIELD_TECHNICIAN,)
        )
    )
    # From the console (the board, an incident) back to the technician's own orders.
    registry.add_nav(
        registry.NavEntry(
            "workorders:phone-orders",
            _("My work orders"),
            ("workorders.work_workorder",),
            order=4,
            current=("workorders:phone-orders", "workorders:phone-order"),
        )
    )


class WorkordersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workorders"
    verbose_name = _("Work orders")

    def ready(self):
        from fleet import events as fleet_events

        register_grants()
        register_phone()
        register_console()
        fleet_events.command_finished.connect(_self_test_answered, dispatch_uid="workorders.self_test_answered")
