"""Region now lives in accounts (accounts.0004): sites point at accounts.Region and fleet forgets its own.

The table is untouched. The content type fleet.region is renamed accounts.region rather than replaced, so the
region permissions keep their ids, and with them the role groups and users holding them and the admin history."""

import django.db.models.deletion
from django.db import migrations, models


def _move_content_type(apps, schema_editor, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    old = ContentType.objects.using(db).filter(app_label=source, model="region").first()
    if old is None:  # a new database: content types are made after migrate, under the new label
        return
    new = ContentType.objects.using(db).filter(app_label=target, model="region").first()
    if new is not None:
        # A migrate stopped half-way let the post-migrate hook make the new content type with fresh
        # permissions. The old one carries what people were given and did; keep it, drop the fresh one.
        try:
            LogEntry = apps.get_model("admin", "LogEntry")
        except LookupError:
            pass
        else:
            LogEntry.objects.using(db).filter(content_type=new).update(content_type=old)
        new.delete()
    old.app_label = target
    old.save(update_fields=["app_label"])
    ContentType.objects.clear_cache()


def forwards(apps, schema_editor):
    _move_content_type(apps, schema_editor, source="fleet", target="accounts")


def backwards(apps, schema_editor):
    _move_content_type(apps, schema_editor, source="accounts", target="fleet")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_region"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("fleet", "0005_heartbeat_dead_letter"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="site",
                    name="region",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sites",
                        to="accounts.region",
                        verbose_name="region",
                    ),
                ),
                migrations.DeleteModel(name="Region"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
