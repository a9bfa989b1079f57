"""Create the role groups with their permissions (accounts.roles is the single source)."""

from django.db import migrations

from accounts.migrations._sync import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("fleet", "0002_seed_error_codes"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
