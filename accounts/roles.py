"""The console's roles (岗位), as Django groups with model permissions.

accounts defines the roles; each app grants its own permissions to them from its AppConfig.ready
(core.registry.grant), and accounts.services.roles_sync keeps every group holding exactly what the apps grant."""

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
