"""The console's roles (岗位), as Django groups with model permissions. One place defines them all."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OPERATIONS_MANAGER = "operations_manager", _("Operations manager")  # 运营管理岗
    TECHNICAL_SUPPORT = "technical_support", _("Technical support")  # 技术支持岗
    FIELD_TECHNICIAN = "field_technician", _("Field technician")  # 维修人员
    DRILL_COORDINATOR = "drill_coordinator", _("Drill coordinator")  # 演练协调


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
}
