from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReconciliationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reconciliation"
    verbose_name = _("Reconciliation")

    def ready(self):
        from reconciliation import events, realtime

        events.recon_items_changed.connect(realtime.broadcast_items_changed, dispatch_uid="reconciliation.queue")
