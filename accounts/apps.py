from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _roles_sync_after_migrate(sender, app_config=None, using="default", apps=None, **kwargs):
    """After every migrate (and test flush): the permissions of every app exist, then each role group holds
    exactly what the apps grant it. The permissions are made here because auth makes each app's only when that
    app's turn comes, and most apps come after accounts."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    from accounts.services import roles_sync

    for config in global_apps.get_app_configs():
        create_permissions(config, verbosity=0, using=using, apps=apps or global_apps)
    roles_sync(using=using)


def register_console() -> None:
    """accounts' part of the console: the roles that work with the fleet may read its regions (core.registry)."""
    from accounts.roles import Role
    from core import registry

    see_regions = ["accounts.view_region"]
    registry.grants(
        "accounts",
        {
            role: see_regions
            for role in (
                Role.OPERATIONS_MANAGER,
                Role.TECHNICAL_SUPPORT,
                Role.FIELD_TECHNICIAN,
                Role.DRILL_COORDINATOR,
                Role.FINANCE_OFFICER,
                Role.FINANCE_SUPERVISOR,
            )
        },
    )


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = _("Accounts and regions")

    def ready(self):
        post_migrate.connect(_roles_sync_after_migrate, sender=self, dispatch_uid="accounts.roles_sync")
        register_console()
