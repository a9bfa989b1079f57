"""Shared by the role migrations: make every role group hold exactly the permissions accounts.roles lists.

It reads the current accounts.roles, so running an older migration on a new database creates the groups as they
are now; later role migrations simply re-sync."""

from django.contrib.auth.management import create_permissions


def sync_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    from accounts.roles import ROLE_PERMISSIONS

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            # A permission of an app not migrated yet is skipped; the later role migration adds it.
            wanted.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
