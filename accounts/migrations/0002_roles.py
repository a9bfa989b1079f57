"""Created the role groups once; they are now kept in step after every migrate (accounts.apps, post_migrate), from
the permissions each app grants (core.registry). Kept, doing nothing, because databases have it applied."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
