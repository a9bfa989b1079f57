"""Add the finance and counter roles (accounts.roles is the single source)."""

from django.db import migrations

from accounts.migrations._sync import sync_roles


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_roles"), ("reconciliation", "0002_settlement_windows")]
    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
