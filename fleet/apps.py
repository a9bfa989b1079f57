from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FleetConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fleet"
    verbose_name = _("Fleet")

    def ready(self):
        from fleet import events, realtime

        events.kiosks_updated.connect(realtime.broadcast_kiosks_updated, dispatch_uid="fleet.realtime.board")
