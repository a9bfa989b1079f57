"""The console's roles (岗位), as Django groups with model permissions. One place defines them all."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OPERATIONS_MANAGER = "operations_manager", _("Operations manager")  # 运营管理岗
    TECHNICAL_SUPPORT = "technical_support", _("Technical support")  # 技术支持岗
    FIELD_TECHNICIAN = "field_technician", _("Field technician")  # 维修人员
    DRILL_COORDINATOR = "drill_coordinator", _("Drill coordinator")  # 演练协调
    FINANCE_OFFICER = "finance_officer", _("Finance officer")  # 财务人员
    FINANCE_SUPERVISOR = "finance_supervisor", _("Finance supervisor")  # 财务主管: approves write-offs
    COUNTER_STAFF = "counter_staff", _("Counter staff")  # 窗口人员: answers "I paid — where is it?"


# "app_label.codename" permissions granted to each role.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.OPERATIONS_MANAGER: [
        "fleet.view_region",
        "fleet.view_site",
        "fleet.view_kiosk",
        "fleet.change_kiosk",
        "fleet.set_maintenance",
        "fleet.add_kiosk",
        "fleet.manage_credentials",
        "fleet.view_remotecommand",
        "fleet.add_remotecommand",
        "fleet.view_errorcode",
        "fleet.view_statuschange",
    ],
    Role.TECHNICAL_SUPPORT: [
        "fleet.view_region",
        "fleet.view_site",
        "fleet.view_kiosk",
        "fleet.set_maintenance",
        "fleet.manage_credentials",
        "fleet.view_remotecommand",
        "fleet.add_remotecommand",
        "fleet.view_errorcode",
        "fleet.change_errorcode",
        "fleet.view_statuschange",
    ],
    Role.FIELD_TECHNICIAN: [
        "fleet.view_region",
        "fleet.view_site",
        "fleet.view_kiosk",
        "fleet.set_maintenance",
        "fleet.view_remotecommand",
        "fleet.view_errorcode",
        "fleet.view_statuschange",
    ],
    Role.DRILL_COORDINATOR: [
        "fleet.view_region",
        "fleet.view_site",
        "fleet.view_kiosk",
        "fleet.view_errorcode",
        "fleet.view_statuschange",
    ],
    Role.FINANCE_OFFICER: [
        "fleet.view_region",
        "fleet.view_site",
        "fleet.view_kiosk",
        "fleet.view_statuschange",
        "reconciliation.view_reconitem",
        "reconciliation.resolve_reconitem",
        "reconciliation.run_reconciliation",
        "reconciliation.import_ledger",
        "reconciliation.lookup_payment",
        "reconciliation.contact_citizen",
        "reconciliation.view_journalfile",
        "reconciliation.add_journalfile",
        "reconciliation.view_ledgerfile",
        "reconciliation.view_tariff",
        "reconciliation.view_workingdayoverride",
        "reconciliation.view_settlementwindow",
    ],
    Role.FINANCE_SUPERVISOR: [
        "fleet.view_region",
        "fleet.view_site",
        "fleet.view_kiosk",
        "fleet.view_statuschange",
        "reconciliation.view_reconitem",
        "reconciliation.resolve_reconitem",
        "reconciliation.approve_writeoff",
        "reconciliation.run_reconciliation",
        "reconciliation.import_ledger",
        "reconciliation.lookup_payment",
        "reconciliation.contact_citizen",
        "reconciliation.view_journalfile",
        "reconciliation.add_journalfile",
        "reconciliation.view_ledgerfile",
        "reconciliation.view_tariff",
        "reconciliation.add_tariff",
        "reconciliation.change_tariff",
        "reconciliation.view_workingdayoverride",
        "reconciliation.add_workingdayoverride",
        "reconciliation.change_workingdayoverride",
        "reconciliation.view_settlementwindow",
        "reconciliation.change_settlementwindow",
    ],
    Role.COUNTER_STAFF: [
        "reconciliation.lookup_payment",
        "reconciliation.contact_citizen",
    ],
}
