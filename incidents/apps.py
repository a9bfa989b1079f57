from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def register_console() -> None:
    """incidents' part of the console: who may work incidents, and the queue page (core.registry)."""
    from accounts.roles import Role
    from core import registry

    see = ["incidents.view_incident", "incidents.view_timelineentry", "incidents.view_playbook"]
    work = [*see, "incidents.work_incident", "incidents.report_incident", "incidents.view_notification"]
    registry.grants(
        "incidents",
        {
            Role.OPERATIONS_MANAGER: [*work, "incidents.manage_response", "incidents.view_slapolicy"],
            Role.TECHNICAL_SUPPORT: [*work, "incidents.view_slapolicy"],
            Role.FIELD_TECHNICIAN: see,
            Role.DRILL_COORDINATOR: see,
        },
    )
    registry.add_nav(
        registry.NavEntry(
            "incidents:queue",
            _("Incidents"),
            ("incidents.view_incident",),
            order=5,
            current=("incidents:queue", "incidents:detail", "incidents:report"),
        )
    )
    registry.add_landing(
        registry.LandingPage(
            "incidents:queue",
            "incidents.view_incident",
            order=5,
            roles=(Role.OPERATIONS_MANAGER, Role.TECHNICAL_SUPPORT),
        )
    )


def _wake_engine(**kwargs) -> None:
    """A flip or a finished command was committed: run the engine now rather than at the next tick. Only a
    shortcut — the periodic tick reads the same feed, so a lost wake-up loses nothing."""
    from incidents import tasks

    try:
        tasks.engine_tick.delay()
    except Exception:  # the broker may be down; beat runs the tick anyway
        import logging

        logging.getLogger(__name__).warning("could not wake the incident engine", exc_info=True)


def _store_fault_reports(reports) -> None:
    from incidents.models import FaultReport

    FaultReport.objects.bulk_create(
        [
            FaultReport(
                kiosk_id=report.kiosk_id,
                fault_kind=report.fault_kind,
                source=report.source,
                occurred_at=report.occurred_at,
                key=report.key[:200],
                title=report.title[:200],
                evidence=report.evidence,
            )
            for report in reports
        ],
        ignore_conflicts=True,
    )


class IncidentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "incidents"
    verbose_name = _("Incidents")

    def ready(self):
        from django.conf import settings

        from core import faults, notices, registry
        from fleet import events
        from incidents import events as incident_events
        from incidents import realtime, selectors

        register_console()
        faults.register_sink(_store_fault_reports)
        notices.register_sink(_queue_notices)
        incident_events.incidents_changed.connect(
            realtime.broadcast_incidents_changed, dispatch_uid="incidents.realtime.console"
        )
        if hasattr(registry, "register_kiosk_annotator"):
            registry.register_kiosk_annotator(selectors.board_annotations)
        if settings.KIOSKOPS.get("INCIDENT_WAKE_ON_COMMIT", True):
            events.kiosk_status_changed.connect(_wake_engine, dispatch_uid="incidents.wake_on_flip")
            if hasattr(events, "command_finished"):
                events.command_finished.connect(_wake_engine, dispatch_uid="incidents.wake_on_command")


def _queue_notices(batch) -> int:
    from incidents import notify

    return notify.queue_notices(batch)
