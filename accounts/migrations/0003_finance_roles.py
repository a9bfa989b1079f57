"""Added the finance and counter roles once; the role groups are now kept in step after every migrate
(accounts.apps, post_migrate). Kept, doing nothing, because databases have it applied."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_roles")]
    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
