from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def register_console() -> None:
    """reconciliation's part of the console: what each role may do with payments, and the pages it adds."""
    from accounts.roles import Role
    from core import registry

    lookup = ["reconciliation.lookup_payment", "reconciliation.contact_citizen"]
    finance = [
        "reconciliation.view_reconitem",
        "reconciliation.resolve_reconitem",
        "reconciliation.run_reconciliation",
        "reconciliation.import_ledger",
        *lookup,
        "reconciliation.view_journalfile",
        "reconciliation.add_journalfile",
        "reconciliation.view_ledgerfile",
        "reconciliation.view_tariff",
        "reconciliation.view_workingdayoverride",
        "reconciliation.view_settlementwindow",
    ]
    registry.grants(
        "reconciliation",
        {
            Role.FINANCE_OFFICER: finance,
            Role.FINANCE_SUPERVISOR: [
                *finance,
                "reconciliation.approve_writeoff",
                "reconciliation.add_tariff",
                "reconciliation.change_tariff",
                "reconciliation.add_workingdayoverride",
                "reconciliation.change_workingdayoverride",
                "reconciliation.change_settlementwindow",
            ],
            Role.COUNTER_STAFF: lookup,
        },
    )
    items = ("reconciliation.view_reconitem",)
    for entry in [
        registry.NavEntry(
            "reconciliation:queue",
            _("Reconciliation"),
            items,
            order=30,
            current=("reconciliation:queue", "reconciliation:item"),
        ),
        registry.NavEntry(
            "reconciliation:report",
            _("Daily report"),
            items,
            order=40,
            current=("reconciliation:report", "reconciliation:report-day"),
        ),
        registry.NavEntry("reconciliation:lookup", _("Payment lookup"), ("reconciliation.lookup_payment",), order=50),
        registry.NavEntry(
            "reconciliation:imports",
            _("Imports"),
            ("reconciliation.import_ledger", "reconciliation.add_journalfile"),
            order=60,
        ),
    ]:
        registry.add_nav(entry)
    # Finance staff may see the board too, but their work is the queue; counter staff answer payers.
    registry.add_landing(
        registry.LandingPage(
            "reconciliation:queue",
            "reconciliation.view_reconitem",
            order=20,
            roles=(Role.FINANCE_OFFICER, Role.FINANCE_SUPERVISOR),
        )
    )
    registry.add_landing(
        registry.LandingPage(
            "reconciliation:lookup", "reconciliation.lookup_payment", order=30, roles=(Role.COUNTER_STAFF,)
        )
    )


class ReconciliationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reconciliation"
    verbose_name = _("Reconciliation")

    def ready(self):
        from reconciliation import events, realtime

        events.recon_items_changed.connect(realtime.broadcast_items_changed, dispatch_uid="reconciliation.queue")
        register_console()
