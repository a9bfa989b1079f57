"""Region moves from fleet to accounts, where region scoping lives, so that accounts no longer names fleet.

Only Django's idea of the model moves: the table keeps its name (``fleet_region``) and its rows, and the
many-to-many from operator profiles keeps its table and column. fleet.0006 takes Region out of fleet and carries
the content type (and with it the permissions, the role groups holding them and the admin history) across."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_finance_roles")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Region",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("code", models.SlugField(max_length=32, unique=True)),
                        ("name", models.CharField(max_length=100, verbose_name="name")),
                    ],
                    options={
                        "verbose_name": "region",
                        "verbose_name_plural": "regions",
                        "db_table": "fleet_region",
                        "ordering": ["code"],
                    },
                ),
                migrations.AlterField(
                    model_name="operatorprofile",
                    name="regions",
                    field=models.ManyToManyField(
                        blank=True, related_name="operators", to="accounts.region", verbose_name="regions"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
